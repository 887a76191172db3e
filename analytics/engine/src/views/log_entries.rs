//! `log_entries`: one row per log event of `log` streams.

use super::block_source::{batches_from_blocks, decode_block_with, StreamBlocks};
use super::columns::{dict, source_fields, ts, ChunkedText, DictBuilder, EventRows, InPlace, PropertiesJson, TextColumn, ViewColumns};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use super::descriptors::{DescriptorMemo, StaticAt, StaticBuild};
use crate::decode::{EventRef, MemberIndex, Object, RunTypes, Taken, TypeMemo, Udt, UdtTable};
use std::borrow::Cow;
use crate::time::TimeRange;
use anyhow::Result;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
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
    layouts: TypeMemo<Option<StaticAt>>,
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
        let at = (*self.layouts.get(e, |e| static_at(e.udt)))?;
        Some((e.word(at.time)? as i64, e.word(at.desc)?))
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

/// Where a static log event type keeps its time and descriptor id: a type whose only members a
/// row reads are its time and a reference to its call-site descriptor, so every other column comes
/// from the descriptor. (Variable-size types list no members.)
fn static_at(udt: &Udt) -> Option<StaticAt> {
    if ["msg", "level", "target", "properties"].iter().any(|n| udt.member_index(n).is_some()) {
        return None;
    }
    let (time, desc) = (udt.member_index("time")?, udt.member_index("desc")?);
    if udt.members[time].is_reference || !udt.members[desc].is_reference {
        return None;
    }
    Some(StaticAt { desc: udt.word_offset(desc)?, time: udt.word_offset(time)? })
}

/// [`static_at`] for the fast path: when the walk's check of one of its events is that its
/// descriptor id is a dependency of the block.
fn static_type(udt: &Udt, ids: &[usize]) -> Option<StaticAt> {
    static_at(udt).filter(|at| ids == [at.desc])
}

type LogBuild = StaticBuild<LogColumns, DescriptorRows>;

/// What a static log event's row takes from its descriptor, found once per descriptor and block.
struct DescriptorRow {
    level: i32,
    target: i32,
    msg: ChunkedText,
    /// Whether the query's level and target filters keep these rows.
    pass: bool,
}

/// [`DescriptorRow`]s of the current block.
#[derive(Default)]
struct DescriptorRows {
    memo: DescriptorMemo<DescriptorRow>,
    /// The most text bytes one of their rows appends ([`ChunkedText::room`]).
    max_text_room: usize,
}

impl DescriptorRows {
    fn clear(&mut self) {
        self.memo.clear();
        self.max_text_room = 0;
    }

    #[inline(always)]
    fn get(&self, id: u64) -> Option<&DescriptorRow> {
        self.memo.get(id)
    }

