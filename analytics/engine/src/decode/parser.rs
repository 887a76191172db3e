//! Generic transit parsing driven by each stream's UDT metadata, plus the hand-written readers for
//! the variable-size types (reference §3.6).

use super::event::{Custom, EventBody, EventRef, PodRef, ValueRef};
use super::reader::{try_read_at, Reader};
use super::strings::{try_read_dyn_string, try_read_dyn_text, CODEC_UTF8};
use super::udt::{CheckPlan, Kind, Member, Udt, UdtTable, MAX_NESTING};
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

/// Records a view's fast path read on its own (see [`try_for_each_object_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    pub records: usize,
    pub bytes: usize,
}

/// Walks `index:u8 [size:u32] body` records, calling `f(record_index, udt, body, state)`. Before
/// each record, `run(record_index, rest, state)` may take records from the start of the rest.
fn try_for_each_record<'a, S>(
    buf: &'a [u8],
    table: &'a UdtTable,
    queue: &str,
    state: &mut S,
    mut run: impl FnMut(usize, &'a [u8], &mut S) -> Taken,
    mut f: impl FnMut(usize, &'a Udt, &'a [u8], &mut S) -> Result<()>,
) -> Result<()> {
    let mut r = Reader::new(buf);
    let mut index = 0usize;
    while !r.is_empty() {
        let taken = run(index, r.peek_rest(), state);
        if taken.records > 0 {
            r.try_take(taken.bytes, "records a view read")?;
            index += taken.records;
            continue;
        }
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
        f(index, udt, body, state).with_context(|| format!("{} #{index} at offset {at} of the {queue} buffer", udt.name))?;
        index += 1;
    }
    Ok(())
}

/// Reads one fixed-size instance of `udt` from `window` (exactly `udt.size` bytes or more).
pub fn try_parse_pod(table: &UdtTable, udt: &Udt, window: &[u8], deps: &DependencyMap) -> Result<Value> {
    PodRef { table, udt, window, deps }.try_value(0)?.try_to_value()
}

impl<'a> PodRef<'a> {
    /// Checks every member of the instance (bounds, sizes, dependencies) without building
    /// anything. `Some` for a handle type (StringId, StaticStringRef): it reads as the dependency
    /// its `id` points to. (Not returning the plain `PodRef` keeps the walker's hot path small.)
    pub(super) fn try_check(&self, depth: usize) -> Result<Option<ValueRef<'a>>> {
        let udt = self.udt;
        if depth > MAX_NESTING {
            bail!("type {} nests deeper than {MAX_NESTING} levels", udt.name);
        }
        let mut id = None;
        for m in &udt.members {
            let v = self.try_member(m, depth)?;
            if udt.is_reference && id.is_none() && &*m.name == "id" {
                id = Some(v);
            }
        }
        if udt.is_reference {
            return id.map(Some).ok_or_else(|| anyhow!("reference type {} has no member named id", udt.name));
        }
        Ok(None)
    }

    /// The checked instance as a value: itself, or the dependency of a handle.
    pub(super) fn try_value(self, depth: usize) -> Result<ValueRef<'a>> {
        Ok(self.try_check(depth)?.unwrap_or(ValueRef::Pod(self)))
    }

    /// Reads member `m` of the instance in place, checked. Inlined: returned out of line, the
    /// `Result<ValueRef>` cost more than the read itself (store-forwarding stalls in `try_check`).
    #[inline(always)]
    pub(super) fn try_member(&self, m: &'a Member, depth: usize) -> Result<ValueRef<'a>> {
        let Self { table, udt, window, deps } = *self;
        let end = m.offset.checked_add(m.size).unwrap_or(usize::MAX);
        if end > window.len() {
            bail!(
                "member {}.{} spans bytes {}..{} outside the {}-byte instance",
                udt.name, m.name, m.offset, end, window.len()
            );
        }
        if m.is_reference {
            if m.size < 8 {
                bail!("reference member {}.{} has size {}, need at least 8", udt.name, m.name, m.size);
            }
            let id = u64::from_le_bytes(*try_read_at::<8>(window, m.offset, &m.name)?);
            return deps
                .get(&id)
                .map(ValueRef::Value)
                .ok_or_else(|| anyhow!("missing dependency {id:#x} referenced by {}.{}", udt.name, m.name));
        }
        let expect = |n: usize| -> Result<()> {
            if m.size != n {
                bail!("member {}.{} of type {} has size {}, expected {n}", udt.name, m.name, m.type_name, m.size);
            }
            Ok(())
        };
        let eight = || -> Result<[u8; 8]> {
            expect(8)?;
            Ok(*try_read_at::<8>(window, m.offset, &m.name)?)
        };
        Ok(match m.kind {
            Kind::U8 => {
                expect(1)?;
                ValueRef::U8(window[m.offset])
            }
            Kind::U32 => {
                expect(4)?;
                ValueRef::U32(u32::from_le_bytes(*try_read_at::<4>(window, m.offset, &m.name)?))
            }
            Kind::U64 => ValueRef::U64(u64::from_le_bytes(eight()?)),
            Kind::I64 => ValueRef::I64(i64::from_le_bytes(eight()?)),
            Kind::F64 => ValueRef::F64(f64::from_le_bytes(eight()?)),
            Kind::Nested(i) => {
                let nested = &table.udts[i];
                let end = m.offset.checked_add(nested.size).unwrap_or(usize::MAX);
                if nested.size == 0 || end > window.len() {
                    bail!(
                        "member {}.{} of type {} needs {} bytes at offset {}, instance has {}",
                        udt.name, m.name, m.type_name, nested.size, m.offset, window.len()
                    );
                }
                PodRef { table, udt: nested, window: &window[m.offset..end], deps }.try_value(depth + 1)?
            }
            Kind::Unknown => bail!("member {}.{} has unknown type {}", udt.name, m.name, m.type_name),
        })
    }
}

