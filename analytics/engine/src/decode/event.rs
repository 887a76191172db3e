//! Events borrowed from a decoded block: members are read at their offset when asked for, so
//! walking a block allocates nothing per event. Dependencies (strings, descriptors, property
//! sets) are built once per block and shared by reference.

use super::parser::{DependencyMap, Taken};
use super::strings::decode_text;
use super::udt::{CheckPlan, Kind, Udt, UdtTable};
use super::value::{Object, Value};
use anyhow::Result;
use std::borrow::Cow;
use std::sync::Arc;

/// A member read in place: scalars by value, everything else borrowed from the block.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    U8(u8),
    U32(u32),
    U64(u64),
    I64(i64),
    F64(f64),
    /// A dependency of the block.
    Value(&'a Value),
    /// A dynamic string as stored: codec (already checked) and bytes, decoded on demand.
    Text(u8, &'a [u8]),
    Bytes(&'a [u8]),
    /// A fixed-size struct held by value.
    Pod(PodRef<'a>),
}

/// One checked instance of a fixed-size UDT inside a block.
#[derive(Debug, Clone, Copy)]
pub struct PodRef<'a> {
    pub(super) table: &'a UdtTable,
    pub udt: &'a Udt,
    pub(super) window: &'a [u8],
    pub(super) deps: &'a DependencyMap,
}

impl<'a> PodRef<'a> {
    /// Member `i` of the UDT (checked again: cheap, and a stray index must not panic).
    pub fn member(&self, i: usize) -> Option<ValueRef<'a>> {
        let m = self.udt.members.get(i)?;
        self.try_member(m, 0).ok()
    }

    pub fn try_to_object(&self) -> Result<Object> {
        let members = self
            .udt
            .members
            .iter()
            .map(|m| Ok((m.name.clone(), self.try_member(m, 0)?.try_to_value()?)))
            .collect::<Result<_>>()?;
        Ok(Object { type_name: self.udt.name.clone(), members })
    }
}

impl<'a> ValueRef<'a> {
    /// `i64` accepts U64 and I64 (ticks are `uint64` in Unreal metadata, `i64` in Rust's).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ValueRef::U64(v) => Some(v as i64),
            ValueRef::I64(v) => Some(v),
            _ => None,
        }
    }

    /// `u32` accepts U8 and U32, like upstream's widening rules.
    pub fn as_u32(&self) -> Option<u32> {
        match *self {
            ValueRef::U8(v) => Some(v as u32),
            ValueRef::U32(v) => Some(v),
            _ => None,
        }
    }

    /// Borrowed unless the producer wrote UTF-16 or invalid UTF-8.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        match *self {
            ValueRef::Value(Value::String(s)) => Some(Cow::Borrowed(&**s)),
            ValueRef::Text(codec, bytes) => decode_text(codec, bytes, "string").ok(),
            _ => None,
        }
    }

    /// Shares the dependency's string when there is one instead of copying it.
    pub fn to_arc_str(&self) -> Option<Arc<str>> {
        match *self {
            ValueRef::Value(Value::String(s)) => Some(s.clone()),
            _ => self.as_str().map(Arc::from),
        }
    }

    /// Dependency objects only (descriptors, property sets): the `Arc` gives views an identity to memoize on.
    pub fn as_object(&self) -> Option<&'a Arc<Object>> {
        match *self {
            ValueRef::Value(Value::Object(o)) => Some(o),
            _ => None,
        }
    }

    pub fn try_to_value(&self) -> Result<Value> {
        Ok(match *self {
            ValueRef::U8(v) => Value::U8(v),
            ValueRef::U32(v) => Value::U32(v),
            ValueRef::U64(v) => Value::U64(v),
            ValueRef::I64(v) => Value::I64(v),
            ValueRef::F64(v) => Value::F64(v),
            ValueRef::Value(v) => v.clone(),
            ValueRef::Text(codec, bytes) => Value::String(decode_text(codec, bytes, "string")?.into()),
            ValueRef::Bytes(b) => Value::Bytes(b.into()),
            ValueRef::Pod(p) => Value::Object(Arc::new(p.try_to_object()?)),
        })
    }
}

/// The hand-written variable-size types have at most this many members.
const MAX_CUSTOM: usize = 5;

/// Members of an event read by hand (variable-size types), named by static strings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Custom<'a> {
    len: usize,
    members: [(&'static str, ValueRef<'a>); MAX_CUSTOM],
}

impl Default for Custom<'_> {
    fn default() -> Self {
        Self { len: 0, members: [("", ValueRef::U8(0)); MAX_CUSTOM] }
    }
}

impl<'a> Custom<'a> {
    pub(super) fn put(&mut self, name: &'static str, v: ValueRef<'a>) {
        self.members[self.len] = (name, v);
        self.len += 1;
    }

    pub(super) fn with(mut self, name: &'static str, v: ValueRef<'a>) -> Self {
        self.put(name, v);
        self
    }

