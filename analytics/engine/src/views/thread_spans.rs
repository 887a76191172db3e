//! `thread_spans`: call trees rebuilt from the begin/end events of one `cpu` stream.

use super::block_source::{decode_block_with, load_stream_blocks, split_for_cores, Rollback, StreamBlocks};
use super::columns::{dict, ts, ts_array, CallSite, InPlace};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use crate::metadata::{BlockFilter, BlockRow};

use crate::decode::{id_slot, le_word, RunTypes, Taken, TypeMemo, Udt};
use crate::time::TimeRange;
use anyhow::{bail, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, DictionaryArray, Int32Array, Int64Array, StringArray, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct ThreadSpansView;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("parent", DataType::Int64, false),
        Field::new("depth", DataType::UInt32, false),
        Field::new("hash", DataType::UInt32, false),
        ts("begin"),
        ts("end"),
        Field::new("duration", DataType::Int64, false),
        dict("name"),
        dict("target"),
        dict("filename"),
        Field::new("line", DataType::UInt32, false),
    ]))
});

/// Spans in begin order, a vector per column: handed to Arrow without a copy, and none of a
/// span's columns is read back to build another (a row struct was walked once per column).
#[derive(Default)]
pub struct Spans {
    pub id: Vec<i64>,
    /// -1 for a root span.
    pub parent: Vec<i64>,
    pub depth: Vec<u32>,
    pub begin: Vec<i64>,
    pub end: Vec<i64>,
    /// Index into [`CallSites::sites`].
    pub site: Vec<i32>,
}

impl Spans {
    fn with_capacity(n: usize) -> Self {
        Self {
            id: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
            depth: Vec::with_capacity(n),
            begin: Vec::with_capacity(n),
            end: Vec::with_capacity(n),
            site: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    #[inline(always)]
    fn push(&mut self, id: i64, parent: i64, depth: u32, begin: i64, end: i64, site: i32) {
        self.id.push(id);
        self.parent.push(parent);
        self.depth.push(depth);
        self.begin.push(begin);
        self.end.push(end);
        self.site.push(site);
    }

    fn reserve(&mut self, n: usize) {
        self.id.reserve(n);
        self.parent.reserve(n);
        self.depth.reserve(n);
        self.begin.reserve(n);
        self.end.reserve(n);
        self.site.reserve(n);
    }

    fn truncate(&mut self, len: usize) {
        self.id.truncate(len);
        self.parent.truncate(len);
        self.depth.truncate(len);
        self.begin.truncate(len);
        self.end.truncate(len);
        self.site.truncate(len);
    }

    fn append(&mut self, other: &mut Spans) {
        self.id.append(&mut other.id);
        self.parent.append(&mut other.parent);
        self.depth.append(&mut other.depth);
        self.begin.append(&mut other.begin);
        self.end.append(&mut other.end);
        self.site.append(&mut other.site);
    }

    /// Keeps the spans that overlap `range`, in order.
    fn retain_overlapping(&mut self, range: TimeRange) {
        let keep: Vec<bool> = self.begin.iter().zip(&self.end).map(|(&b, &e)| range.overlaps(b, e)).collect();
        fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut k = keep.iter();
            v.retain(|_| *k.next().expect("one flag per span"));
        }
        retain(&mut self.id, &keep);
        retain(&mut self.parent, &keep);
        retain(&mut self.depth, &keep);
        retain(&mut self.begin, &keep);
        retain(&mut self.end, &keep);
        retain(&mut self.site, &keep);
    }
}

/// The call sites spans refer to, each stored once (a stream has a few hundred, its spans millions).
#[derive(Default)]
pub struct CallSites {
    pub sites: Vec<CallSite>,
    index: HashMap<(Arc<str>, Arc<str>, Arc<str>, u32), u32>,
}

impl CallSites {
    fn intern(&mut self, site: CallSite) -> u32 {
        let key = (site.name.clone(), site.target.clone(), site.filename.clone(), site.line);
        let next = self.sites.len() as u32;
        *self.index.entry(key).or_insert_with(|| {
            self.sites.push(site);
            next
        })
    }

