//! Reflection metadata (user-defined types) that a stream sends once and every block relies on.

use anyhow::{anyhow, bail, Context, Result};
use ciborium::value::Value as Cbor;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: Arc<str>,
    pub type_name: String,
    pub offset: usize,
    pub size: usize,
    pub is_reference: bool,
    /// `type_name` resolved once when the table is built, so reading a member compares no strings.
    pub kind: Kind,
}

/// What a non-reference member holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    U8,
    U32,
    U64,
    I64,
    F64,
    /// Another UDT of the same table, by index.
    Nested(usize),
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Udt {
    pub name: Arc<str>,
    /// 0 means variable size: a u32 byte count precedes each instance.
    pub size: usize,
    pub members: Vec<Member>,
    pub is_reference: bool,
    /// How an instance is checked, worked out once when the table is built.
    pub check: CheckPlan,
}

/// What checking one fixed-size instance takes. Bounds, sizes and kinds of members depend only on
/// the type, so they are checked once per table; per instance, only the dependency ids remain.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CheckPlan {
    /// Every member (nested ones too) fits and has a known kind: the instance is valid when the
    /// u64 ids at these byte offsets are dependencies of its block.
    Ids(Vec<usize>),
    /// The member-by-member walk, which also says what is wrong: bad layouts, handle types.
    #[default]
    Walk,
}

/// Nested UDTs deeper than this are treated as corrupt metadata (a type that contains itself).
pub const MAX_NESTING: usize = 16;

/// The dependency-id offsets of `udt` (fixed size, not itself a handle), or None when any member
/// needs the walk. Handles nested in it resolve through their `id`, which must be a reference.
fn id_offsets(udts: &[Udt], udt: &Udt, depth: usize) -> Option<Vec<usize>> {
    if depth > MAX_NESTING || udt.size == 0 {
        return None;
    }
    let mut ids = Vec::new();
    for m in &udt.members {
        if m.offset.checked_add(m.size)? > udt.size {
            return None;
        }
        if m.is_reference {
            if m.size < 8 {
                return None;
            }
            ids.push(m.offset);
            continue;
        }
        let fits = |n: usize| (m.size == n).then_some(());
        match m.kind {
            Kind::U8 => fits(1)?,
            Kind::U32 => fits(4)?,
            Kind::U64 | Kind::I64 | Kind::F64 => fits(8)?,
            Kind::Nested(i) => {
                let nested = &udts[i];
                if nested.size == 0 || m.offset.checked_add(nested.size)? > udt.size {
                    return None;
                }
                if nested.is_reference {
                    // A handle reads as its first `id` member, which must itself be a reference.
                    let id = nested.members.iter().find(|x| &*x.name == "id")?;
                    if !id.is_reference {
                        return None;
                    }
                }
                ids.extend(id_offsets(udts, nested, depth + 1)?.into_iter().map(|o| o + m.offset));
            }
            Kind::Unknown => return None,
        }
    }
    Some(ids)
}

impl Udt {
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| &*m.name == name)
    }

    /// Byte offset of member `i` when it is an 8-byte word read whole: an `u64`/`i64`, or the
    /// dependency id a reference member starts with.
    pub fn word_offset(&self, i: usize) -> Option<usize> {
        let m = self.members.get(i)?;
        let word = if m.is_reference { m.size >= 8 } else { m.size == 8 && matches!(m.kind, Kind::U64 | Kind::I64) };
        (word && m.offset.checked_add(8)? <= self.size).then_some(m.offset)
    }
}

/// One queue's type table: index order for dispatch, plus a by-name index for nested types.
#[derive(Debug, Clone, Default)]
pub struct UdtTable {
    pub udts: Vec<Udt>,
    by_name: HashMap<Arc<str>, usize>,
}

