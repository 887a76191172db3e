//! Generic transit parsing driven by each stream's UDT metadata, plus the hand-written readers for
//! the variable-size types (reference §3.6).

use super::reader::{try_read_at, Reader};
use super::strings::try_read_dyn_string;
use super::udt::{Udt, UdtTable};
use super::value::{Object, Value, PROPERTY_SET};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Dependencies of one block, keyed by their u64 id (ids are only unique within a block).
pub type DependencyMap = HashMap<u64, Value, BuildHasherDefault<IdHasher>>;

/// Ids are addresses or counters: one multiply spreads them well enough, and SipHash showed up
/// as a large share of decode time.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Nested UDTs deeper than this are treated as corrupt metadata (a type that contains itself).
const MAX_NESTING: usize = 16;

/// Walks `index:u8 [size:u32] body` records, calling `f(record_index, udt, body)`.
fn try_for_each_record<'a>(
    buf: &'a [u8],
    table: &'a UdtTable,
    queue: &str,
    mut f: impl FnMut(usize, &'a Udt, &'a [u8]) -> Result<()>,
) -> Result<()> {
    let mut r = Reader::new(buf);
    let mut index = 0usize;
    while !r.is_empty() {
        let at = r.position();
        let type_index = r.try_u8("type index")? as usize;
        let udt = table.udts.get(type_index).ok_or_else(|| {
            anyhow!(
                "unknown type index {type_index} at offset {at} of the {queue} buffer ({} types in metadata)",
                table.udts.len()
            )
        })?;
        let size = if udt.size > 0 { udt.size } else { r.try_u32("record size")? as usize };
        let body = r.try_take_with(size, || format!("{} #{index} of the {queue} buffer", udt.name))?;
        f(index, udt, body).with_context(|| format!("{} #{index} at offset {at} of the {queue} buffer", udt.name))?;
        index += 1;
    }
    Ok(())
}

/// Reads one fixed-size instance of `udt` from `window` (exactly `udt.size` bytes or more).
pub fn try_parse_pod(table: &UdtTable, udt: &Udt, window: &[u8], deps: &DependencyMap) -> Result<Value> {
    parse_pod_at_depth(table, udt, window, deps, 0)
}

fn parse_pod_at_depth(table: &UdtTable, udt: &Udt, window: &[u8], deps: &DependencyMap, depth: usize) -> Result<Value> {
    if depth > MAX_NESTING {
        bail!("type {} nests deeper than {MAX_NESTING} levels", udt.name);
    }
    let mut members = Vec::with_capacity(udt.members.len());
    for m in &udt.members {
        let end = m.offset.checked_add(m.size).unwrap_or(usize::MAX);
        if end > window.len() {
            bail!(
                "member {}.{} spans bytes {}..{} outside the {}-byte instance",
                udt.name, m.name, m.offset, end, window.len()
            );
        }
        let v = if m.is_reference {
            if m.size < 8 {
                bail!("reference member {}.{} has size {}, need at least 8", udt.name, m.name, m.size);
            }
            let id = u64::from_le_bytes(try_read_at::<8>(window, m.offset, &m.name)?);
            deps.get(&id)
                .cloned()
                .ok_or_else(|| anyhow!("missing dependency {id:#x} referenced by {}.{}", udt.name, m.name))?
        } else {
            let expect = |n: usize| -> Result<()> {
                if m.size != n {
                    bail!("member {}.{} of type {} has size {}, expected {n}", udt.name, m.name, m.type_name, m.size);
                }
                Ok(())
            };
            match m.type_name.as_str() {
                "u8" | "uint8" => {
                    expect(1)?;
                    Value::U8(window[m.offset])
                }
                "u32" | "uint32" => {
                    expect(4)?;
                    Value::U32(u32::from_le_bytes(try_read_at::<4>(window, m.offset, &m.name)?))
                }
                "u64" | "uint64" => {
                    expect(8)?;
                    Value::U64(u64::from_le_bytes(try_read_at::<8>(window, m.offset, &m.name)?))
                }
                "i64" | "int64" => {
                    expect(8)?;
                    Value::I64(i64::from_le_bytes(try_read_at::<8>(window, m.offset, &m.name)?))
                }
                "f64" => {
                    expect(8)?;
                    Value::F64(f64::from_le_bytes(try_read_at::<8>(window, m.offset, &m.name)?))
                }
                other => {
                    let nested = table.by_name(other).ok_or_else(|| {
                        anyhow!("member {}.{} has unknown type {other}", udt.name, m.name)
                    })?;
                    if nested.size == 0 || m.offset + nested.size > window.len() {
                        bail!(
                            "member {}.{} of type {other} needs {} bytes at offset {}, instance has {}",
                            udt.name, m.name, nested.size, m.offset, window.len()
                        );
                    }
                    parse_pod_at_depth(table, nested, &window[m.offset..m.offset + nested.size], deps, depth + 1)?
                }
            }
        };
        members.push((m.name.clone(), v));
    }
    if udt.is_reference {
        // A handle type (StringId, StaticStringRef): its value is the dependency its `id` points to.
        return members
            .into_iter()
            .find(|(n, _)| &**n == "id")
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!("reference type {} has no member named id", udt.name));
    }
    Ok(Value::Object(Arc::new(Object { type_name: udt.name.clone(), members })))
}