    /// A dictionary column whose keys are site indices.
    fn column(&self, keys: &Int32Array, field: impl Fn(&CallSite) -> &str) -> ArrayRef {
        let values = StringArray::from_iter_values(self.sites.iter().map(field));
        // SAFETY: every key is a span's `site`, an index `intern` returned into `sites` (no nulls);
        // `try_new` would check each of them again, for each of the three site columns.
        Arc::new(unsafe { DictionaryArray::<Int32Type>::new_unchecked(keys.clone(), Arc::new(values)) })
    }
}

/// The end of a span whose end event is not read yet.
const UNSET: i64 = i64::MIN;

/// What the call stack needs of an event type: begin (1), end (2) or neither (0), and where an
/// event's time and descriptor id lie (byte offsets), when it has them.
#[derive(Clone, Copy)]
struct SpanType {
    kind: u8,
    time: Option<usize>,
    desc: Option<usize>,
}

/// Begin (1), end (2) or neither (0), by the event type's name.
fn span_kind(type_name: &str) -> u8 {
    if type_name.starts_with("BeginThread") {
        1
    } else if type_name.starts_with("EndThread") {
        2
    } else {
        0
    }
}

fn span_type(udt: &Udt) -> SpanType {
    let word = |member: &str, reference: bool| {
        let i = udt.member_index(member)?;
        (udt.members[i].is_reference == reference).then_some(())?;
        udt.word_offset(i)
    };
    SpanType { kind: span_kind(&udt.name), time: word("time", false), desc: word("thread_span_desc", true) }
}

/// Call sites of one block's span descriptors by id: a block has a few used over and over, which
/// their [`id_slot`] finds; the others are in a list.
struct SiteByDesc {
    slots: [(u64, u32); 64],
    all: Vec<(u64, u32)>,
}

impl Default for SiteByDesc {
    fn default() -> Self {
        Self { slots: [(0, u32::MAX); 64], all: Vec::new() }
    }
}

impl SiteByDesc {
    fn clear(&mut self) {
        self.slots = [(0, u32::MAX); 64];
        self.all.clear();
    }

    #[inline(always)]
    fn get(&self, id: u64) -> Option<u32> {
        match self.slots[id_slot(id)] {
            (at, site) if at == id && site != u32::MAX => Some(site),
            _ => self.all.iter().find(|(k, _)| *k == id).map(|&(_, site)| site),
        }
    }

    fn insert(&mut self, id: u64, site: u32) {
        self.slots[id_slot(id)] = (id, site);
        self.all.push((id, site));
    }
}

/// Blocks decoded per round, per core: bounds the memory of the parts' spans.
const BLOCKS_PER_CORE_ROUND: usize = 4;

/// Where a begin or end event type with a descriptor keeps its time and descriptor id, for the
/// fast path: when the walk's check of one is that its descriptor id is a dependency of the block.
#[derive(Clone, Copy, Default)]
struct FastSpanType {
    begin: bool,
    time: usize,
    desc: usize,
}

fn fast_span_type(udt: &Udt, ids: &[usize]) -> Option<FastSpanType> {
    let SpanType { kind, time, desc } = span_type(udt);
    let (time, desc) = (time?, desc?);
    (kind != 0 && ids == [desc]).then_some(FastSpanType { begin: kind == 1, time, desc })
}

/// An end event that found its part's call stack empty: it closes a span of an earlier part, or
/// one that began before the first block read.
#[derive(Clone, Copy)]
struct Orphan {
    object: i64,
    time: i64,
    site: u32,
    /// Spans of the part that began before it.
    after: usize,
}

/// The spans of a part (consecutive blocks of a stream, decoded on their own thread), rebuilt with
/// the part's own call stack: depths count from the part's first block and its roots have parent
/// -1 until [`Stitch::add`] puts them under the spans earlier parts left open.
#[derive(Default)]
struct PartSpans {
    spans: Spans,
    /// Slots of the spans open, innermost last.
    open: Vec<usize>,
    orphans: Vec<Orphan>,
    /// The part's call sites; spans' `site` indexes them until stitched.
    sites: CallSites,
    /// Descriptor id -> site, valid within one block (ids are per block).
    by_desc: SiteByDesc,
    /// `open` and the orphan count when the current block began: what a corrupt block rolls back to.
    at_block: (Vec<usize>, usize),
}

impl PartSpans {
    fn clear(&mut self) {
        self.spans.truncate(0);
        self.open.clear();
        self.orphans.clear();
        self.sites = CallSites::default();
    }

    fn start_block(&mut self) {
        self.by_desc.clear();
        self.at_block.0.clone_from(&self.open);
        self.at_block.1 = self.orphans.len();
    }