    fn members(&self) -> &[(&'static str, ValueRef<'a>)] {
        &self.members[..self.len]
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum EventBody<'a> {
    Pod(PodRef<'a>),
    Custom(Custom<'a>),
}

/// One event of a block, already checked: reading a member cannot fail on valid indexes.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub udt: &'a Udt,
    pub(super) body: EventBody<'a>,
}

impl<'a> EventRef<'a> {
    pub fn type_name(&self) -> &'a str {
        &self.udt.name
    }

    /// Position of `name` among the members: resolve it once per type, then use [`EventRef::member`].
    pub fn member_index(&self, name: &str) -> Option<usize> {
        match &self.body {
            EventBody::Pod(p) => p.udt.member_index(name),
            EventBody::Custom(c) => c.members().iter().position(|(n, _)| *n == name),
        }
    }

    pub fn member(&self, i: usize) -> Option<ValueRef<'a>> {
        match &self.body {
            EventBody::Pod(p) => p.member(i),
            EventBody::Custom(c) => c.members().get(i).map(|(_, v)| *v),
        }
    }

    /// The dependency id stored in reference member `i` of a fixed-size event, without resolving
    /// it: lets a view memoize per id what it derives from the dependency.
    pub fn reference_id(&self, i: usize) -> Option<u64> {
        let EventBody::Pod(p) = &self.body else { return None };
        let m = p.udt.members.get(i).filter(|m| m.is_reference)?;
        Some(u64::from_le_bytes(p.window.get(m.offset..m.offset.saturating_add(8))?.try_into().ok()?))
    }

    /// The 8 bytes at byte `offset` of a fixed-size event: a member's place resolved once per type
    /// ([`Udt::word_offset`]), read per event. `None` for variable-size events and past the end.
    #[inline(always)]
    pub fn word(&self, offset: usize) -> Option<u64> {
        let EventBody::Pod(p) = &self.body else { return None };
        Some(u64::from_le_bytes(p.window.get(offset..offset.saturating_add(8))?.try_into().ok()?))
    }

    /// Integer member `i` (`u64` or `i64`) of a fixed-size event, read straight from its bytes:
    /// the per-event path of views that resolved the member's position once per type.
    #[inline]
    pub fn i64_at(&self, i: usize) -> Option<i64> {
        let EventBody::Pod(p) = &self.body else { return self.member(i)?.as_i64() };
        let m = p.udt.members.get(i).filter(|m| !m.is_reference && m.size == 8 && matches!(m.kind, Kind::U64 | Kind::I64))?;
        Some(i64::from_le_bytes(p.window.get(m.offset..m.offset.saturating_add(8))?.try_into().ok()?))
    }

    pub fn get(&self, name: &str) -> Option<ValueRef<'a>> {
        self.member(self.member_index(name)?)
    }

    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }

    pub fn get_u32(&self, name: &str) -> Option<u32> {
        self.get(name)?.as_u32()
    }

    pub fn get_str(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name)?.as_str()
    }

    pub fn get_object(&self, name: &str) -> Option<&'a Arc<Object>> {
        self.get(name)?.as_object()
    }

    /// The event as an owned object (golden vectors, `to_json`): allocates, not for the hot path.
    pub fn try_to_object(&self) -> Result<Object> {
        match &self.body {
            EventBody::Pod(p) => p.try_to_object(),
            EventBody::Custom(c) => Ok(Object {
                type_name: self.udt.name.clone(),
                members: c
                    .members()
                    .iter()
                    .map(|(n, v)| Ok((Arc::from(*n), v.try_to_value()?)))
                    .collect::<Result<_>>()?,
            }),
        }
    }
}

/// Past this many types a cache stops growing (and its misses resolve by name).
const MAX_CACHED_TYPES: usize = 32;

/// What a view works out once per event type (where its members lie, what kind of row it makes),
/// found again by the type's address. A stream has few types, and consecutive events often differ
/// (a span's begin, then its end): a short inline search, no hashing, no call per event.
pub struct TypeMemo<T> {
    types: Vec<(usize, T)>,
}

impl<T> Default for TypeMemo<T> {
    fn default() -> Self {
        Self { types: Vec::new() }
    }
}

impl<T> TypeMemo<T> {
    /// Between streams: types are known by address.
    pub fn clear(&mut self) {
        self.types.clear();
    }

    /// Borrowed, not copied: a copy of a freshly found entry was read back through a store.
    /// (A stream has at most 256 types, the range of a type index: the list needs no bound.)
    #[inline(always)]
    pub fn get(&mut self, e: &EventRef, make: impl FnOnce(&EventRef) -> T) -> &T {
        let key = e.udt as *const Udt as usize;
        // Most streams log with one event type: it is found without a loop.
        if self.types.first().is_some_and(|(k, _)| *k == key) {
            return &self.types[0].1;
        }
        let i = match self.types.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => self.insert(key, make(e)),
        };
        &self.types[i].1
    }

    #[cold]
    fn insert(&mut self, key: usize, t: T) -> usize {
        self.types.push((key, t));
        self.types.len() - 1
    }
}

/// What a view's fast path ([`super::try_for_each_object_with`]) works out once per type index
/// of a stream's objects: the record length, and where the members it reads lie.
pub struct RunTypes<T> {
    /// Per type index: 0 not looked at yet, else the record length (type byte included) of a
    /// type the fast path reads, or 1 for one it does not (no record is one byte long: events
    /// the fast path reads have members).
    strides: [usize; 256],
    layouts: [T; 256],
}