/// Parses the dependencies buffer of a block. Definitions must come before their uses.
pub fn try_read_dependencies(buf: &[u8], table: &UdtTable) -> Result<DependencyMap> {
    let mut deps = DependencyMap::default();
    try_for_each_record(buf, table, "dependencies", |_, udt, body| {
        let (id, value) = read_dependency(table, udt, body, &deps)?;
        if deps.insert(id, value).is_some() {
            bail!("duplicate dependency id {id:#x}");
        }
        Ok(())
    })?;
    Ok(deps)
}

fn read_dependency(table: &UdtTable, udt: &Udt, body: &[u8], deps: &DependencyMap) -> Result<(u64, Value)> {
    let mut r = Reader::new(body);
    match &*udt.name {
        "StaticString" => {
            let id = r.try_u64("StaticString id")?;
            let s = std::str::from_utf8(r.rest()).map_err(|e| anyhow!("invalid UTF-8 in StaticString {id:#x}: {e}"))?;
            Ok((id, Value::String(s.into())))
        }
        "StaticStringDependency" => {
            let id = r.try_u64("StaticStringDependency id")?;
            let s = try_read_dyn_string(&mut r, "StaticStringDependency")?;
            Ok((id, Value::String(s.into())))
        }
        "PropertySetDependency" => {
            let id = r.try_u64("PropertySetDependency id")?;
            let n = r.try_u32("PropertySetDependency count")? as usize;
            let prop = table
                .by_name("Property")
                .filter(|p| p.size > 0)
                .ok_or_else(|| anyhow!("PropertySetDependency needs a fixed-size UDT named Property in the dependencies metadata"))?;
            let mut members = Vec::with_capacity(n.min(1024));
            for i in 0..n {
                let w = r.try_take_with(prop.size, || format!("Property #{i} of property set {id:#x}"))?;
                let Value::Object(p) = try_parse_pod(table, prop, w, deps)? else {
                    bail!("Property #{i} did not decode to an object");
                };
                let name = p.get_str("name").ok_or_else(|| anyhow!("Property #{i} has no string name"))?.clone();
                let value = p.get("value").cloned().ok_or_else(|| anyhow!("Property #{i} has no value"))?;
                members.push((name, value));
            }
            Ok((id, Value::Object(Arc::new(Object { type_name: PROPERTY_SET.into(), members }))))
        }
        name if udt.size == 0 => bail!("unknown variable-size dependency type {name}"),
        _ => {
            let v = try_parse_pod(table, udt, body, deps)?;
            let id = match &v {
                Value::Object(o) => o.get_u64("id"),
                _ => None,
            }
            .ok_or_else(|| anyhow!("dependency type {} has no integer member named id", udt.name))?;
            Ok((id, v))
        }
    }
}