    #[inline(always)]
    fn begin(&mut self, object: i64, time: i64, site: u32) {
        let parent = self.open.last().map_or(-1, |&slot| self.spans.id[slot]);
        self.open.push(self.spans.len());
        self.spans.push(object, parent, self.open.len() as u32 - 1, time, UNSET, site as i32);
    }

    #[inline(always)]
    fn end(&mut self, object: i64, time: i64, site: u32) {
        match self.open.pop() {
            Some(slot) => self.spans.end[slot] = time,
            None => self.orphans.push(Orphan { object, time, site, after: self.spans.len() }),
        }
    }

    /// The fast path: begin and end events read straight from the objects buffer, as long as
    /// their records have one length, their descriptor has a site in this block (the walk
    /// resolved it) and an end has a span to close. Other events go through the walk.
    #[inline(always)]
    fn run(&mut self, index: usize, records: &[u8], fast: &mut RunTypes<FastSpanType>, sb: &StreamBlocks, object_offset: i64) -> Taken {
        let table = &sb.types.objects;
        let Some(stride) = fast.first_stride(records, table, fast_span_type) else { return Taken::default() };
        let Self { spans, open, by_desc, .. } = self;
        let mut spans = SpanTail::new(spans, records.len() / stride);
        let mut object = object_offset.wrapping_add(index as i64);
        fast.take_run(records, stride, table, fast_span_type, |t, event| {
            let Some(site) = by_desc.get(le_word(event, t.desc)) else { return false };
            let time = sb.converter.ticks_to_ns(le_word(event, t.time) as i64);
            if t.begin {
                let parent = open.last().map_or(-1, |&slot| spans.id(slot));
                open.push(spans.len());
                spans.push(object, parent, open.len() as u32 - 1, time, site as i32);
            } else {
                let Some(slot) = open.pop() else { return false };
                spans.set_end(slot, time);
            }
            // Wrapping: `object_offset` comes from the block's row (an id, not arithmetic).
            object = object.wrapping_add(1);
            true
        })
    }
}

impl Rollback for PartSpans {
    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Back to the start of the current block: its spans dropped, the ones it closed open again
    /// (the end it gave them is replaced when they close, at the latest by [`Stitch::finish`]).
    fn truncate(&mut self, len: usize) {
        self.spans.truncate(len);
        self.open.clone_from(&self.at_block.0);
        self.orphans.truncate(self.at_block.1);
    }
}

/// Spans written in place: one row count for all the columns of [`Spans`] (see [`InPlace`]),
/// checked once per span against the room reserved; and the end of a span already in, set.
struct SpanTail<'a> {
    len: usize,
    room_end: usize,
    id: InPlace<'a, i64>,
    parent: InPlace<'a, i64>,
    depth: InPlace<'a, u32>,
    begin: InPlace<'a, i64>,
    end: InPlace<'a, i64>,
    site: InPlace<'a, i32>,
}

impl<'a> SpanTail<'a> {
    fn new(spans: &'a mut Spans, room: usize) -> Self {
        let len = spans.len();
        let Spans { id, parent, depth, begin, end, site } = spans;
        let i = |v| InPlace::new(v, room);
        let (id, parent, begin, end) = (i(id), i(parent), i(begin), i(end));
        Self { len, room_end: len + room, id, parent, depth: InPlace::new(depth, room), begin, end, site: InPlace::new(site, room) }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    /// A span just begun (its end unset).
    #[inline(always)]
    fn push(&mut self, id: i64, parent: i64, depth: u32, begin: i64, site: i32) {
        let i = self.len;
        assert!(i < self.room_end, "spans appended past the room reserved for them");
        // SAFETY: row `i` is within the room every column reserved.
        unsafe {
            self.id.write(i, id);
            self.parent.write(i, parent);
            self.depth.write(i, depth);
            self.begin.write(i, begin);
            self.end.write(i, UNSET);
            self.site.write(i, site);
        }
        self.len = i + 1;
    }

    #[inline(always)]
    fn id(&self, slot: usize) -> i64 {
        assert!(slot < self.len);
        // SAFETY: below `len`, so written.
        unsafe { self.id.read(slot) }
    }

    #[inline(always)]
    fn set_end(&mut self, slot: usize, end: i64) {
        assert!(slot < self.len);
        // SAFETY: below `len`, so within the column.
        unsafe { self.end.write(slot, end) }
    }
}

impl Drop for SpanTail<'_> {
    fn drop(&mut self) {
        // SAFETY: every span below `len` was written by `push` (or was there before).
        unsafe {
            self.id.set_len(self.len);
            self.parent.set_len(self.len);
            self.depth.set_len(self.len);
            self.begin.set_len(self.len);
            self.end.set_len(self.len);
            self.site.set_len(self.len);
        }
    }
}

