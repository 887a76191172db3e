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
}

impl Udt {
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| &*m.name == name)
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
    })
}
