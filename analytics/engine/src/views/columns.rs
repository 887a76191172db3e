//! Column types and builders shared by the views.

use datafusion::arrow::array::{DictionaryArray, Int32Array, StringBuilder, TimestampNanosecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, TimeUnit};

/// Builds a `Dictionary(Int32, Utf8)` column. A row that repeats the previous row's value (the
/// source columns for a whole block, a target or a property set most of the time) costs one
/// comparison instead of hashing the string.
pub struct DictBuilder {
    keys: Vec<i32>,
    values: StringBuilder,
    index: HashMap<Box<str>, i32, ahash::RandomState>,
    last: Option<i32>,
}

impl Default for DictBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DictBuilder {
    pub fn new() -> Self {
        Self { keys: Vec::new(), values: StringBuilder::new(), index: HashMap::default(), last: None }
    }

    fn value(&self, key: i32) -> &[u8] {
        let o = self.values.offsets_slice();
        &self.values.values_slice()[o[key as usize] as usize..o[key as usize + 1] as usize]
    }

    pub fn append_value(&mut self, v: &str) {
        let key = self.key(v);
        self.keys.push(key);
    }

    /// The key of `v` (added to the values if new), found by one comparison when it is the last
    /// value looked up; no row is appended.
    #[inline]
    pub fn key(&mut self, v: &str) -> i32 {
        match self.last {
            Some(k) if same(self.value(k), v.as_bytes()) => k,
            _ => self.intern(v),
        }
    }

    /// The key of `v`, added to the values if new; no row is appended.
    pub fn intern(&mut self, v: &str) -> i32 {
        let next = self.index.len() as i32;
        let k = *self.index.entry(v.into()).or_insert(next);
        if k == next {
            self.values.append_value(v);
        }
        self.last = Some(k);
        k
    }

    /// Appends a row holding the value of a key [`DictBuilder::intern`] returned.
    pub fn append_key(&mut self, key: i32) {
        self.keys.push(key);
    }

    /// The keys, with room for `rows` more, written in place.
    pub fn keys_in_place(&mut self, rows: usize) -> InPlace<'_, i32> {
        InPlace::new(&mut self.keys, rows)
    }

    /// Drops the rows past `len` (the values they used stay, unreferenced).
    pub fn truncate(&mut self, len: usize) {
        self.keys.truncate(len);
    }

    pub fn reserve(&mut self, rows: usize) {
        self.keys.reserve(rows);
    }

    pub fn finish(&mut self) -> DictionaryArray<Int32Type> {
        let keys = Int32Array::from(std::mem::take(&mut self.keys));
        self.finish_with(keys)
    }

    /// The column with `keys` for its rows (the keys it appended are dropped): keys that several
    /// columns share are built once.
    fn finish_with(&mut self, keys: Int32Array) -> DictionaryArray<Int32Type> {
        self.keys = Vec::new();
        self.index.clear();
        self.last = None;
        let values = std::sync::Arc::new(self.values.finish());
        // SAFETY: every key came from `intern`, which returns the index of a value it appended.
        unsafe { DictionaryArray::new_unchecked(keys, values) }
    }
}

/// Byte equality that never calls memcmp for empty slices: an empty `String` points at a
/// dangling address, and glibc's AVX-512 memcmp does a masked load from it even for length 0,
/// which the CPU serves through a slow fault-suppression assist (measured: most of a build's time
/// when a column is empty on every row).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// Text appended to a [`TextColumn`] row after row (a static log's message): its bytes padded to
/// whole 16-byte chunks, so each append is a few fixed-size moves instead of a memcpy call.
pub struct ChunkedText {
    chunks: Box<[[u8; 16]]>,
    len: usize,
}

impl ChunkedText {
    pub fn new(s: &str) -> Self {
        // At least one chunk, so an append always starts with one fixed move.
        let mut chunks = vec![[0u8; 16]; s.len().div_ceil(16).max(1)].into_boxed_slice();
        for (chunk, part) in chunks.iter_mut().zip(s.as_bytes().chunks(16)) {
            chunk[..part.len()].copy_from_slice(part);
        }
        Self { chunks, len: s.len() }
    }