    fn insert(&mut self, id: u64, row: DescriptorRow) -> &DescriptorRow {
        self.max_text_room = self.max_text_room.max(row.msg.room());
        self.memo.insert(id, row)
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
        let mut build = LogBuild::default();
        let mut props_json = PropertiesJson::default();
        let mut reader = LogReader::new();
        let mut fast = RunTypes::<StaticAt>::default();
        let (want_level, want_target) = (filter.int("level"), filter.text("target"));
        let no_properties = build.rows.properties.intern("{}");
        if filter.is_empty() {
            build.rows.reserve_events(streams);
        }
        for sb in streams {
            reader.clear();
            fast.clear();
            let p = &sb.process;
            for b in &sb.blocks {
                props_json.clear();
                build.descriptors.clear();
                build.rows.start_block(p, &b.0);
                decode_block_with(sb, b, &mut build, #[inline(always)] |_, e, build| {
                    let rows = &mut build.rows;
                    if let Some((ticks, desc)) = reader.read_static(e) {
                        let row = match build.descriptors.get(desc) {
                            Some(row) => row,
                            None => {
                                let Some((_, lvl, tgt, text, _)) = reader.read(e) else { return };
                                let pass = want_level.pass(lvl as i64) && want_target.pass(&tgt);
                                build.descriptors.insert(desc, DescriptorRow { level: lvl, target: rows.view.target.intern(&tgt), msg: ChunkedText::new(&text), pass })
                            }
                        };
                        let t = sb.converter.ticks_to_ns(ticks);
                        if row.pass && range.is_none_or(|r| r.contains(t)) {
                            rows.push_static(t, row, no_properties);
                        }
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
                }, #[inline(always)] |_, records, build| build.static_run(records, &mut fast, &sb.types.objects, sb, range, no_properties));
            }
        }
        build.rows.finish(self.schema())
    }
}

impl EventRows<LogColumns> {
    /// A static log event's row: its time, the rest from its descriptor.
    #[inline(always)]
    fn push_static(&mut self, t: i64, row: &DescriptorRow, no_properties: i32) {
        self.time.push(t);
        self.view.target.append_key(row.target);
        self.view.level.push(row.level);
        self.view.msg.push_chunked(&row.msg);
        self.properties.append_key(no_properties);
    }
}

impl LogBuild {
    /// The fast path: static log events read straight from the objects buffer, as long as each
    /// one's type is a static log type and its descriptor already has a row in this block (the
    /// walk resolved it). The first event of each descriptor goes through the walk.
    #[inline(always)]
    fn static_run(
        &mut self,
        records: &[u8],
        fast: &mut RunTypes<StaticAt>,
        table: &UdtTable,
        sb: &StreamBlocks,
        range: Option<TimeRange>,
        no_properties: i32,
    ) -> Taken {
        let Some(stride) = fast.first_stride(records, table, static_type) else { return Taken::default() };
        // Text is reserved for the run at once, at its longest message per row: a block repeating
        // a long message (a hostile one: megabytes) would reserve rows × that, so a run reserves
        // at most MAX_RUN_TEXT and stops there (the walk or the next run goes on from there).
        let text_room = self.descriptors.max_text_room.max(1);
        let room = (records.len() / stride).min(MAX_RUN_TEXT / text_room);
        if room == 0 {
            return Taken::default();
        }
        let records = &records[..room * stride];
        let mut rows = StaticRows::new(&mut self.rows, room, room * text_room, no_properties);
        self.descriptors.memo.take_run(records, stride, fast, table, static_type, &sb.converter, |_, _, row, ns| {
            if row.pass && range.is_none_or(|r| r.contains(ns)) {
                rows.push(ns, row);
            }
        })
    }
}

/// The most message bytes one static run reserves ahead (see [`LogBuild::static_run`]).
const MAX_RUN_TEXT: usize = 64 << 20;

/// Static log rows written in place: one row count and one text length for all their columns
/// (see [`InPlace`]), checked once per row against the room reserved.
struct StaticRows<'a> {
    len: usize,
    end: usize,
    text: usize,
    text_end: usize,
    no_properties: i32,
    time: InPlace<'a, i64>,
    target: InPlace<'a, i32>,
    level: InPlace<'a, i32>,
    /// Row `i`'s end offset is at `i + 1`.
    offsets: InPlace<'a, i32>,
    bytes: InPlace<'a, u8>,
    properties: InPlace<'a, i32>,
}

impl<'a> StaticRows<'a> {
    /// Room for `rows` more rows of `text` message bytes in all ([`ChunkedText::room`]s).
    fn new(r: &'a mut EventRows<LogColumns>, rows: usize, text: usize, no_properties: i32) -> Self {
        let LogColumns { target, level, msg } = &mut r.view;
        let (offsets, bytes) = msg.in_place(rows, text);
        let this = Self {
            len: r.time.len(),
            end: r.time.len() + rows,
            text: bytes.len(),
            text_end: bytes.len() + text,
            no_properties,
            time: InPlace::new(&mut r.time, rows),
            target: target.keys_in_place(rows),
            level: InPlace::new(level, rows),
            offsets,
            bytes,
            properties: r.properties.keys_in_place(rows),
        };
        let len = this.len;
        assert!([this.target.len(), this.level.len(), this.offsets.len() - 1, this.properties.len()].iter().all(|&l| l == len), "log columns of one length");
        this
    }

    #[inline(always)]
    fn push(&mut self, ns: i64, row: &DescriptorRow) {
        let (i, at) = (self.len, self.text);
        assert!(i < self.end && row.msg.room() <= self.text_end - at, "static log rows past the room reserved for them");
        let text = at + row.msg.len();
        // SAFETY: row `i` and the message's room are within what every column reserved.
        unsafe {
            self.time.write(i, ns);
            self.target.write(i, row.target);
            self.level.write(i, row.level);
            row.msg.write_to(self.bytes.at(at));
            self.offsets.write(i + 1, i32::try_from(text).expect("a text column holds at most 2 GiB"));
            self.properties.write(i, self.no_properties);
        }
        (self.len, self.text) = (i + 1, text);
    }
}

impl Drop for StaticRows<'_> {
    fn drop(&mut self) {
        // SAFETY: `push` wrote every row below `len` and every byte below `text`.
        unsafe {
            self.time.set_len(self.len);
            self.target.set_len(self.len);
            self.level.set_len(self.len);
            self.offsets.set_len(self.len + 1);
            self.bytes.set_len(self.text);
            self.properties.set_len(self.len);
        }
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
