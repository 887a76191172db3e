//! `measures`: one row per metric event of `metrics` streams.

use super::block_source::{batches_from_blocks, decode_block_into, StreamBlocks};
use super::columns::{dict, source_fields, ts, DictBuilder, EventRows, PropertiesJson, ViewColumns};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use crate::decode::{EventRef, MemberIndex, Object, ValueRef};
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
        let mut rows = EventRows::<MeasureColumns>::default();
        let mut props_json = PropertiesJson::default();
        let mut reader = MeasureReader::new();
        let (want_target, want_name, want_unit) = (filter.text("target"), filter.text("name"), filter.text("unit"));
        let filtered = want_target.active() || want_name.active() || want_unit.active();
        if !filtered {
            rows.reserve_events(streams);
        }
        for sb in streams {
            reader.clear();
            let p = &sb.process;
            for b in &sb.blocks {
                props_json.clear();
                reader.next_block();
                rows.start_block(p, &b.0);
                decode_block_into(sb, b, &mut rows, #[inline(always)] |_, e, rows| {
                    let keep = |target: &str, name: &str, unit: &str| want_name.pass(name) && want_target.pass(target) && want_unit.pass(unit);
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
                });
            }
        }
        rows.finish(self.schema())
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