/// Rebuilds the spans of `blocks` (consecutive, in order) into `part`. This is the expensive part
/// (decompression, checks, descriptors, call stack), done for several block ranges at once.
fn part_spans(sb: &StreamBlocks, blocks: &[(BlockRow, bytes::Bytes)], part: &mut PartSpans) {
    part.clear();
    // A part has at most one span per event.
    part.spans.reserve(super::events_hint_of(blocks));
    // Per event type (by address): whether it begins (1) or ends (2) a span, or neither (0), and
    // where its time and descriptor id lie. A stream has few types, a block mostly one or two.
    let mut types = TypeMemo::<SpanType>::default();
    let mut fast = RunTypes::<FastSpanType>::default();
    for b in blocks {
        part.start_block();
        let block = &b.0;
        decode_block_with(sb, b, part, #[inline(always)] |index, e, part| {
            let ty = types.get(e, |e| span_type(e.udt));
            if ty.kind == 0 {
                return;
            }
            let Some(ticks) = ty.time.and_then(|at| e.word(at)) else {
                return;
            };
            let desc = ty.desc.and_then(|at| e.word(at));
            let site = match desc.and_then(|d| part.by_desc.get(d)) {
                Some(site) => site,
                None => {
                    let Some(site) = CallSite::of(e, "thread_span_desc", "thread_span_location") else {
                        return;
                    };
                    let site = part.sites.intern(site);
                    if let Some(d) = desc {
                        part.by_desc.insert(d, site);
                    }
                    site
                }
            };
            let (object, time) = (block.object_offset.wrapping_add(index as i64), sb.converter.ticks_to_ns(ticks as i64));
            if ty.kind == 1 {
                part.begin(object, time, site);
            } else {
                part.end(object, time, site);
            }
        }, #[inline(always)] |index, records, part| part.run(index, records, &mut fast, sb, block.object_offset));
    }
}

/// The spans of the parts stitched so far, in order, and the call stack across them.
#[derive(Default)]
struct Stitch {
    spans: Spans,
    /// Slots of the spans open, innermost last.
    open: Vec<usize>,
    /// End events no span read matches, in order: (id, end, site) of the clipped spans they make.
    orphans: Vec<(i64, i64, i32)>,
    /// (first span, orphans before it), where that count changes.
    marks: Vec<(usize, u32)>,
}

impl Stitch {
    /// Appends the next part: its spans go under the spans left open before it, and its orphan
    /// ends close those, innermost first. Its call sites are interned in `sites`.
    fn add(&mut self, part: &mut PartSpans, sites: &mut CallSites) {
        let remap: Vec<i32> = std::mem::take(&mut part.sites).sites.into_iter().map(|site| sites.intern(site) as i32).collect();
        let p = &mut part.spans;
        // The first part's sites are the first interned: nothing to remap.
        if remap.iter().enumerate().any(|(i, &site)| site as usize != i) {
            for site in &mut p.site {
                *site = remap[*site as usize];
            }
        }
        let (base, below) = (self.spans.len(), self.open.len());
        let mut from = 0;
        for (q, o) in part.orphans.iter().enumerate() {
            self.lift(p, from..o.after, below.saturating_sub(q));
            from = o.after;
            match below.checked_sub(q + 1) {
                Some(i) => self.spans.end[self.open[i]] = o.time,
                None => {
                    self.orphans.push(((-2i64).wrapping_sub(o.object), o.time, remap[o.site as usize]));
                    self.marks.push((base + o.after, self.orphans.len() as u32));
                }
            }
        }
        self.lift(p, from..p.len(), below.saturating_sub(part.orphans.len()));
        self.open.truncate(below.saturating_sub(part.orphans.len()));
        self.open.extend(part.open.iter().map(|&slot| base + slot));
        // A stitch with no room reserved takes its one part's columns as they are.
        if self.spans.id.capacity() == 0 {
            std::mem::swap(&mut self.spans, p);
        } else {
            self.spans.append(p);
        }
    }

    /// Puts the part's spans in `range` under the `depth` spans open before the part: deeper by
    /// as much, and its roots become children of the innermost.
    fn lift(&self, p: &mut Spans, range: std::ops::Range<usize>, depth: usize) {
        if depth == 0 || range.is_empty() {
            return;
        }
        let parent = self.spans.id[self.open[depth - 1]];
        for d in &mut p.depth[range.clone()] {
            *d += depth as u32;
        }
        for up in &mut p.parent[range] {
            if *up == -1 {
                *up = parent;
            }
        }
    }

