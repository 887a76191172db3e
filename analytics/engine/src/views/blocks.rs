//! `blocks`: one row per block, joined with its stream and process (dotted column names).

use super::columns::{dict, ts, ts_builder};
use super::streams::tags_type;
use super::{Instance, View, ViewContext, ViewSource};
use crate::metadata::BlockFilter;
use crate::time::{to_ns, TimeRange};
use anyhow::{bail, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, StringDictionaryBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct BlocksView;

const PROCESS_TEXT: [&str; 6] = ["exe", "username", "realname", "computer", "distro", "cpu_brand"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    let i64f = |n: &str| Field::new(n, DataType::Int64, false);
    let mut fields = vec![
        utf8("block_id"),
        utf8("stream_id"),
        utf8("process_id"),
        ts("begin_time"),
        i64f("begin_ticks"),
        ts("end_time"),
        i64f("end_ticks"),
        Field::new("nb_objects", DataType::Int32, false),
        i64f("object_offset"),
        i64f("payload_size"),
        ts("insert_time"),
        Field::new("streams.dependencies_metadata", DataType::Binary, false),
        Field::new("streams.objects_metadata", DataType::Binary, false),
        Field::new("streams.tags", tags_type(), true),
        dict("streams.properties"),
        ts("streams.insert_time"),
        utf8("streams.format"),
        ts("processes.start_time"),
        i64f("processes.start_ticks"),
        i64f("processes.tsc_frequency"),
    ];
    fields.extend(PROCESS_TEXT.iter().map(|n| utf8(&format!("processes.{n}"))));
    fields.push(ts("processes.insert_time"));
    fields.push(Field::new("processes.parent_process_id", DataType::Utf8, true));
    fields.push(dict("processes.properties"));
    Arc::new(Schema::new(fields))
});

#[async_trait]
impl View for BlocksView {
    fn name(&self) -> &'static str {
        "blocks"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Metadata
    }

    fn instance(&self, id: &str) -> Result<Instance> {
        if id != "global" {
            bail!("blocks has only a global instance");
        }
        Ok(Instance::Global)
    }

    fn has_global_instance(&self) -> bool {
        true
    }

    async fn make_batches(&self, ctx: &ViewContext, _instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        let blocks = ctx.metadata.blocks(&BlockFilter { range, ..Default::default() }).await?;
        let streams: HashMap<String, _> =
            ctx.metadata.streams(None, None).await?.into_iter().map(|s| (s.stream_id.clone(), s)).collect();
        let processes: HashMap<String, _> =
            ctx.metadata.processes(None).await?.into_iter().map(|p| (p.process_id.clone(), p)).collect();
        let mut ids: Vec<StringBuilder> = (0..3).map(|_| StringBuilder::new()).collect();
        let mut begin_time = ts_builder();
        let mut begin_ticks = Int64Builder::new();
        let mut end_time = ts_builder();
        let mut end_ticks = Int64Builder::new();
        let mut nb_objects = Int32Builder::new();
        let mut object_offset = Int64Builder::new();
        let mut payload_size = Int64Builder::new();
        let mut insert_time = ts_builder();
        let mut s_deps = BinaryBuilder::new();
        let mut s_objs = BinaryBuilder::new();
        let mut s_tags = ListBuilder::new(StringBuilder::new());
        let mut s_props = StringDictionaryBuilder::<Int32Type>::new();
        let mut s_insert = ts_builder();
        let mut s_format = StringBuilder::new();
        let mut p_start_time = ts_builder();
        let mut p_start_ticks = Int64Builder::new();
        let mut p_tsc = Int64Builder::new();
        let mut p_text: Vec<StringBuilder> = (0..PROCESS_TEXT.len()).map(|_| StringBuilder::new()).collect();
        let mut p_insert = ts_builder();
        let mut p_parent = StringBuilder::new();
        let mut p_props = StringDictionaryBuilder::<Int32Type>::new();
        for b in &blocks {
            // Blocks whose stream or process row is missing cannot be described: leave them out.
            let (Some(s), Some(p)) = (streams.get(&b.stream_id), processes.get(&b.process_id)) else {
                continue;
            };
            ids[0].append_value(&b.block_id);
            ids[1].append_value(&b.stream_id);
            ids[2].append_value(&b.process_id);
            begin_time.append_value(to_ns(b.begin_time));
            begin_ticks.append_value(b.begin_ticks);
            end_time.append_value(to_ns(b.end_time));
            end_ticks.append_value(b.end_ticks);
            nb_objects.append_value(b.nb_objects);
            object_offset.append_value(b.object_offset);
            payload_size.append_value(b.payload_size);
            insert_time.append_value(to_ns(b.insert_time));
            s_deps.append_value(&s.dependencies_metadata);
            s_objs.append_value(&s.objects_metadata);
            for t in &s.tags {
                s_tags.values().append_value(t);
            }
            s_tags.append(true);
            s_props.append_value(&s.properties);
            s_insert.append_value(to_ns(s.insert_time));
            s_format.append_value(&s.format);
            p_start_time.append_value(to_ns(p.start_time));
            p_start_ticks.append_value(p.start_ticks);
            p_tsc.append_value(p.tsc_frequency);
            for (builder, v) in p_text.iter_mut().zip([&p.exe, &p.username, &p.realname, &p.computer, &p.distro, &p.cpu_brand]) {
                builder.append_value(v);
            }
            p_insert.append_value(to_ns(p.insert_time));
            p_parent.append_option(p.parent_process_id.as_deref());
            p_props.append_value(&p.properties);
        }
        let mut columns: Vec<ArrayRef> = ids.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef).collect();
        columns.extend([
            Arc::new(begin_time.finish()) as ArrayRef,
            Arc::new(begin_ticks.finish()),
            Arc::new(end_time.finish()),
            Arc::new(end_ticks.finish()),
            Arc::new(nb_objects.finish()),
            Arc::new(object_offset.finish()),
            Arc::new(payload_size.finish()),
            Arc::new(insert_time.finish()),
            Arc::new(s_deps.finish()),
            Arc::new(s_objs.finish()),
            Arc::new(s_tags.finish()),
            Arc::new(s_props.finish()),
            Arc::new(s_insert.finish()),
            Arc::new(s_format.finish()),
            Arc::new(p_start_time.finish()),
            Arc::new(p_start_ticks.finish()),
            Arc::new(p_tsc.finish()),
        ]);
        columns.extend(p_text.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(p_insert.finish()));
        columns.push(Arc::new(p_parent.finish()));
        columns.push(Arc::new(p_props.finish()));
        Ok(vec![RecordBatch::try_new(self.schema(), columns)?])
    }
}
