//! `measures`: one row per metric event of `metrics` streams.

use super::block_source::{batches_from_blocks, decode_block_with, StreamBlocks};
use super::columns::{dict, source_fields, ts, DictBuilder, EventRows, InPlace, PropertiesJson, ViewColumns};
use super::descriptors::{DescriptorMemo, StaticAt, StaticBuild, StaticLayout};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use crate::decode::{le_word, EventRef, Kind, MemberIndex, Object, RunTypes, Taken, TypeMemo, Udt, UdtTable, ValueRef};
use crate::time::{TickConverter, TimeRange};
use anyhow::Result;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct MeasuresView;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = source_fields().to_vec();
    fields.extend([
        ts("time"),
        dict("target"),
        dict("name"),
        dict("unit"),
        Field::new("value", DataType::Float64, false),
        dict("properties"),
        dict("process_properties"),
    ]);
    Arc::new(Schema::new(fields))
});

struct Measure<'a> {
    time: i64,
    target: &'a str,
    name: &'a str,
    unit: &'a str,
    value: f64,
    properties: Option<&'a Arc<Object>>,
}

/// Reads metric events: `value` and `time` on the event, name/unit/target on `desc`, overridden
/// by the tagged events' properties. Integer values in `ticks` become seconds. Member positions
/// are resolved once per event and descriptor type.
struct MeasureReader {
    event: MemberIndex<4>,
    desc: MemberIndex<3>,
    /// For the current block, by descriptor id: whether events that take their target, name and
    /// unit from that descriptor alone pass the query's filter.
    passes: HashMap<u64, bool>,
}

impl MeasureReader {
    fn new() -> Self {
        Self {
            event: MemberIndex::new(["time", "desc", "properties", "value"]),
            desc: MemberIndex::new(["target", "name", "unit"]),
            passes: HashMap::new(),
        }
    }

    /// Between streams (positions are keyed by type identity).
    fn clear(&mut self) {
        self.event.clear();
        self.desc.clear();
        self.passes.clear();
    }

    /// Between blocks (dependency ids are only meaningful within one).
    fn next_block(&mut self) {
        self.passes.clear();
    }

    /// Whether the event's descriptor alone rules it out under `keep(target, name, unit)`: most
    /// events of a filtered query are dropped for one descriptor id lookup.
    fn ruled_out(&mut self, e: &EventRef, keep: impl Fn(&str, &str, &str) -> bool) -> bool {
        let [_, desc, props, _] = self.event.of(e);
        let (None, Some(desc)) = (props, desc) else { return false };
        let Some(id) = e.reference_id(desc) else { return false };
        if let Some(pass) = self.passes.get(&id) {
            return !pass;
        }
        let Some(d) = e.member(desc).and_then(|v| v.as_object()) else { return false };
        let [t, n, u] = self.desc.of_object(d);
        let text = |i: Option<usize>| d.at(i).and_then(|v| v.as_str()).map_or("", |s| &**s);
        // An integer value in ticks comes out in seconds (see `read`).
        let (target, name, unit) = (text(t), text(n), text(u));
        let pass = keep(target, name, unit) || (unit == "ticks" && keep(target, name, "seconds"));
        self.passes.insert(id, pass);
        !pass
    }

    /// The row of a static metric event's descriptor, its strings interned in `columns` (only
    /// when some of its rows pass `keep`).
    fn descriptor_row(&mut self, e: &EventRef, columns: &mut MeasureColumns, keep: impl Fn(&str, &str, &str) -> bool) -> Option<MetricRow> {
        let [_, desc, _, _] = self.event.of(e);
        let d = e.member(desc?)?.as_object()?;
        let [t, n, u] = self.desc.of_object(d);
        let text = |i: Option<usize>| d.at(i).and_then(|v| v.as_str()).map_or("", |s| &**s);
        let (target, name, unit) = (text(t), text(n), text(u));
        let (pass, seconds) = (keep(target, name, unit), unit == "ticks");
        let pass_seconds = seconds && keep(target, name, "seconds");
        let mut row = MetricRow { target: 0, name: 0, unit: 0, pass, seconds: None };
        if pass || pass_seconds {
            (row.target, row.name) = (columns.target.intern(target), columns.name.intern(name));
        }
        if pass {
            row.unit = columns.unit.intern(unit);
        }
        if seconds {
            row.seconds = Some((if pass_seconds { columns.unit.intern("seconds") } else { 0 }, pass_seconds));
        }
        Some(row)
    }