/// Parses the dependencies buffer of a block. Definitions must come before their uses.
pub fn try_read_dependencies(buf: &[u8], table: &UdtTable) -> Result<DependencyMap> {
    let mut deps = DependencyMap::default();
    try_for_each_record(buf, table, "dependencies", &mut (), |_, _, _| Taken::default(), |_, udt, body, _| {
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

/// Slot of a dependency id in a 64-entry direct-mapped cache. A block's events point at a few
/// dependencies over and over: one slot compare is cheaper than a hash lookup per event.
#[inline(always)]
pub fn id_slot(id: u64) -> usize {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
}

/// Dependency ids of this block already found in its map, by [`id_slot`]. An empty slot holds an
/// id that does not map to it, so it never matches: one compare per lookup, no occupancy bits.
struct SeenIds {
    ids: [u64; 64],
}

impl Default for SeenIds {
    fn default() -> Self {
        // 0 maps to slot 0 and 1 to another slot.
        let mut ids = [0; 64];
        ids[0] = 1;
        debug_assert!(id_slot(1) != 0);
        Self { ids }
    }
}

impl SeenIds {
    #[inline(always)]
    fn check(&mut self, deps: &DependencyMap, id: u64) -> bool {
        let slot = id_slot(id);
        if self.ids[slot] == id {
            return true;
        }
        let found = deps.contains_key(&id);
        if found {
            self.ids[slot] = id;
        }
        found
    }
}

/// Parses the objects buffer, calling `f(index_in_block, event)` for each event in order. Events
/// are read in place and fully checked before `f` sees them; nothing is allocated per event.
/// Events of unknown variable-size types are skipped (their size prefix lets us step over them);
/// they still count in `index_in_block`.
pub fn try_for_each_object<'a>(
    buf: &'a [u8],
    table: &'a UdtTable,
    deps: &'a DependencyMap,
    mut f: impl FnMut(usize, &EventRef<'a>) -> Result<()>,
) -> Result<()> {
    try_for_each_object_with(buf, table, deps, &mut (), |i, e, _| f(i, e), |_, _, _| Taken::default())
}

/// [`try_for_each_object`] with a view's fast path and its state. Before each record,
/// `run(index_in_block, rest, state)` may read records from the start of `rest` (`index:u8 body`)
/// on its own, and says how many it took and their bytes; the walk goes on after them.
///
/// `run` must only take what the walk would accept: events of fixed-size types whose check plan
/// is [`CheckPlan::Ids`], each of whose ids a walked event of this block has already resolved.
pub fn try_for_each_object_with<'a, S>(
    buf: &'a [u8],
    table: &'a UdtTable,
    deps: &'a DependencyMap,
    state: &mut S,
    mut f: impl FnMut(usize, &EventRef<'a>, &mut S) -> Result<()>,
    run: impl FnMut(usize, &'a [u8], &mut S) -> Taken,
) -> Result<()> {
    let mut seen = SeenIds::default();
    // One event value serves every fixed-size event: only its type and window are rewritten, in
    // place. A fresh `EventRef` per event (an enum as large as its biggest body) was copied through
    // the stack with wide loads stalled on the narrow stores just made: most of the walk's time.
    let mut pod_event: Option<EventRef<'a>> = None;
    // Inlined down to the view's code: a call per event cost more than the event (measured).
    try_for_each_record(buf, table, "objects", state, run, #[inline(always)] |index, udt, body, state| {
        let body = if udt.size > 0 {
            if let CheckPlan::Ids(ids) = &udt.check {
                let id_at = |o: usize| u64::from_le_bytes(body[o..o + 8].try_into().unwrap());
                // Most event types hold one reference (their call-site descriptor).
                let resolved = match ids.as_slice() {
                    [o] => seen.check(deps, id_at(*o)),
                    _ => ids.iter().all(|&o| seen.check(deps, id_at(o))),
                };
                if resolved {
                    let event = match &mut pod_event {
                        Some(event) => {
                            event.udt = udt;
                            if let EventBody::Pod(p) = &mut event.body {
                                p.udt = udt;
                                p.window = body;
                            }
                            event
                        }
                        None => pod_event.insert(EventRef { udt, body: EventBody::Pod(PodRef { table, udt, window: body, deps }) }),
                    };
                    return f(index, event, state);
                }
            }
            // The walk: for types that need it, and to name what is wrong with this instance.
            let pod = PodRef { table, udt, window: body, deps };
            match pod.try_check(0)? {
                None => EventBody::Pod(pod),
                Some(handle) => EventBody::Custom(Custom::default().with("value", handle)),
            }
        } else {
            match read_custom_object(table, udt, body, deps)? {
                Some(c) => EventBody::Custom(c),
                None => return Ok(()),
            }
        };
        f(index, &EventRef { udt, body }, state)
    })
}

fn dep<'a>(deps: &'a DependencyMap, id: u64, event: &str, member: &str) -> Result<ValueRef<'a>> {
    deps.get(&id)
        .map(ValueRef::Value)
        .ok_or_else(|| anyhow!("missing dependency {id:#x} referenced by {event}.{member}"))
}

/// Reads an embedded handle struct (StringId / StaticStringRef) by value, as laid out in the objects metadata.
fn read_handle<'a>(
    table: &'a UdtTable,
    name: &str,
    r: &mut Reader<'a>,
    deps: &'a DependencyMap,
    event: &str,
) -> Result<ValueRef<'a>> {
    let udt = table
        .by_name(name)
        .filter(|u| u.size > 0)
        .ok_or_else(|| anyhow!("{event} needs a fixed-size UDT named {name} in the objects metadata"))?;
    let w = r.try_take_with(udt.size, || format!("{event}.{name}"))?;
    PodRef { table, udt, window: w, deps }.try_value(0)
}