    /// Bytes an append writes, padding included.
    pub fn room(&self) -> usize {
        self.chunks.len() * 16
    }

    /// The text's own bytes (the padding is written too).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes the chunks at `dst`.
    ///
    /// # Safety
    /// `dst` has [`ChunkedText::room`] bytes to write.
    #[inline(always)]
    pub unsafe fn write_to(&self, dst: *mut u8) {
        let dst = dst.cast::<[u8; 16]>();
        // Most messages fit one chunk: one move, and a loop only for longer ones.
        dst.write_unaligned(self.chunks[0]);
        for i in 1..self.chunks.len() {
            dst.add(i).write_unaligned(self.chunks[i]);
        }
    }
}

/// A column's vector written in place by a tight loop that keeps one row count, in a register,
/// for all the columns it fills, and checks it once per row against the room they all reserved
/// ([`Vec::push`] reloads and stores each column's length through memory, per row). The loop
/// sets the length when done.
pub struct InPlace<'a, T> {
    vec: &'a mut Vec<T>,
    base: *mut T,
}

impl<'a, T: Copy> InPlace<'a, T> {
    /// With room for `rows` more rows past the vector's length.
    pub fn new(vec: &'a mut Vec<T>, rows: usize) -> Self {
        vec.reserve(rows);
        let base = vec.as_mut_ptr();
        Self { vec, base }
    }

    /// The vector's length (rows written in place are not counted until [`InPlace::set_len`]).
    pub fn len(&self) -> usize {
        self.vec.len()
    }

    /// Where row `i` goes.
    ///
    /// # Safety
    /// `i` is below the length plus the room asked for.
    #[inline(always)]
    pub unsafe fn at(&mut self, i: usize) -> *mut T {
        self.base.add(i)
    }

    /// # Safety
    /// `i` is below the length plus the room asked for.
    #[inline(always)]
    pub unsafe fn write(&mut self, i: usize, v: T) {
        self.base.add(i).write(v)
    }

    /// # Safety
    /// Row `i` is written.
    #[inline(always)]
    pub unsafe fn read(&self, i: usize) -> T {
        self.base.add(i).read()
    }

    /// # Safety
    /// Every row below `len` is written, and `len` is within the room.
    pub unsafe fn set_len(&mut self, len: usize) {
        self.vec.set_len(len)
    }
}

/// A `Utf8` column that can roll back, built from `&str`s only.
pub struct TextColumn {
    offsets: Vec<i32>,
    bytes: Vec<u8>,
}

impl Default for TextColumn {
    fn default() -> Self {
        Self { offsets: vec![0], bytes: Vec::new() }
    }
}

impl TextColumn {
    #[inline]
    pub fn push(&mut self, v: &str) {
        self.bytes.extend_from_slice(v.as_bytes());
        self.offsets.push(i32::try_from(self.bytes.len()).expect("a text column holds at most 2 GiB"));
    }

    #[inline(always)]
    pub fn push_chunked(&mut self, t: &ChunkedText) {
        let at = self.bytes.len();
        let room = t.chunks.len() * 16;
        if self.bytes.capacity() - at < room {
            self.bytes.reserve(room);
        }
        // SAFETY: the reserve makes room for every chunk; the length then covers the text's own
        // bytes only, all written just now (the padding past them stays spare capacity).
        unsafe {
            t.write_to(self.bytes.as_mut_ptr().add(at));
            self.bytes.set_len(at + t.len);
        }
        self.offsets.push(i32::try_from(self.bytes.len()).expect("a text column holds at most 2 GiB"));
    }

    /// Room for `rows` more offsets (the text's length is not known ahead).
    pub fn reserve(&mut self, rows: usize) {
        self.offsets.reserve(rows);
    }

