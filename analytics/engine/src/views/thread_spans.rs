//! `thread_spans`: call trees rebuilt from the begin/end events of one `cpu` stream.

use super::block_source::{decode_stream_blocks, load_stream_blocks, StreamBlocks};
use super::columns::{dict, ts, ts_builder, CallSite};
use super::{parse_uuid, Instance, View, ViewContext, ViewSource};
use crate::decode::MemberIndex;
use crate::metadata::{BlockFilter, BlockRow};
use crate::time::TimeRange;
use anyhow::{bail, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, DictionaryArray, Int32Array, Int64Builder, StringArray, UInt32Array, UInt32Builder};
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

/// A span whose begin event was seen; `id` is the begin event's object number in the stream.
struct Open {
    id: i64,
    begin: i64,
    site: u32,
    /// Orphan ends seen before this begin (see [`rebuild_spans`]).
    orphans_before: u32,
}

pub struct Span {
    pub id: i64,
    /// -1 for a root span.
    pub parent: i64,
    pub depth: u32,
    pub begin: i64,
    pub end: i64,
    /// Index into [`CallSites::sites`].
    pub site: u32,
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
    fn column(&self, keys: &Int32Array, field: impl Fn(&CallSite) -> &str) -> Result<ArrayRef> {
        let values = StringArray::from_iter_values(self.sites.iter().map(field));
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys.clone(), Arc::new(values))?))
    }
}

/// Rebuilds the spans of one stream. Blocks are chained in order, so a span that opens in one
/// block and closes in a later one comes out whole; spans still open after the last block end
/// at that block's end time. An end event with no open span closes a span that began before
/// the first block read (a range query reads only its blocks): it begins at that block's begin
/// time, and the spans inside it get their true depth and parent; its id is made from the end
/// event's (negative: its begin event was not read).
pub fn rebuild_spans(sb: &StreamBlocks, sites: &mut CallSites) -> Vec<Span> {
    let mut stack: Vec<Open> = Vec::new();
    let mut spans = Vec::new();
    // Per span, the orphan ends seen before it began; the orphan ends themselves (id, end, site).
    let mut before: Vec<u32> = Vec::new();
    let mut orphans: Vec<(i64, i64, u32)> = Vec::new();
    let mut members = MemberIndex::new(["time", "thread_span_desc"]);
    // Descriptor address -> site, valid while its block is decoded.
    let mut by_desc: Vec<(usize, u32)> = Vec::new();
    let mut current: *const BlockRow = std::ptr::null();
    decode_stream_blocks(sb, |block, index, e| {
        let ty = e.type_name();
        let is_begin = ty.starts_with("BeginThread");
        let is_end = ty.starts_with("EndThread");
        if !is_begin && !is_end {
            return;
        }
        if !std::ptr::eq(current, block) {
            current = block;
            by_desc.clear();
        }
        let [time, desc] = members.of(e);
        let Some(ticks) = time.and_then(|i| e.member(i)).and_then(|v| v.as_i64()) else {
            return;
        };
        let desc = desc.and_then(|i| e.member(i)).and_then(|v| v.as_object()).map(|d| Arc::as_ptr(d) as usize);
        let site = match desc.and_then(|d| by_desc.iter().find(|(k, _)| *k == d)) {
            Some((_, site)) => *site,
            None => {
                let Some(site) = CallSite::of(e, "thread_span_desc", "thread_span_location") else {
                    return;
                };
                let site = sites.intern(site);
                if let Some(d) = desc {
                    by_desc.push((d, site));
                }
                site
            }
        };
        let t = sb.converter.ticks_to_ns(ticks);
        let object = block.object_offset + index as i64;
        if is_begin {
            stack.push(Open { id: object, begin: t, site, orphans_before: orphans.len() as u32 });
        } else if let Some(open) = stack.pop() {
            before.push(open.orphans_before);
            spans.push(Span {
                id: open.id,
                parent: stack.last().map_or(-1, |p| p.id),
                depth: stack.len() as u32,
                begin: open.begin,
                end: t,
                site: open.site,
            });
        } else {
            orphans.push((-2 - object, t, site));
        }
    });
    if let Some((last, _)) = sb.blocks.last() {
        let end = sb.converter.delta_to_ns(last.end_ticks);
        while let Some(open) = stack.pop() {
            before.push(open.orphans_before);
            spans.push(Span {
                id: open.id,
                parent: stack.last().map_or(-1, |p| p.id),
                depth: stack.len() as u32,
                begin: open.begin,
                end: end.max(open.begin),
                site: open.site,
            });
        }
    }
    // k spans were open when the first block began; the m-th orphan end closes the innermost one
    // still open (depth k-1-m). A span that began after j orphan ends sits under k-j of them.
    let k = orphans.len() as u32;
    if k > 0 {
        for (span, j) in spans.iter_mut().zip(before) {
            let above = k - j;
            span.depth += above;
            if span.parent == -1 && above > 0 {
                span.parent = orphans[j as usize].0;
            }
        }
        let start = sb.blocks.first().map_or(i64::MIN, |(b, _)| sb.converter.delta_to_ns(b.begin_ticks));
        for (m, &(id, end, site)) in orphans.iter().enumerate() {
            spans.push(Span {
                id,
                parent: orphans.get(m + 1).map_or(-1, |o| o.0),
                depth: k - 1 - m as u32,
                begin: start.min(end),
                end,
                site,
            });
        }
    }
    spans.sort_unstable_by_key(|s| (s.begin, s.depth, s.id));
    spans
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
        let Instance::Stream(stream_id) = instance else {
            bail!("thread_spans instances are streams");
        };
        let filter = BlockFilter { stream_id: Some(stream_id.clone()), range, ..Default::default() };
        let streams = load_stream_blocks(ctx, &filter).await?;
        Ok(vec![self.rows_from_blocks(&streams, range)?])
    }

    fn rows_from_blocks(&self, streams: &[StreamBlocks], range: Option<TimeRange>) -> Result<RecordBatch> {
        let mut id = Int64Builder::new();
        let mut parent = Int64Builder::new();
        let mut depth = UInt32Builder::new();
        let mut begin = ts_builder();
        let mut end = ts_builder();
        let mut duration = Int64Builder::new();
        let mut site = Vec::new();
        let mut sites = CallSites::default();
        for sb in streams {
            for s in rebuild_spans(sb, &mut sites) {
                if range.is_some_and(|r| !r.overlaps(s.begin, s.end)) {
                    continue;
                }
                id.append_value(s.id);
                parent.append_value(s.parent);
                depth.append_value(s.depth);
                begin.append_value(s.begin);
                end.append_value(s.end);
                duration.append_value(s.end - s.begin);
                site.push(s.site as i32);
            }
        }
        let hashes: Vec<u32> = sites.sites.iter().map(|c| c.hash()).collect();
        let hash = UInt32Array::from_iter_values(site.iter().map(|&k| hashes[k as usize]));
        let line = UInt32Array::from_iter_values(site.iter().map(|&k| sites.sites[k as usize].line));
        let keys = Int32Array::from(site);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(parent.finish()),
            Arc::new(depth.finish()),
            Arc::new(hash),
            Arc::new(begin.finish()),
            Arc::new(end.finish()),
            Arc::new(duration.finish()),
            sites.column(&keys, |c| &c.name)?,
            sites.column(&keys, |c| &c.target)?,
            sites.column(&keys, |c| &c.filename)?,
            Arc::new(line),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}