fn text<'a>(r: &mut Reader<'a>, what: &str) -> Result<ValueRef<'a>> {
    let (codec, bytes) = try_read_dyn_text(r, what)?;
    Ok(ValueRef::Text(codec, bytes))
}

/// The hand-written variable-size types: their members are read in place like a POD's; only
/// strings that are not UTF-8 get decoded, and only when a view asks for them.
fn read_custom_object<'a>(
    table: &'a UdtTable,
    udt: &'a Udt,
    body: &'a [u8],
    deps: &'a DependencyMap,
) -> Result<Option<Custom<'a>>> {
    let mut r = Reader::new(body);
    let name = &*udt.name;
    let mut c = Custom::default();
    match name {
        "LogStringEvent" | "LogStringEventV2" | "TaggedLogString" => {
            let desc = r.try_u64("desc")?;
            c.put("desc", dep(deps, desc, name, "desc")?);
            if name == "TaggedLogString" {
                let props = r.try_u64("properties")?;
                c.put("properties", dep(deps, props, name, "properties")?);
            }
            c.put("time", ValueRef::I64(r.try_i64("time")?));
            let msg = if name == "LogStringEvent" { ValueRef::Text(CODEC_UTF8, r.rest()) } else { text(&mut r, "msg")? };
            c.put("msg", msg);
        }
        "LogStringInteropEventV2" => {
            c.put("time", ValueRef::I64(r.try_i64("time")?));
            c.put("level", ValueRef::U32(r.try_u32("level")?));
            c.put("target", read_handle(table, "StringId", &mut r, deps, name)?);
            c.put("msg", ValueRef::Text(CODEC_UTF8, r.rest()));
        }
        "LogStringInteropEventV3" | "TaggedLogInteropEvent" => {
            c.put("time", ValueRef::I64(r.try_i64("time")?));
            c.put("level", ValueRef::U8(r.try_u8("level")?));
            c.put("target", read_handle(table, "StaticStringRef", &mut r, deps, name)?);
            if name == "TaggedLogInteropEvent" {
                let props = r.try_u64("properties")?;
                c.put("properties", dep(deps, props, name, "properties")?);
            }
            c.put("msg", text(&mut r, "msg")?);
        }
        "ImageEvent" => {
            c.put("time", ValueRef::I64(r.try_i64("time")?));
            c.put("name", text(&mut r, "name")?);
            c.put("format", text(&mut r, "format")?);
            let len = r.try_u32("data length")? as usize;
            c.put("data", ValueRef::Bytes(r.try_take(len, "data")?));
        }
        _ => return Ok(None),
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::{id_slot, SeenIds};

    #[test]
    fn an_empty_seen_slot_matches_no_id() {
        let seen = SeenIds::default();
        for (slot, &id) in seen.ids.iter().enumerate() {
            assert_ne!(id_slot(id), slot, "slot {slot} starts with an id that maps to it");
        }
    }
}
