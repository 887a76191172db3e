//! `thread_spans`: call trees rebuilt from the begin/end events of one `cpu` stream.

use super::block_source::{decode_block_with, load_stream_blocks, split_for_cores, Rollback, StreamBlocks};
use super::columns::{dict, ts, ts_array, CallSite, Tail};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use crate::metadata::{BlockFilter, BlockRow};

use crate::decode::{id_slot, le_word, EventRef, RunTypes, Taken, TypeMemo, Udt, WordAt};
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

/// A begin or end event reduced to what the call stack needs.
struct StackEvent {
    object: i64,
    time: i64,
    /// Index into the decoding chunk's own [`CallSites`] until merged.
    site: u32,
    begin: bool,
}

/// What the call stack needs of an event type: begin (1), end (2) or neither (0), and where an
/// event's time and descriptor id lie.
#[derive(Clone, Copy)]
struct SpanType {
    kind: u8,
    time: Option<WordAt>,
    desc: Option<WordAt>,
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

fn span_type(e: &EventRef) -> SpanType {
    let kind = span_kind(e.type_name());
    let word = |member: &str, reference: bool| {
        let i = e.member_index(member)?;
        e.udt.members.get(i).filter(|m| m.is_reference == reference)?;
        e.word_at(i)
    };
    SpanType { kind, time: word("time", false), desc: word("thread_span_desc", true) }
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

/// Blocks decoded per round, per core: bounds the memory of the reduced events.
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
    let begin = match span_kind(&udt.name) {
        0 => return None,
        kind => kind == 1,
    };
    let (time, desc) = (udt.member_index("time")?, udt.member_index("thread_span_desc")?);
    if udt.members[time].is_reference || !udt.members[desc].is_reference {
        return None;
    }
    let (time, desc) = (udt.word_offset(time)?, udt.word_offset(desc)?);
    (ids == [desc]).then_some(FastSpanType { begin, time, desc })
}

/// The reduced events of a round's blocks and what the fast path shares with the walk.
struct SpanBuild {
    events: Vec<StackEvent>,
    /// Descriptor id -> site, valid within one block (ids are per block).
    by_desc: SiteByDesc,
}

impl Rollback for SpanBuild {
    fn len(&self) -> usize {
        self.events.len()
    }
    fn truncate(&mut self, len: usize) {
        self.events.truncate(len)
    }
}

impl SpanBuild {
    /// The fast path: begin and end events read straight from the objects buffer, as long as
    /// their records have one length and their descriptor has a site in this block (the walk
    /// resolved it). The first event of each descriptor goes through the walk.
    #[inline(always)]
    fn run(&mut self, index: usize, records: &[u8], fast: &mut RunTypes<FastSpanType>, sb: &StreamBlocks, object_offset: i64) -> Taken {
        let table = &sb.types.objects;
        let Some(stride) = fast.first_stride(records, table, fast_span_type) else { return Taken::default() };
        let mut events = Tail::new(&mut self.events, records.len() / stride);
        let by_desc = &self.by_desc;
        let mut object = object_offset + index as i64;
        fast.take_run(records, stride, table, fast_span_type, |t, event| {
            let Some(site) = by_desc.get(le_word(event, t.desc)) else { return false };
            events.push(StackEvent { object, time: sb.converter.ticks_to_ns(le_word(event, t.time) as i64), site, begin: t.begin });
            object += 1;
            true
        })
    }
}

/// The begin/end events of `blocks` (in order), with their call sites interned in `sites`. This is
/// the expensive part (decompression, checks, descriptors), done for several block ranges at once.
fn stack_events(sb: &StreamBlocks, blocks: &[(BlockRow, bytes::Bytes)], sites: &mut CallSites, mut events: Vec<StackEvent>) -> Vec<StackEvent> {
    events.clear();
    events.reserve(blocks.iter().map(|(b, _)| b.nb_objects.max(0) as usize).sum());
    let mut build = SpanBuild { events, by_desc: SiteByDesc::default() };
    // Per event type (by address): whether it begins (1) or ends (2) a span, or neither (0), and
    // where its time and descriptor id lie. A stream has few types, a block mostly one or two.
    let mut types = TypeMemo::<SpanType>::default();
    let mut fast = RunTypes::<FastSpanType>::default();
    for b in blocks {
        build.by_desc.clear();
        let block = &b.0;
        decode_block_with(sb, b, &mut build, #[inline(always)] |index, e, build| {
            let ty = types.get(e, span_type);
            if ty.kind == 0 {
                return;
            }
            let Some(ticks) = ty.time.and_then(|at| e.word(at)) else {
                return;
            };
            let desc = ty.desc.and_then(|at| e.word(at));
            let site = match desc.and_then(|d| build.by_desc.get(d)) {
                Some(site) => site,
                None => {
                    let Some(site) = CallSite::of(e, "thread_span_desc", "thread_span_location") else {
                        return;
                    };
                    let site = sites.intern(site);
                    if let Some(d) = desc {
                        build.by_desc.insert(d, site);
                    }
                    site
                }
            };
            build.events.push(StackEvent { object: block.object_offset + index as i64, time: sb.converter.ticks_to_ns(ticks as i64), site, begin: ty.kind == 1 });
        }, #[inline(always)] |index, records, build| build.run(index, records, &mut fast, sb, block.object_offset));
    }
    build.events
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
/// Blocks are decoded a few per core at a time, in parallel; the call stack then runs through
/// their events in order. A span takes its slot when it begins, so the output is in begin order
/// without a sort (ties: parent before child, then stream order); the clipped spans come first.
pub fn rebuild_spans(sb: &StreamBlocks, sites: &mut CallSites) -> Spans {
    const UNSET: i64 = i64::MIN;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut stack: Vec<(usize, i64)> = Vec::new(); // (slot, id) of the open spans
    let events: usize = sb.blocks.iter().map(|(b, _)| b.nb_objects.max(0) as usize).sum();
    let mut spans = Spans::with_capacity(events / 2);
    // Per span, the orphan ends seen before it began; the orphan ends themselves (id, end, site).
    let mut before: Vec<u32> = Vec::with_capacity(events / 2);
    let mut orphans: Vec<(i64, i64, i32)> = Vec::new();
    // Event buffers go back to a pool once walked: fresh multi-megabyte buffers every round
    // would each be paged in again.
    let pool: std::sync::Mutex<Vec<Vec<StackEvent>>> = Default::default();
    let decode = |part: &[(BlockRow, bytes::Bytes)]| {
        let mut local = CallSites::default();
        let buffer = pool.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        (stack_events(sb, part, &mut local, buffer), local)
    };
    let decode = &decode;
    let single = sb.blocks.len() <= 1;
    std::thread::scope(|scope| {
        // Round k+1 decodes on every core while the call stack runs through round k.
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
                let (events, local) = match h {
                    Part::Done(decoded) => decoded,
                    Part::Running(h) => h.join().expect("span decoding thread panicked"),
                };
                let remap: Vec<i32> = local.sites.into_iter().map(|site| sites.intern(site) as i32).collect();
                for ev in &events {
                    let site = remap[ev.site as usize];
                    if ev.begin {
                        let parent = stack.last().map_or(-1, |&(_, id)| id);
                        before.push(orphans.len() as u32);
                        spans.push(ev.object, parent, stack.len() as u32, ev.time, UNSET, site);
                        stack.push((spans.len() - 1, ev.object));
                    } else if let Some((slot, _)) = stack.pop() {
                        spans.end[slot] = ev.time;
                    } else {
                        orphans.push((-2 - ev.object, ev.time, site));
                    }
                }
                pool.lock().unwrap_or_else(|e| e.into_inner()).push(events);
            }
        }
    });
    // Spans still open end with the last block.
    if let Some((last, _)) = sb.blocks.last() {
        let end = sb.converter.delta_to_ns(last.end_ticks);
        for (slot, _) in stack.drain(..) {
            spans.end[slot] = end.max(spans.begin[slot]);
        }
    }
    // k spans were open when the first block began; the m-th orphan end closes the innermost one
    // still open (depth k-1-m). A span that began after j orphan ends sits under k-j of them.
    let k = orphans.len() as u32;
    if k == 0 {
        return spans;
    }
    for (i, j) in before.into_iter().enumerate() {
        let above = k - j;
        spans.depth[i] += above;
        if spans.parent[i] == -1 && above > 0 {
            spans.parent[i] = orphans[j as usize].0;
        }
    }
    let start = sb.blocks.first().map_or(i64::MIN, |(b, _)| sb.converter.delta_to_ns(b.begin_ticks));
    // Outermost first: they all begin at `start`.
    let mut out = Spans::with_capacity(orphans.len() + spans.len());
    for (m, &(id, end, site)) in orphans.iter().enumerate().rev() {
        out.push(id, orphans.get(m + 1).map_or(-1, |o| o.0), k - 1 - m as u32, start.min(end), end, site);
    }
    out.append(&mut spans);
    out
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
