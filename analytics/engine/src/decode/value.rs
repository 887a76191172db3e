//! Values produced by the generic transit parser.

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    U32(u32),
    U64(u64),
    I64(i64),
    F64(f64),
    String(Arc<str>),
    Bytes(Arc<[u8]>),
    Object(Arc<Object>),
}

/// An instance of a UDT: its type name and named members. Property sets are objects whose type
/// name is `property_set` and whose members are strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub type_name: Arc<str>,
    pub members: Vec<(Arc<str>, Value)>,
}

pub const PROPERTY_SET: &str = "property_set";

impl Object {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    /// Member at a position found once per type (see [`super::MemberIndex::of_object`]).
    pub fn at(&self, i: Option<usize>) -> Option<&Value> {
        self.members.get(i?).map(|(_, v)| v)
    }

    pub fn get_str(&self, name: &str) -> Option<&Arc<str>> {
        self.get(name)?.as_str()
    }

    pub fn get_object(&self, name: &str) -> Option<&Arc<Object>> {
        self.get(name)?.as_object()
    }

    pub fn get_u32(&self, name: &str) -> Option<u32> {
        self.get(name)?.as_u32()
    }

    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }

    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get_i64(name).map(|v| v as u64)
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&Arc<str>> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Arc<Object>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// `u32` accepts U8 and U32, like upstream's widening rules.
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U8(v) => Some(*v as u32),
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }

    /// `i64` accepts U64 and I64 (ticks are `uint64` in Unreal metadata, `i64` in Rust's).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::U64(v) => Some(*v as i64),
            Value::I64(v) => Some(*v),
            _ => None,
        }
    }
}

impl Value {
    /// JSON form of the golden vectors (`unreal-plugin-protocol/vectors/README.md`): u64/i64 as
    /// decimal strings, bytes as lowercase hex, strings resolved, property sets as
    /// `{"type": "PropertySet", "properties": {name: value}}`, objects as `{"type": name, members…}`;
    /// a referenced dependency object leaves out its `id` (a producer-chosen key, not data).
    pub fn to_json(&self) -> serde_json::Value {
        self.json(false)
    }

    fn json(&self, nested: bool) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::U8(v) => J::from(*v),
            Value::U32(v) => J::from(*v),
            Value::U64(v) => J::String(v.to_string()),
            Value::I64(v) => J::String(v.to_string()),
            Value::F64(v) => serde_json::Number::from_f64(*v).map(J::Number).unwrap_or(J::Null),
            Value::String(s) => J::String(s.to_string()),
            Value::Bytes(b) => J::String(b.iter().map(|x| format!("{x:02x}")).collect()),
            Value::Object(o) => o.json(nested),
        }
    }
}

impl Object {
    pub fn to_json(&self) -> serde_json::Value {
        self.json(false)
    }

    fn json(&self, nested: bool) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if &*self.type_name == PROPERTY_SET {
            let props = self.members.iter().map(|(n, v)| (n.to_string(), v.json(true))).collect();
            map.insert("type".into(), serde_json::Value::String("PropertySet".into()));
            map.insert("properties".into(), serde_json::Value::Object(props));
            return serde_json::Value::Object(map);
        }
        map.insert("type".into(), serde_json::Value::String(self.type_name.to_string()));
        for (n, v) in &self.members {
            if nested && &**n == "id" {
                continue;
            }
            map.insert(n.to_string(), v.json(true));
        }
        serde_json::Value::Object(map)
    }
}