    /// The spans, once every part is in: those still open end at `end`; orphan ends become
    /// clipped spans beginning at `start`, first, above every span read.
    fn finish(mut self, start: i64, end: i64) -> Spans {
        let mut spans = self.spans;
        for &slot in &self.open {
            spans.end[slot] = end.max(spans.begin[slot]);
        }
        // k spans were open when the first block began; the m-th orphan end closes the innermost
        // one still open (depth k-1-m). A span that began after j orphan ends sits under k-j of them.
        let k = self.orphans.len() as u32;
        if k == 0 {
            return spans;
        }
        self.marks.push((spans.len(), k));
        let mut from = (0, 0);
        for &(to, j) in &self.marks {
            let above = k - from.1;
            for i in from.0..to {
                spans.depth[i] += above;
                if spans.parent[i] == -1 && above > 0 {
                    spans.parent[i] = self.orphans[from.1 as usize].0;
                }
            }
            from = (to, j);
        }
        // Outermost first: they all begin at `start`.
        let orphans = &self.orphans;
        let mut out = Spans::with_capacity(orphans.len() + spans.len());
        for (m, &(id, end, site)) in orphans.iter().enumerate().rev() {
            out.push(id, orphans.get(m + 1).map_or(-1, |o| o.0), k - 1 - m as u32, start.min(end), end, site);
        }
        out.append(&mut spans);
        out
    }
}

/// A part of a round of blocks: decoded already, or decoding on its own thread.
enum Part<'s, T> {
    Done(T),
    Running(std::thread::ScopedJoinHandle<'s, T>),
}

/// Rebuilds the spans of one stream, in begin order. Blocks are chained in order, so a span that
/// opens in one block and closes in a later one comes out whole; spans still open after the last
/// block end at that block's end time. An end event with no open span closes a span that began
/// before the first block read (a range query reads only its blocks): it begins at that block's
/// begin time, and the spans inside it get their true depth and parent; its id is made from the
/// end event's (negative: its begin event was not read).
///
/// Blocks are decoded a few per core at a time, in parallel, each part with its own call stack;
/// the parts are then stitched in order. A span takes its slot when it begins, so the output is
/// in begin order without a sort (ties: parent before child, then stream order); the clipped
/// spans come first.
pub fn rebuild_spans(sb: &StreamBlocks, sites: &mut CallSites) -> Spans {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut stitch = Stitch::default();
    // Several parts are appended to room reserved once: growing by doubling would copy the spans
    // of a long stream again and again. (A span is two events: its begin and its end.)
    if sb.blocks.len() > 1 {
        stitch.spans.reserve(super::events_hint_of(&sb.blocks) / 2);
    }
    // Parts go back to a pool once stitched: fresh multi-megabyte buffers every round would
    // each be paged in again.
    let pool: std::sync::Mutex<Vec<PartSpans>> = Default::default();
    let decode = |blocks: &[(BlockRow, bytes::Bytes)]| {
        let mut part = pool.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        part_spans(sb, blocks, &mut part);
        part
    };
    let decode = &decode;
    let single = sb.blocks.len() <= 1;
    std::thread::scope(|scope| {
        // Round k+1 decodes on every core while the parts of round k are stitched.
        let blocks: &[(BlockRow, bytes::Bytes)] = &sb.blocks;
        let mut rounds = blocks.chunks(cores * BLOCKS_PER_CORE_ROUND).map(|round| {
            let per = round.len().div_ceil(cores);
            // One block has nothing to overlap with: decoded here, without a thread to start.
            round.chunks(per).map(|part| if single { Part::Done(decode(part)) } else { Part::Running(scope.spawn(move || decode(part))) }).collect::<Vec<_>>()
        });
        let mut pending = rounds.next();
        while let Some(handles) = pending {
            pending = rounds.next();
            for h in handles {
                let mut part = match h {
                    Part::Done(part) => part,
                    Part::Running(h) => h.join().expect("span decoding thread panicked"),
                };
                stitch.add(&mut part, sites);
                pool.lock().unwrap_or_else(|e| e.into_inner()).push(part);
            }
        }
    });
    let start = sb.blocks.first().map_or(i64::MIN, |(b, _)| sb.converter.delta_to_ns(b.begin_ticks));
    let end = sb.blocks.last().map_or(i64::MIN, |(b, _)| sb.converter.delta_to_ns(b.end_ticks));
    stitch.finish(start, end)
}

