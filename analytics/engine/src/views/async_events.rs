//! `async_events`: begin/end events of async spans found in a process's `cpu` streams.

use super::block_source::{batches_from_blocks, decode_stream_blocks, StreamBlocks};
use super::columns::{dict, ts, ts_builder, CallSite, DictBuilder};
use super::{parse_uuid, Instance, RowFilter, View, ViewContext, ViewSource};
use crate::time::TimeRange;
use anyhow::{bail, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Builder, UInt32Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct AsyncEventsView;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        dict("stream_id"),
        dict("block_id"),
        ts("time"),
        dict("event_type"),
        Field::new("span_id", DataType::Int64, false),
        Field::new("parent_span_id", DataType::Int64, false),
        Field::new("depth", DataType::UInt32, false),
        Field::new("hash", DataType::UInt32, false),
        dict("name"),
        dict("filename"),
        dict("target"),
        Field::new("line", DataType::UInt32, false),
    ]))
});

#[async_trait]
impl View for AsyncEventsView {
    fn name(&self) -> &'static str {
        "async_events"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Blocks { tag: "cpu" }
    }

    fn instance(&self, id: &str) -> Result<Instance> {
        if id == "global" {
            bail!("async_events has no global instance: use view_instance('async_events', '<process_id>')");
        }
        Ok(Instance::Process(parse_uuid(self.name(), id)?))
    }

    fn has_global_instance(&self) -> bool {
        false
    }

    async fn make_batches(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        batches_from_blocks(self, ctx, instance, range).await
    }

    fn rows_per_event(&self) -> bool {
        true
    }

    fn rows_from_blocks(&self, streams: &[StreamBlocks], range: Option<TimeRange>, _filter: &RowFilter) -> Result<RecordBatch> {
        let mut stream_id = DictBuilder::new();
        let mut block_id = DictBuilder::new();
        let mut time = ts_builder();
        let mut event_type = DictBuilder::new();
        let mut span_id = Int64Builder::new();
        let mut parent_span_id = Int64Builder::new();
        let mut depth = UInt32Builder::new();
        let mut hash = UInt32Builder::new();
        let mut name = DictBuilder::new();
        let mut filename = DictBuilder::new();
        let mut target = DictBuilder::new();
        let mut line = UInt32Builder::new();
        for sb in streams {
            decode_stream_blocks(sb, |block, _, e| {
                let ty = e.type_name();
                let kind = if ty.starts_with("BeginAsync") {
                    "begin"
                } else if ty.starts_with("EndAsync") {
                    "end"
                } else {
                    return;
                };
                let (Some(ticks), Some(site)) = (e.get_i64("time"), CallSite::of(e, "span_desc", "span_location")) else {
                    return;
                };
                let t = sb.converter.ticks_to_ns(ticks);
                if range.is_some_and(|r| !r.contains(t)) {
                    return;
                }
                stream_id.append_value(&block.stream_id);
                block_id.append_value(&block.block_id);
                time.append_value(t);
                event_type.append_value(kind);
                span_id.append_value(e.get_i64("span_id").unwrap_or(0));
                parent_span_id.append_value(e.get_i64("parent_span_id").unwrap_or(0));
                depth.append_value(e.get_u32("depth").unwrap_or(0));
                hash.append_value(site.hash());
                name.append_value(&*site.name);
                filename.append_value(&*site.filename);
                target.append_value(&*site.target);
                line.append_value(site.line);
            });
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(stream_id.finish()),
            Arc::new(block_id.finish()),
            Arc::new(time.finish()),
            Arc::new(event_type.finish()),
            Arc::new(span_id.finish()),
            Arc::new(parent_span_id.finish()),
            Arc::new(depth.finish()),
            Arc::new(hash.finish()),
            Arc::new(name.finish()),
            Arc::new(filename.finish()),
            Arc::new(target.finish()),
            Arc::new(line.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}