impl UdtTable {
    pub fn new(mut udts: Vec<Udt>) -> Self {
        let mut by_name = HashMap::new();
        for (i, u) in udts.iter().enumerate() {
            by_name.entry(u.name.clone()).or_insert(i);
        }
        for m in udts.iter_mut().flat_map(|u| u.members.iter_mut()) {
            m.kind = match m.type_name.as_str() {
                "u8" | "uint8" => Kind::U8,
                "u32" | "uint32" => Kind::U32,
                "u64" | "uint64" => Kind::U64,
                "i64" | "int64" => Kind::I64,
                "f64" => Kind::F64,
                other => by_name.get(other).map_or(Kind::Unknown, |&i| Kind::Nested(i)),
            };
        }
        let plans: Vec<CheckPlan> = udts
            .iter()
            .map(|u| match u.is_reference {
                true => CheckPlan::Walk,
                false => id_offsets(&udts, u, 0).map_or(CheckPlan::Walk, CheckPlan::Ids),
            })
            .collect();
        for (u, p) in udts.iter_mut().zip(plans) {
            u.check = p;
        }
        Self { udts, by_name }
    }

    pub fn by_name(&self, name: &str) -> Option<&Udt> {
        self.by_name.get(name).map(|&i| &self.udts[i])
    }

    /// Parses a CBOR array of UDTs, as stored in `streams.dependencies_metadata` / `objects_metadata`.
    pub fn try_from_cbor(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let v: Cbor = ciborium::de::from_reader(bytes)
            .map_err(|e| anyhow!("invalid CBOR in {what} ({} bytes): {e}", bytes.len()))?;
        Self::try_from_value(&v).with_context(|| format!("reading {what}"))
    }

    pub fn try_from_value(v: &Cbor) -> Result<Self> {
        let arr = v.as_array().ok_or_else(|| anyhow!("UDT list is not a CBOR array"))?;
        let udts = arr
            .iter()
            .enumerate()
            .map(|(i, u)| udt_from_cbor(u).with_context(|| format!("UDT #{i}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::new(udts))
    }
}

fn map_get<'a>(m: &'a [(Cbor, Cbor)], key: &str) -> Option<&'a Cbor> {
    m.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

fn text(m: &[(Cbor, Cbor)], key: &str) -> Result<String> {
    map_get(m, key)
        .and_then(|v| v.as_text())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("missing text field `{key}`"))
}

fn uint(m: &[(Cbor, Cbor)], key: &str) -> Result<usize> {
    let v = map_get(m, key).and_then(|v| v.as_integer()).ok_or_else(|| anyhow!("missing integer field `{key}`"))?;
    usize::try_from(v).map_err(|_| anyhow!("field `{key}` out of range"))
}

fn boolean(m: &[(Cbor, Cbor)], key: &str) -> Result<bool> {
    map_get(m, key).and_then(|v| v.as_bool()).ok_or_else(|| anyhow!("missing bool field `{key}`"))
}

fn udt_from_cbor(v: &Cbor) -> Result<Udt> {
    let m = v.as_map().ok_or_else(|| anyhow!("UDT is not a CBOR map"))?;
    let name = text(m, "name")?;
    let members = match map_get(m, "members") {
        Some(Cbor::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, mv)| {
                let mm = mv.as_map().ok_or_else(|| anyhow!("member #{i} of {name} is not a map"))?;
                Ok(Member {
                    name: text(mm, "name")?.into(),
                    type_name: text(mm, "type_name")?,
                    offset: uint(mm, "offset")?,
                    size: uint(mm, "size")?,
                    is_reference: boolean(mm, "is_reference")?,
                    kind: Kind::Unknown,
                })
            })
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("members of {name}"))?,
        Some(_) => bail!("`members` of {name} is not an array"),
        None => vec![],
    };
    Ok(Udt {
        size: uint(m, "size")?,
        is_reference: boolean(m, "is_reference")?,
        members,
        name: name.into(),
        check: CheckPlan::Walk,
    })
}
