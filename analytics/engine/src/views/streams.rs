//! `streams`: one row per stream.

use super::columns::{dict, ts, ts_builder};
use super::{Instance, View, ViewContext, ViewSource};
use crate::time::{to_ns, TimeRange};
use anyhow::{bail, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BinaryBuilder, ListBuilder, StringBuilder, StringDictionaryBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct StreamsView;

pub fn tags_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("stream_id", DataType::Utf8, false),
        Field::new("process_id", DataType::Utf8, false),
        Field::new("dependencies_metadata", DataType::Binary, false),
        Field::new("objects_metadata", DataType::Binary, false),
        Field::new("tags", tags_type(), true),
        dict("properties"),
        ts("insert_time"),
        Field::new("format", DataType::Utf8, false),
        ts("last_update_time"),
    ]))
});

#[async_trait]
impl View for StreamsView {
    fn name(&self) -> &'static str {
        "streams"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Metadata
    }

    fn instance(&self, id: &str) -> Result<Instance> {
        if id != "global" {
            bail!("streams has only a global instance");
        }
        Ok(Instance::Global)
    }

    fn has_global_instance(&self) -> bool {
        true
    }

    async fn make_batches(&self, ctx: &ViewContext, _instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        let rows = ctx.metadata.streams(None, range).await?;
        let mut stream_id = StringBuilder::new();
        let mut process_id = StringBuilder::new();
        let mut deps = BinaryBuilder::new();
        let mut objs = BinaryBuilder::new();
        let mut tags = ListBuilder::new(StringBuilder::new());
        let mut props = StringDictionaryBuilder::<Int32Type>::new();
        let mut insert_time = ts_builder();
        let mut format = StringBuilder::new();
        let mut last_update = ts_builder();
        for s in &rows {
            stream_id.append_value(&s.stream_id);
            process_id.append_value(&s.process_id);
            deps.append_value(&s.dependencies_metadata);
            objs.append_value(&s.objects_metadata);
            for t in &s.tags {
                tags.values().append_value(t);
            }
            tags.append(true);
            props.append_value(&s.properties);
            insert_time.append_value(to_ns(s.insert_time));
            format.append_value(&s.format);
            last_update.append_value(to_ns(s.last_update_time.unwrap_or(s.insert_time)));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(stream_id.finish()),
            Arc::new(process_id.finish()),
            Arc::new(deps.finish()),
            Arc::new(objs.finish()),
            Arc::new(tags.finish()),
            Arc::new(props.finish()),
            Arc::new(insert_time.finish()),
            Arc::new(format.finish()),
            Arc::new(last_update.finish()),
        ];
        Ok(vec![RecordBatch::try_new(self.schema(), columns)?])
    }
}