    /// Offsets and bytes written in place, with room for `rows` more rows of `bytes` bytes in all:
    /// row `i`'s end offset is at `i + 1`.
    pub fn in_place(&mut self, rows: usize, bytes: usize) -> (InPlace<'_, i32>, InPlace<'_, u8>) {
        (InPlace::new(&mut self.offsets, rows), InPlace::new(&mut self.bytes, bytes))
    }

    pub fn truncate(&mut self, len: usize) {
        self.offsets.truncate(len + 1);
        self.bytes.truncate(self.offsets[self.offsets.len() - 1] as usize);
    }

    pub fn finish(self) -> datafusion::arrow::array::StringArray {
        use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        // SAFETY: offsets start at 0 and grow with each `&str` appended, which is valid UTF-8.
        unsafe { datafusion::arrow::array::StringArray::new_unchecked(offsets, Buffer::from_vec(self.bytes), None) }
    }
}

/// A view's own columns in [`EventRows`], between `time` and the two property columns.
pub trait ViewColumns: Default {
    fn reserve(&mut self, rows: usize);
    fn truncate(&mut self, len: usize);
    fn finish(self) -> Vec<datafusion::arrow::array::ArrayRef>;
}

/// Rows of a view with one row per event, being built: the source columns, `time`, the view's own
/// columns, `properties` and `process_properties` (kept with the source columns: it is the same
/// for every row of a block). They roll back together when a block turns out corrupt midway, so
/// each block is walked once.
#[derive(Default)]
pub struct EventRows<V> {
    pub source: SourceColumns,
    pub time: Vec<i64>,
    pub view: V,
    pub properties: DictBuilder,
}

impl<V: ViewColumns> super::block_source::Rollback for EventRows<V> {
    fn len(&self) -> usize {
        self.time.len()
    }

    fn truncate(&mut self, len: usize) {
        self.source.truncate(len);
        self.time.truncate(len);
        self.view.truncate(len);
        self.properties.truncate(len);
    }
}

impl<V: ViewColumns> EventRows<V> {
    /// Before each block's rows: they are from this process and block.
    pub fn start_block(&mut self, p: &crate::metadata::ProcessRow, block: &crate::metadata::BlockRow) {
        self.source.start_block(p, block, self.time.len());
    }

    /// Room for one row per event of these streams' blocks (their metadata counts the events, trusted as far as their payloads' sizes allow), so
    /// the columns never grow by copying. Worth it when most events become rows (no row filter).
    pub fn reserve_events(&mut self, streams: &[super::StreamBlocks]) {
        let n = streams.iter().map(|sb| super::events_hint_of(&sb.blocks)).sum();
        self.time.reserve(n);
        self.view.reserve(n);
        self.properties.reserve(n);
    }

    pub fn finish(mut self, schema: datafusion::arrow::datatypes::SchemaRef) -> anyhow::Result<datafusion::arrow::record_batch::RecordBatch> {
        use std::sync::Arc;
        let (mut columns, process_properties) = self.source.finish(self.time.len());
        columns.push(Arc::new(ts_array(self.time)));
        columns.extend(self.view.finish());
        columns.push(Arc::new(self.properties.finish()));
        columns.push(process_properties);
        Ok(datafusion::arrow::record_batch::RecordBatch::try_new(schema, columns)?)
    }
}

/// `Timestamp(Nanosecond, "+00:00")`.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
}

/// `Dictionary(Int32, Utf8)`.
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub fn ts(name: &str) -> Field {
    Field::new(name, ts_type(), false)
}

pub fn dict(name: &str) -> Field {
    Field::new(name, dict_type(), false)
}

pub fn ts_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("+00:00")
}

/// A [`ts_type`] column of these nanoseconds, without a copy.
pub fn ts_array(ns: Vec<i64>) -> datafusion::arrow::array::TimestampNanosecondArray {
    datafusion::arrow::array::TimestampNanosecondArray::from(ns).with_timezone("+00:00")
}

use crate::decode::{EventRef, Object, Value};
use std::collections::HashMap;

