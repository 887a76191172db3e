//! `log_entries`: one row per log event of `log` streams.

use super::block_source::{batches_from_blocks, decode_block_into, StreamBlocks};
use super::columns::{dict, source_fields, ts, ChunkedText, DictBuilder, EventRows, PropertiesJson, TextColumn, ViewColumns};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use crate::decode::{id_slot, EventRef, MemberIndex, Object, TypeMemo, WordAt};
use std::borrow::Cow;
use crate::time::TimeRange;
use anyhow::Result;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct LogEntriesView;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = source_fields().to_vec();
    fields.extend([
        ts("time"),
        dict("target"),
        Field::new("level", DataType::Int32, false),
        Field::new("msg", DataType::Utf8, false),
        dict("properties"),
        dict("process_properties"),
    ]);
    Arc::new(Schema::new(fields))
});

/// Level names a `TaggedLogString` may carry in its `level` property.
fn level_from_name(name: &str) -> Option<i32> {
    match name.to_ascii_lowercase().as_str() {
        "fatal" => Some(1),
        "error" => Some(2),
        "warn" | "warning" => Some(3),
        "info" => Some(4),
        "debug" => Some(5),
        "trace" => Some(6),
        _ => name.parse().ok(),
    }
}

/// One log row's fields, borrowed from the block whenever the text is UTF-8.
type LogFields<'a> = (i64, i32, Cow<'a, str>, Cow<'a, str>, Option<&'a Arc<Object>>);

/// Reads log events generically: members on the event win, then the call-site descriptor.
/// Member positions are resolved once per event and descriptor type.
struct LogReader {
    event: MemberIndex<6>,
    desc: MemberIndex<3>,
    /// Per event type, when its events are static logs: where their time and descriptor id lie.
    layouts: TypeMemo<Option<(WordAt, WordAt)>>,
}

impl LogReader {
    fn new() -> Self {
        Self {
            event: MemberIndex::new(["time", "desc", "msg", "level", "target", "properties"]),
            desc: MemberIndex::new(["fmt_str", "level", "target"]),
            layouts: TypeMemo::default(),
        }
    }

    /// Between streams (positions are keyed by type identity).
    fn clear(&mut self) {
        self.event.clear();
        self.desc.clear();
        self.layouts.clear();
    }

    /// `(time, descriptor id)` of a static log event: one whose only members are its time and a
    /// reference to its call-site descriptor, so every other column comes from the descriptor.
    #[inline(always)]
    fn read_static(&mut self, e: &EventRef) -> Option<(i64, u64)> {
        let event = &mut self.event;
        let &(time, desc) = self.layouts.get(e, |e| static_layout(event, e)).as_ref()?;
        Some((e.word(time)? as i64, e.word(desc)?))
    }

    fn read<'a>(&mut self, e: &EventRef<'a>) -> Option<LogFields<'a>> {
        let [time, desc, msg, level, target, props] = self.event.of(e);
        let get = |i: Option<usize>| e.member(i?);
        let time = get(time)?.as_i64()?;
        let desc = get(desc).and_then(|v| v.as_object());
        let [d_fmt, d_level, d_target] = desc.map_or([None; 3], |d| self.desc.of_object(d));
        let from_desc = |i: Option<usize>| desc?.at(i)?.as_str().map(|s| Cow::Borrowed(&**s));
        let msg = get(msg).and_then(|v| v.as_str()).or_else(|| from_desc(d_fmt))?;
        let mut level = get(level).and_then(|v| v.as_u32()).or_else(|| desc?.at(d_level)?.as_u32()).unwrap_or(0) as i32;
        let mut target = get(target).and_then(|v| v.as_str()).or_else(|| from_desc(d_target)).unwrap_or(Cow::Borrowed(""));
        let props = get(props).and_then(|v| v.as_object());
        if let Some(p) = props {
            if e.type_name() == "TaggedLogString" {
                if let Some(t) = p.get_str("target") {
                    target = Cow::Borrowed(&**t);
                }
                if let Some(l) = p.get_str("level").and_then(|l| level_from_name(l)) {
                    level = l;
                }
            }
        }
        Some((time, level, target, msg, props))
    }
}

/// Where a static log event type keeps its time and descriptor id, if its events are static logs.
fn static_layout(event: &mut MemberIndex<6>, e: &EventRef) -> Option<(WordAt, WordAt)> {
    let [Some(time), Some(desc), None, None, None, None] = event.of(e) else { return None };
    let is_reference = |i: usize| e.udt.members.get(i).is_some_and(|m| m.is_reference);
    if is_reference(time) || !is_reference(desc) {
        return None;
    }
    Some((e.word_at(time)?, e.word_at(desc)?))
}

/// What a static log event's row takes from its descriptor, found once per descriptor and block.
struct DescriptorRow {
    level: i32,
    target: i32,
    msg: ChunkedText,
    /// Whether the query's level and target filters keep these rows.
    pass: bool,
}

/// [`DescriptorRow`]s of the current block by descriptor id (ids are only unique within a block).
/// A block has a few descriptors used over and over: their [`id_slot`] finds them.
struct DescriptorRows {
    slots: [u32; 64],
    rows: Vec<(u64, DescriptorRow)>,
    /// Every row by id, for the descriptors whose slot another one took.
    index: HashMap<u64, usize, ahash::RandomState>,
}

impl Default for DescriptorRows {
    fn default() -> Self {
        Self { slots: [u32::MAX; 64], rows: Vec::new(), index: HashMap::default() }
    }
}