    fn read<'a>(&mut self, e: &EventRef<'a>, converter: &TickConverter) -> Option<Measure<'a>> {
        let [time, desc, props, value] = self.event.of(e);
        let get = |i: Option<usize>| e.member(i?);
        let time = get(time)?.as_i64()?;
        let desc = get(desc)?.as_object()?;
        let props = get(props).and_then(|v| v.as_object());
        let [d_target, d_name, d_unit] = self.desc.of_object(desc);
        let from = |key: &str, i: Option<usize>| -> &'a str {
            props.and_then(|p| p.get_str(key)).or_else(|| desc.at(i)?.as_str()).map_or("", |s| &**s)
        };
        let (target, name, mut unit) = (from("target", d_target), from("name", d_name), from("unit", d_unit));
        let value = match get(value)? {
            ValueRef::F64(v) => v,
            ValueRef::U64(v) if unit == "ticks" => {
                unit = "seconds";
                converter.ticks_to_seconds(v as f64)
            }
            ValueRef::U64(v) => v as f64,
            ValueRef::I64(v) => v as f64,
            ValueRef::U32(v) => v as f64,
            ValueRef::U8(v) => v as f64,
            _ => return None,
        };
        Some(Measure { time, target, name, unit, value, properties: props })
    }
}

/// How a static metric event stores its value: an 8-byte float or integer.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum ValueWord {
    #[default]
    F64,
    U64,
    I64,
}

impl ValueWord {
    /// The row's value, and whether it is in ticks to turn into seconds: integer values of a
    /// descriptor whose unit is `ticks` (see [`MeasureReader::read`]).
    #[inline(always)]
    fn value(self, word: u64, row: &MetricRow, converter: &TickConverter) -> (f64, bool) {
        match self {
            ValueWord::F64 => (f64::from_bits(word), false),
            ValueWord::U64 if row.seconds.is_some() => (converter.ticks_to_seconds(word as f64), true),
            ValueWord::U64 => (word as f64, false),
            ValueWord::I64 => (word as i64 as f64, false),
        }
    }
}

/// Where a static metric event type keeps its descriptor id, time and value (byte offsets) and how
/// its value is stored: a type with a time, a value and a reference to its descriptor, no
/// properties, so its target, name and unit come from the descriptor alone.
#[derive(Clone, Copy, Default)]
struct StaticType {
    at: StaticAt,
    value: usize,
    kind: ValueWord,
}

impl StaticLayout for StaticType {
    fn at(&self) -> StaticAt {
        self.at
    }
}

fn static_metric(udt: &Udt) -> Option<StaticType> {
    if udt.member_index("properties").is_some() {
        return None;
    }
    let (time, desc, value) = (udt.member_index("time")?, udt.member_index("desc")?, udt.member_index("value")?);
    let v = &udt.members[value];
    let kind = match v.kind {
        Kind::F64 => ValueWord::F64,
        Kind::U64 => ValueWord::U64,
        Kind::I64 => ValueWord::I64,
        _ => return None,
    };
    let value = (!v.is_reference && v.size == 8 && v.offset + 8 <= udt.size).then_some(v.offset)?;
    if udt.members[time].is_reference || !udt.members[desc].is_reference {
        return None;
    }
    Some(StaticType { at: StaticAt { desc: udt.word_offset(desc)?, time: udt.word_offset(time)? }, value, kind })
}

/// [`static_metric`] for the fast path: when the walk's check of one of its events is that its
/// descriptor id is a dependency of the block.
fn static_type(udt: &Udt, ids: &[usize]) -> Option<StaticType> {
    static_metric(udt).filter(|t| ids == [t.at.desc])
}

/// What a static metric event's row takes from its descriptor, found once per descriptor and block.
struct MetricRow {
    target: i32,
    name: i32,
    unit: i32,
    /// Whether the query's filters keep these rows.
    pass: bool,
    /// For a unit of `ticks`: the `seconds` key integer values take, and whether those rows pass.
    seconds: Option<(i32, bool)>,
}