/// Property sets as JSON object text, memoized by the identity of the shared dependency object
/// (every event of a block points at the same few property sets).
#[derive(Default)]
pub struct PropertiesJson {
    cache: HashMap<usize, String>,
}

impl PropertiesJson {
    pub fn get(&mut self, props: Option<&std::sync::Arc<Object>>) -> &str {
        match props {
            None => "{}",
            Some(p) => {
                let key = std::sync::Arc::as_ptr(p) as usize;
                self.cache.entry(key).or_insert_with(|| property_set_json(p))
            }
        }
    }

    /// Must be called between blocks: pointers are only stable while the block's objects live.
    pub fn clear(&mut self) {
        self.cache.clear();
    }
}

pub fn property_set_json(p: &Object) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in &p.members {
        let v = match v {
            Value::String(s) => serde_json::Value::String(s.to_string()),
            other => other.to_json(),
        };
        m.insert(k.to_string(), v);
    }
    serde_json::Value::Object(m).to_string()
}

/// Call-site identity of a span: FNV-1a over name, file and line.
pub fn call_site_hash(name: &str, file: &str, line: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes().chain([0]).chain(file.bytes()).chain([0]).chain(line.to_le_bytes()) {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Call-site description of a span event: from its descriptor, or its location plus `name`.
pub struct CallSite {
    pub name: std::sync::Arc<str>,
    pub target: std::sync::Arc<str>,
    pub filename: std::sync::Arc<str>,
    pub line: u32,
}

impl CallSite {
    /// `desc_member` is e.g. `thread_span_desc`, `loc_member` e.g. `thread_span_location`.
    pub fn of(e: &EventRef, desc_member: &str, loc_member: &str) -> Option<CallSite> {
        let empty = || std::sync::Arc::<str>::from("");
        let (site, name) = match e.get_object(desc_member) {
            Some(d) => (d, d.get_str("name").cloned()),
            None => {
                let loc = e.get_object(loc_member)?;
                (loc, e.get("name").and_then(|v| v.to_arc_str()))
            }
        };
        Some(CallSite {
            name: name.unwrap_or_else(empty),
            target: site.get_str("target").cloned().unwrap_or_else(empty),
            filename: site.get_str("file").cloned().unwrap_or_else(empty),
            line: site.get_u32("line").unwrap_or(0),
        })
    }

    pub fn hash(&self) -> u32 {
        call_site_hash(&self.name, &self.filename, self.line)
    }
}

/// The columns that open every event row built from blocks (`log_entries`, `measures`): which
/// process, stream and block it came from.
pub fn source_fields() -> [Field; 7] {
    [dict("process_id"), dict("stream_id"), dict("block_id"), ts("insert_time"), dict("exe"), dict("username"), dict("computer")]
}

/// Builders for [`source_fields`] and `process_properties`. Their values are the same for every
/// row of a block, so they are looked up once per block and each column is filled run by run when
/// the batch is finished.
pub struct SourceColumns {
    process_id: DictBuilder,
    stream_id: DictBuilder,
    block_id: DictBuilder,
    exe: DictBuilder,
    username: DictBuilder,
    computer: DictBuilder,
    process_properties: DictBuilder,
    /// One entry per block, in row order: its keys, its insert time and its first row (its rows
    /// run to the next block's first row).
    runs: Vec<([i32; SOURCE_DICTS], i64, usize)>,
}

/// The dictionary columns of [`SourceColumns`].
const SOURCE_DICTS: usize = 7;

impl Default for SourceColumns {
    fn default() -> Self {
        Self::new()
    }
}

impl SourceColumns {
    pub fn new() -> Self {
        let d = DictBuilder::new;
        Self {
            process_id: d(), stream_id: d(), block_id: d(), exe: d(), username: d(), computer: d(), process_properties: d(),
            runs: Vec::new(),
        }
    }

    /// Drops the runs of blocks that start at or past row `len` (blocks rolled back).
    pub fn truncate(&mut self, len: usize) {
        while self.runs.last().is_some_and(|r| r.2 >= len) {
            self.runs.pop();
        }
    }

    /// The rows from `first_row` on are from this process and block.
    pub fn start_block(&mut self, p: &crate::metadata::ProcessRow, block: &crate::metadata::BlockRow, first_row: usize) {
        // The previous block gave no row: its run is replaced.
        self.truncate(first_row);
        let keys = [
            self.process_id.intern(&p.process_id),
            self.stream_id.intern(&block.stream_id),
            self.block_id.intern(&block.block_id),
            self.exe.intern(&p.exe),
            self.username.intern(&p.username),
            self.computer.intern(&p.computer),
            self.process_properties.intern(&p.properties),
        ];
        self.runs.push((keys, crate::time::to_ns(block.insert_time), first_row));
    }

    /// The [`source_fields`] columns, and `process_properties`, for `rows` rows.
    pub fn finish(mut self, rows: usize) -> (Vec<datafusion::arrow::array::ArrayRef>, datafusion::arrow::array::ArrayRef) {
        use std::sync::Arc;
        assert!(rows == 0 || self.runs.first().is_some_and(|r| r.2 == 0), "every row is in a block's run");
        // Rows per run: up to the next run's first row.
        let counts: Vec<usize> = (0..self.runs.len()).map(|i| self.runs.get(i + 1).map_or(rows, |r| r.2) - self.runs[i].2).collect();
        let mut insert_time: Vec<i64> = Vec::with_capacity(rows);
        for ((_, ns, _), &n) in self.runs.iter().zip(&counts) {
            insert_time.extend(std::iter::repeat_n(*ns, n));
        }
        // A column whose keys equal an earlier column's in every run shares its key buffer: with
        // one process, or one block, most of them are the same keys (each dictionary numbers its
        // values in order of appearance).
        let mut keys: Vec<Int32Array> = Vec::with_capacity(SOURCE_DICTS);
        for j in 0..SOURCE_DICTS {
            let column = match (0..j).find(|&i| self.runs.iter().all(|r| r.0[i] == r.0[j])) {
                Some(i) => keys[i].clone(),
                None => {
                    let mut k: Vec<i32> = Vec::with_capacity(rows);
                    for ((run_keys, _, _), &n) in self.runs.iter().zip(&counts) {
                        k.extend(std::iter::repeat_n(run_keys[j], n));
                    }
                    Int32Array::from(k)
                }
            };
            keys.push(column);
        }
        let dicts = [
            &mut self.process_id, &mut self.stream_id, &mut self.block_id, &mut self.exe, &mut self.username, &mut self.computer,
            &mut self.process_properties,
        ];
        let mut columns: Vec<datafusion::arrow::array::ArrayRef> =
            dicts.into_iter().zip(keys).map(|(d, k)| Arc::new(d.finish_with(k)) as datafusion::arrow::array::ArrayRef).collect();
        let process_properties = columns.pop().expect("seven dictionaries");
        columns.insert(3, Arc::new(ts_array(insert_time)));
        (columns, process_properties)
    }
}

#[cfg(test)]
mod tests {
    use super::{ChunkedText, TextColumn};
    use datafusion::arrow::array::Array;

    #[test]
    fn chunked_and_plain_appends_make_the_same_column() {
        let texts = ["", "a", "fifteen bytes..", "sixteen bytes...", "seventeen bytes..", "é and more than two chunks of text"];
        let (mut plain, mut chunked) = (TextColumn::default(), TextColumn::default());
        for round in 0..3 {
            for t in texts {
                plain.push(t);
                chunked.push_chunked(&ChunkedText::new(t));
            }
            if round == 1 {
                plain.truncate(4);
                chunked.truncate(4);
            }
        }
        let (plain, chunked) = (plain.finish(), chunked.finish());
        assert_eq!(chunked.len(), 4 + texts.len());
        assert_eq!(plain, chunked);
        assert_eq!(chunked.value(3), "sixteen bytes...");
        assert_eq!(chunked.value(4 + 5), texts[5]);
    }
}