impl<T: Copy + Default> Default for RunTypes<T> {
    fn default() -> Self {
        Self { strides: [0; 256], layouts: [T::default(); 256] }
    }
}

impl<T: Copy + Default> RunTypes<T> {
    /// Between streams: type indexes mean other types.
    pub fn clear(&mut self) {
        self.strides = [0; 256];
    }

    /// The record length and layout of type `type_index`, when the fast path reads its events.
    /// `learn(udt, ids)` is asked once, only for fixed-size types whose instances the walk checks
    /// by their dependency ids alone (at byte offsets `ids`); it must return a layout only when
    /// the fast path checks each of these ids itself. Borrowed: a copied layout was read back
    /// through the stack, in the chain from one record to the next.
    #[inline(always)]
    pub fn get(&mut self, type_index: u8, table: &UdtTable, learn: impl FnOnce(&Udt, &[usize]) -> Option<T>) -> Option<(usize, &T)> {
        let i = type_index as usize;
        if self.strides[i] == 0 {
            self.learn(i, table, learn);
        }
        (self.strides[i] > 1).then(|| (self.strides[i], &self.layouts[i]))
    }

    /// The record length of the first record's type, when the fast path reads it.
    #[inline(always)]
    pub fn first_stride(&mut self, records: &[u8], table: &UdtTable, learn: impl FnOnce(&Udt, &[usize]) -> Option<T>) -> Option<usize> {
        self.get(*records.first()?, table, learn).map(|(stride, _)| stride)
    }

    /// Takes records from the start of `records` while they are `stride` bytes long, of types the
    /// fast path reads, and `take(layout, event)` accepts them (`event`: the record after its type
    /// byte). One length for the whole run, so the next record's place does not wait on this one's
    /// type (a load, then its layout: most of an event's time when it did).
    #[inline(always)]
    pub fn take_run(
        &mut self,
        records: &[u8],
        stride: usize,
        table: &UdtTable,
        learn: impl Fn(&Udt, &[usize]) -> Option<T> + Copy,
        mut take: impl FnMut(&T, &[u8]) -> bool,
    ) -> Taken {
        let mut at = 0;
        while let Some(record) = records.get(at..at + stride) {
            let Some((_, t)) = self.get(record[0], table, learn).filter(|&(s, _)| s == stride) else { break };
            if !take(t, &record[1..]) {
                break;
            }
            at += stride;
        }
        Taken { records: at / stride, bytes: at }
    }

    #[cold]
    fn learn(&mut self, i: usize, table: &UdtTable, learn: impl FnOnce(&Udt, &[usize]) -> Option<T>) {
        let layout = table.udts.get(i).filter(|u| u.size > 0 && !u.is_reference).and_then(|u| match &u.check {
            CheckPlan::Ids(ids) => learn(u, ids),
            CheckPlan::Walk => None,
        });
        self.strides[i] = 1;
        if let Some(l) = layout {
            self.layouts[i] = l;
            self.strides[i] = 1 + table.udts[i].size;
        }
    }
}

/// The little-endian word at `offset` of an event's bytes (a [`Udt::word_offset`]).
#[inline(always)]
pub fn le_word(event: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(event[offset..offset + 8].try_into().expect("8 bytes"))
}

/// Member positions of `names`, resolved once per type: views read the same few members of every
/// event (and of its descriptor), and finding them by name each time would compare strings per
/// event. A type is identified by address: call [`MemberIndex::clear`] between streams, whose
/// type tables differ.
pub struct MemberIndex<const N: usize> {
    names: [&'static str; N],
    /// A stream has few types: a short list searched by identity beats hashing.
    types: Vec<(usize, [Option<usize>; N])>,
}

impl<const N: usize> MemberIndex<N> {
    pub fn new(names: [&'static str; N]) -> Self {
        Self { names, types: Vec::new() }
    }

    pub fn clear(&mut self) {
        self.types.clear();
    }

    #[inline]
    fn positions(&mut self, key: usize, resolve: impl Fn(&str) -> Option<usize>) -> [Option<usize>; N] {
        if let Some((_, p)) = self.types.iter().find(|(k, _)| *k == key) {
            return *p;
        }
        let p = self.names.map(resolve);
        if self.types.len() < MAX_CACHED_TYPES {
            self.types.push((key, p));
        }
        p
    }

    /// Positions among an event's members, for [`EventRef::member`].
    pub fn of(&mut self, e: &EventRef) -> [Option<usize>; N] {
        self.positions(e.udt as *const Udt as usize, |n| e.member_index(n))
    }

    /// Positions among a dependency object's members, for [`Object::at`]: objects built from one
    /// type share the `Arc` of its name and list their members in the same order.
    pub fn of_object(&mut self, o: &Object) -> [Option<usize>; N] {
        self.positions(Arc::as_ptr(&o.type_name) as *const u8 as usize, |n| o.members.iter().position(|(m, _)| &**m == n))
    }
}