impl MetricRow {
    /// The row's unit key and whether it passes, for a value in ticks turned into seconds or not.
    #[inline(always)]
    fn unit(&self, in_seconds: bool) -> (i32, bool) {
        match self.seconds {
            Some(s) if in_seconds => s,
            _ => (self.unit, self.pass),
        }
    }
}

type MeasureBuild = StaticBuild<MeasureColumns, DescriptorMemo<MetricRow>>;

impl EventRows<MeasureColumns> {
    /// A static metric event's row: its time and value, the rest from its descriptor.
    #[inline(always)]
    fn push_static(&mut self, t: i64, row: &MetricRow, unit: i32, value: f64, no_properties: i32) {
        self.time.push(t);
        self.view.target.append_key(row.target);
        self.view.name.append_key(row.name);
        self.view.unit.append_key(unit);
        self.view.value.push(value);
        self.properties.append_key(no_properties);
    }
}

impl MeasureBuild {

    /// The fast path: static metric events read straight from the objects buffer, as long as each
    /// one's type is a static metric type and its descriptor already has a row in this block (the
    /// walk resolved it). The first event of each descriptor goes through the walk.
    #[inline(always)]
    fn static_run(
        &mut self,
        records: &[u8],
        fast: &mut RunTypes<StaticType>,
        table: &UdtTable,
        sb: &StreamBlocks,
        range: Option<TimeRange>,
        no_properties: i32,
    ) -> Taken {
        let Some(stride) = fast.first_stride(records, table, static_type) else { return Taken::default() };
        let mut rows = StaticRows::new(&mut self.rows, records.len() / stride, no_properties);
        self.descriptors.take_run(records, stride, fast, table, static_type, &sb.converter, |t, event, row, ns| {
            let (value, in_seconds) = t.kind.value(le_word(event, t.value), row, &sb.converter);
            let (unit, pass) = row.unit(in_seconds);
            if pass && range.is_none_or(|r| r.contains(ns)) {
                rows.push(ns, row, unit, value);
            }
        })
    }
}

/// Static metric rows written in place: one row count for all their columns (see [`InPlace`]),
/// checked once per row against the room reserved.
struct StaticRows<'a> {
    len: usize,
    end: usize,
    no_properties: i32,
    time: InPlace<'a, i64>,
    target: InPlace<'a, i32>,
    name: InPlace<'a, i32>,
    unit: InPlace<'a, i32>,
    value: InPlace<'a, f64>,
    properties: InPlace<'a, i32>,
}

impl<'a> StaticRows<'a> {
    fn new(r: &'a mut EventRows<MeasureColumns>, rows: usize, no_properties: i32) -> Self {
        let MeasureColumns { target, name, unit, value } = &mut r.view;
        let this = Self {
            len: r.time.len(),
            end: r.time.len() + rows,
            no_properties,
            time: InPlace::new(&mut r.time, rows),
            target: target.keys_in_place(rows),
            name: name.keys_in_place(rows),
            unit: unit.keys_in_place(rows),
            value: InPlace::new(value, rows),
            properties: r.properties.keys_in_place(rows),
        };
        let len = this.len;
        assert!([this.target.len(), this.name.len(), this.unit.len(), this.value.len(), this.properties.len()].iter().all(|&l| l == len), "metric columns of one length");
        this
    }

    #[inline(always)]
    fn push(&mut self, ns: i64, row: &MetricRow, unit: i32, value: f64) {
        let i = self.len;
        assert!(i < self.end, "static metric rows past the room reserved for them");
        // SAFETY: row `i` is within the room every column reserved.
        unsafe {
            self.time.write(i, ns);
            self.target.write(i, row.target);
            self.name.write(i, row.name);
            self.unit.write(i, unit);
            self.value.write(i, value);
            self.properties.write(i, self.no_properties);
        }
        self.len = i + 1;
    }
}