/// Parses the objects buffer, calling `f(index_in_block, event)` for each event in order.
/// Events of unknown variable-size types are skipped (their size prefix lets us step over them);
/// they still count in `index_in_block`.
pub fn try_for_each_object(
    buf: &[u8],
    table: &UdtTable,
    deps: &DependencyMap,
    mut f: impl FnMut(usize, Arc<Object>) -> Result<()>,
) -> Result<()> {
    try_for_each_record(buf, table, "objects", |index, udt, body| {
        let obj = if udt.size > 0 {
            match try_parse_pod(table, udt, body, deps)? {
                Value::Object(o) => o,
                other => Arc::new(Object { type_name: udt.name.clone(), members: vec![("value".into(), other)] }),
            }
        } else {
            match read_custom_object(table, udt, body, deps)? {
                Some(o) => Arc::new(o),
                None => return Ok(()),
            }
        };
        f(index, obj)
    })
}

fn dep(deps: &DependencyMap, id: u64, event: &str, member: &str) -> Result<Value> {
    deps.get(&id).cloned().ok_or_else(|| anyhow!("missing dependency {id:#x} referenced by {event}.{member}"))
}

/// Reads an embedded handle struct (StringId / StaticStringRef) by value, as laid out in the objects metadata.
fn read_handle(table: &UdtTable, name: &str, r: &mut Reader, deps: &DependencyMap, event: &str) -> Result<Value> {
    let udt = table
        .by_name(name)
        .filter(|u| u.size > 0)
        .ok_or_else(|| anyhow!("{event} needs a fixed-size UDT named {name} in the objects metadata"))?;
    let w = r.try_take_with(udt.size, || format!("{event}.{name}"))?;
    try_parse_pod(table, udt, w, deps)
}

fn read_custom_object(table: &UdtTable, udt: &Udt, body: &[u8], deps: &DependencyMap) -> Result<Option<Object>> {
    let mut r = Reader::new(body);
    let name = &*udt.name;
    let mut members: Vec<(Arc<str>, Value)> = Vec::with_capacity(5);
    let mut put = |n: &str, v: Value| members.push((n.into(), v));
    match name {
        "LogStringEvent" | "LogStringEventV2" | "TaggedLogString" => {
            let desc = r.try_u64("desc")?;
            put("desc", dep(deps, desc, name, "desc")?);
            if name == "TaggedLogString" {
                let props = r.try_u64("properties")?;
                put("properties", dep(deps, props, name, "properties")?);
            }
            put("time", Value::I64(r.try_i64("time")?));
            let msg = if name == "LogStringEvent" {
                String::from_utf8_lossy(r.rest()).into_owned()
            } else {
                try_read_dyn_string(&mut r, "msg")?
            };
            put("msg", Value::String(msg.into()));
        }
        "LogStringInteropEventV2" => {
            put("time", Value::I64(r.try_i64("time")?));
            put("level", Value::U32(r.try_u32("level")?));
            put("target", read_handle(table, "StringId", &mut r, deps, name)?);
            put("msg", Value::String(String::from_utf8_lossy(r.rest()).into()));
        }
        "LogStringInteropEventV3" | "TaggedLogInteropEvent" => {
            put("time", Value::I64(r.try_i64("time")?));
            put("level", Value::U8(r.try_u8("level")?));
            put("target", read_handle(table, "StaticStringRef", &mut r, deps, name)?);
            if name == "TaggedLogInteropEvent" {
                let props = r.try_u64("properties")?;
                put("properties", dep(deps, props, name, "properties")?);
            }
            put("msg", Value::String(try_read_dyn_string(&mut r, "msg")?.into()));
        }
        "ImageEvent" => {
            put("time", Value::I64(r.try_i64("time")?));
            put("name", Value::String(try_read_dyn_string(&mut r, "name")?.into()));
            put("format", Value::String(try_read_dyn_string(&mut r, "format")?.into()));
            let len = r.try_u32("data length")? as usize;
            put("data", Value::Bytes(r.try_take(len, "data")?.into()));
        }
        _ => return Ok(None),
    }
    Ok(Some(Object { type_name: udt.name.clone(), members }))
}