impl DescriptorRows {
    fn clear(&mut self) {
        self.slots = [u32::MAX; 64];
        self.rows.clear();
        self.index.clear();
    }

    #[inline]
    fn get(&self, id: u64) -> Option<&DescriptorRow> {
        let i = self.slots[id_slot(id)] as usize;
        match self.rows.get(i) {
            Some((at, row)) if *at == id => Some(row),
            _ => self.index.get(&id).map(|&i| &self.rows[i].1),
        }
    }

    /// The slot keeps the latest descriptor that hashed to it; the others are found by the map.
    fn insert(&mut self, id: u64, row: DescriptorRow) -> &DescriptorRow {
        self.slots[id_slot(id)] = self.rows.len() as u32;
        self.index.insert(id, self.rows.len());
        self.rows.push((id, row));
        &self.rows.last().unwrap().1
    }
}

#[async_trait]
impl View for LogEntriesView {
    fn name(&self) -> &'static str {
        "log_entries"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Blocks { tag: "log" }
    }

    fn instance(&self, id: &str) -> Result<Instance> {
        if id == "global" {
            return Ok(Instance::Global);
        }
        Ok(Instance::Process(parse_uuid(self.name(), id)?))
    }

    fn has_global_instance(&self) -> bool {
        true
    }

    async fn make_batches(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        batches_from_blocks(self, ctx, instance, range).await
    }

    fn rows_per_event(&self) -> bool {
        true
    }

    fn filter_columns(&self) -> &'static [&'static str] {
        &["level", "target"]
    }

    fn rows_from_blocks(&self, streams: &[StreamBlocks], range: Option<TimeRange>, filter: &RowFilter) -> Result<RecordBatch> {
        let mut rows = EventRows::<LogColumns>::default();
        let mut props_json = PropertiesJson::default();
        let mut reader = LogReader::new();
        let (want_level, want_target) = (filter.int("level"), filter.text("target"));
        let mut descriptors = DescriptorRows::default();
        let no_properties = rows.properties.intern("{}");
        if filter.is_empty() {
            rows.reserve_events(streams);
        }
        for sb in streams {
            reader.clear();
            let p = &sb.process;
            for b in &sb.blocks {
                props_json.clear();
                descriptors.clear();
                rows.start_block(p, &b.0);
                decode_block_into(sb, b, &mut rows, #[inline(always)] |_, e, rows| {
                    if let Some((ticks, desc)) = reader.read_static(e) {
                        let row = match descriptors.get(desc) {
                            Some(row) => row,
                            None => {
                                let Some((_, lvl, tgt, text, _)) = reader.read(e) else { return };
                                let pass = want_level.pass(lvl as i64) && want_target.pass(&tgt);
                                descriptors.insert(desc, DescriptorRow { level: lvl, target: rows.view.target.intern(&tgt), msg: ChunkedText::new(&text), pass })
                            }
                        };
                        let t = sb.converter.ticks_to_ns(ticks);
                        if !row.pass || range.is_some_and(|r| !r.contains(t)) {
                            return;
                        }
                        rows.time.push(t);
                        rows.view.target.append_key(row.target);
                        rows.view.level.push(row.level);
                        rows.view.msg.push_chunked(&row.msg);
                        rows.properties.append_key(no_properties);
                        return;
                    }
                    let Some((ticks, lvl, tgt, text, props)) = reader.read(e) else { return };
                    if !(want_level.pass(lvl as i64) && want_target.pass(&tgt)) {
                        return;
                    }
                    let t = sb.converter.ticks_to_ns(ticks);
                    if range.is_some_and(|r| !r.contains(t)) {
                        return;
                    }
                    rows.time.push(t);
                    rows.view.target.append_value(&tgt);
                    rows.view.level.push(lvl);
                    rows.view.msg.push(&text);
                    rows.properties.append_value(props_json.get(props));
                });
            }
        }
        rows.finish(self.schema())
    }
}

/// `log_entries`' own columns.
#[derive(Default)]
struct LogColumns {
    target: DictBuilder,
    level: Vec<i32>,
    msg: TextColumn,
}

impl ViewColumns for LogColumns {
    fn reserve(&mut self, rows: usize) {
        self.target.reserve(rows);
        self.level.reserve(rows);
        self.msg.reserve(rows);
    }

    fn truncate(&mut self, len: usize) {
        self.target.truncate(len);
        self.level.truncate(len);
        self.msg.truncate(len);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![Arc::new(self.target.finish()), Arc::new(Int32Array::from(self.level)), Arc::new(self.msg.finish())]
    }
}

#[cfg(test)]
mod tests {
    use super::{ChunkedText, DescriptorRow, DescriptorRows};

    fn row(level: i32) -> DescriptorRow {
        DescriptorRow { level, target: level, msg: ChunkedText::new(&level.to_string()), pass: true }
    }

    #[test]
    fn descriptor_rows_find_every_descriptor_when_slots_collide() {
        let mut rows = DescriptorRows::default();
        // 300 descriptors share 64 slots; ids are addresses, 8 apart.
        let id = |i: i32| 0x7f00_0000_1000u64 + 8 * i as u64;
        for i in 0..300 {
            assert!(rows.get(id(i)).is_none());
            rows.insert(id(i), row(i));
        }
        for i in (0..300).rev() {
            let r = rows.get(id(i)).expect("inserted descriptor");
            assert_eq!((r.level, r.msg.as_str()), (i, &*i.to_string()));
        }
        rows.clear();
        assert!(rows.get(id(5)).is_none());
    }
}