impl Drop for StaticRows<'_> {
    fn drop(&mut self) {
        // SAFETY: `push` wrote every row below `len`.
        unsafe {
            self.time.set_len(self.len);
            self.target.set_len(self.len);
            self.name.set_len(self.len);
            self.unit.set_len(self.len);
            self.value.set_len(self.len);
            self.properties.set_len(self.len);
        }
    }
}

#[async_trait]
impl View for MeasuresView {
    fn name(&self) -> &'static str {
        "measures"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Blocks { tag: "metrics" }
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
        &["name", "target", "unit"]
    }

    /// Queries read one metric, or a few, at a time.
    fn cluster_column(&self) -> Option<&'static str> {
        Some("name")
    }

    fn rows_from_blocks(&self, streams: &[StreamBlocks], range: Option<TimeRange>, filter: &RowFilter) -> Result<RecordBatch> {
        let mut build = MeasureBuild::default();
        let mut props_json = PropertiesJson::default();
        let mut reader = MeasureReader::new();
        let mut layouts = TypeMemo::<Option<StaticType>>::default();
        let mut fast = RunTypes::<StaticType>::default();
        let (want_target, want_name, want_unit) = (filter.text("target"), filter.text("name"), filter.text("unit"));
        let filtered = want_target.active() || want_name.active() || want_unit.active();
        let keep = |target: &str, name: &str, unit: &str| want_name.pass(name) && want_target.pass(target) && want_unit.pass(unit);
        let no_properties = build.rows.properties.intern("{}");
        if !filtered {
            build.rows.reserve_events(streams);
        }
        for sb in streams {
            reader.clear();
            layouts.clear();
            fast.clear();
            let p = &sb.process;
            for b in &sb.blocks {
                props_json.clear();
                reader.next_block();
                build.descriptors.clear();
                build.rows.start_block(p, &b.0);
                decode_block_with(sb, b, &mut build, #[inline(always)] |_, e, build| {
                    if let Some(l) = *layouts.get(e, |e| static_metric(e.udt)) {
                        let (Some(id), Some(ticks), Some(word)) = (e.word(l.at.desc), e.word(l.at.time), e.word(l.value)) else { return };
                        let row = match build.descriptors.get(id) {
                            Some(row) => row,
                            None => {
                                let Some(row) = reader.descriptor_row(e, &mut build.rows.view, keep) else { return };
                                build.descriptors.insert(id, row)
                            }
                        };
                        let t = sb.converter.ticks_to_ns(ticks as i64);
                        let (value, in_seconds) = l.kind.value(word, row, &sb.converter);
                        let (unit, pass) = row.unit(in_seconds);
                        if pass && range.is_none_or(|r| r.contains(t)) {
                            build.rows.push_static(t, row, unit, value, no_properties);
                        }
                        return;
                    }
                    let rows = &mut build.rows;
                    if filtered && reader.ruled_out(e, keep) {
                        return;
                    }
                    let Some(m) = reader.read(e, &sb.converter) else { return };
                    if !keep(m.target, m.name, m.unit) {
                        return;
                    }
                    let t = sb.converter.ticks_to_ns(m.time);
                    if range.is_some_and(|r| !r.contains(t)) {
                        return;
                    }
                    rows.time.push(t);
                    rows.view.target.append_value(m.target);
                    rows.view.name.append_value(m.name);
                    rows.view.unit.append_value(m.unit);
                    rows.view.value.push(m.value);
                    rows.properties.append_value(props_json.get(m.properties));
                }, #[inline(always)] |_, records, build| build.static_run(records, &mut fast, &sb.types.objects, sb, range, no_properties));
            }
        }
        build.rows.finish(self.schema())
    }
}

/// `measures`' own columns.
#[derive(Default)]
struct MeasureColumns {
    target: DictBuilder,
    name: DictBuilder,
    unit: DictBuilder,
    value: Vec<f64>,
}

impl ViewColumns for MeasureColumns {
    fn reserve(&mut self, rows: usize) {
        self.target.reserve(rows);
        self.name.reserve(rows);
        self.unit.reserve(rows);
        self.value.reserve(rows);
    }

    fn truncate(&mut self, len: usize) {
        self.target.truncate(len);
        self.name.truncate(len);
        self.unit.truncate(len);
        self.value.truncate(len);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.target.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(Float64Array::from(self.value)),
        ]
    }
}