#[async_trait]
impl View for ThreadSpansView {
    fn name(&self) -> &'static str {
        "thread_spans"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Blocks { tag: "cpu" }
    }

    /// Keyed by stream, not process, like upstream.
    fn instance(&self, id: &str) -> Result<Instance> {
        if id == "global" {
            bail!("thread_spans has no global instance: use view_instance('thread_spans', '<stream_id>')");
        }
        Ok(Instance::Stream(parse_uuid(self.name(), id)?))
    }

    fn has_global_instance(&self) -> bool {
        false
    }

    fn time_columns(&self) -> (&'static str, &'static str) {
        ("begin", "end")
    }

    fn hourly_partitions(&self) -> bool {
        false
    }

    async fn make_batches(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        self.make_projected(ctx, instance, range, None).await
    }

    /// Builds only the columns the query reads.
    async fn make_projected(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        let Instance::Stream(stream_id) = instance else {
            bail!("thread_spans instances are streams");
        };
        let filter = BlockFilter { stream_id: Some(stream_id.clone()), range, ..Default::default() };
        let streams = load_stream_blocks(ctx, &filter).await?;
        Ok(split_for_cores(self.spans_batch(&streams, range, projection)?))
    }

    fn rows_from_blocks(&self, streams: &[StreamBlocks], range: Option<TimeRange>, _filter: &RowFilter) -> Result<RecordBatch> {
        self.spans_batch(streams, range, None)
    }
}

impl ThreadSpansView {
    /// The spans of `streams` overlapping `range`, as the columns of `projection` (all when `None`).
    fn spans_batch(&self, streams: &[StreamBlocks], range: Option<TimeRange>, projection: Option<&[usize]>) -> Result<RecordBatch> {
        let mut sites = CallSites::default();
        let mut spans = Spans::default();
        for sb in streams {
            let mut rebuilt = rebuild_spans(sb, &mut sites);
            if let Some(r) = range {
                rebuilt.retain_overlapping(r);
            }
            if spans.is_empty() {
                spans = rebuilt;
            } else {
                spans.append(&mut rebuilt);
            }
        }
        let rows = spans.len();
        let all: Vec<usize> = (0..SCHEMA.fields().len()).collect();
        let projection = projection.unwrap_or(&all);
        // Each column vector becomes its Arrow array without a copy; the call-site columns share
        // the spans' site keys.
        let duration = projection
            .contains(&6)
            .then(|| Int64Array::from(spans.begin.iter().zip(&spans.end).map(|(b, e)| e - b).collect::<Vec<_>>()));
        let Spans { mut id, mut parent, mut depth, mut begin, mut end, site } = spans;
        let keys = Int32Array::from(site);
        let per_site = |f: &dyn Fn(&CallSite) -> u32| {
            let v: Vec<u32> = sites.sites.iter().map(f).collect();
            UInt32Array::from(keys.values().iter().map(|&k| v[k as usize]).collect::<Vec<_>>())
        };
        // Built on first use, so each vector is moved once (a column listed twice is the same
        // array twice).
        let mut built: [Option<ArrayRef>; 11] = Default::default();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(projection.len());
        for &i in projection {
            let Some(slot) = built.get_mut(i) else { bail!("thread_spans has no column {i}") };
            let column = slot.get_or_insert_with(|| -> ArrayRef {
                let take = std::mem::take::<Vec<i64>>;
                match i {
                    0 => Arc::new(Int64Array::from(take(&mut id))),
                    1 => Arc::new(Int64Array::from(take(&mut parent))),
                    2 => Arc::new(UInt32Array::from(std::mem::take(&mut depth))),
                    3 => Arc::new(per_site(&|c| c.hash())),
                    4 => Arc::new(ts_array(take(&mut begin))),
                    5 => Arc::new(ts_array(take(&mut end))),
                    6 => Arc::new(duration.clone().expect("computed when projected")),
                    7 => sites.column(&keys, |c| &c.name),
                    8 => sites.column(&keys, |c| &c.target),
                    9 => sites.column(&keys, |c| &c.filename),
                    _ => Arc::new(per_site(&|c| c.line)),
                }
            });
            columns.push(column.clone());
        }
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(Arc::new(SCHEMA.project(projection)?), columns, &options)?)
    }
}
