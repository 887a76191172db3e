//! `processes`: one row per process, with the derived last-block columns.

use super::columns::{dict, ts, ts_builder};
use super::{Instance, View, ViewContext, ViewSource};
use crate::time::{to_ns, TimeRange};
use anyhow::{bail, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder, StringDictionaryBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::{Arc, LazyLock};

#[derive(Debug)]
pub struct ProcessesView;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8("process_id"),
        utf8("exe"),
        utf8("username"),
        utf8("realname"),
        utf8("computer"),
        utf8("distro"),
        utf8("cpu_brand"),
        Field::new("tsc_frequency", DataType::Int64, false),
        ts("start_time"),
        Field::new("start_ticks", DataType::Int64, false),
        ts("insert_time"),
        Field::new("parent_process_id", DataType::Utf8, true),
        dict("properties"),
        ts("last_update_time"),
        Field::new("last_block_end_ticks", DataType::Int64, true),
        ts("last_block_end_time").with_nullable(true),
    ]))
});

#[async_trait]
impl View for ProcessesView {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn source(&self) -> ViewSource {
        ViewSource::Metadata
    }

    fn instance(&self, id: &str) -> Result<Instance> {
        if id != "global" {
            bail!("processes has only a global instance");
        }
        Ok(Instance::Global)
    }

    fn has_global_instance(&self) -> bool {
        true
    }

    async fn make_batches(&self, ctx: &ViewContext, _instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        let rows = ctx.metadata.processes(range).await?;
        let mut cols: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
        let mut tsc = Int64Builder::new();
        let mut start_time = ts_builder();
        let mut start_ticks = Int64Builder::new();
        let mut insert_time = ts_builder();
        let mut parent = StringBuilder::new();
        let mut props = StringDictionaryBuilder::<Int32Type>::new();
        let mut last_update = ts_builder();
        let mut last_end_ticks = Int64Builder::new();
        let mut last_end_time = ts_builder();
        for p in &rows {
            for (b, v) in cols.iter_mut().zip([&p.process_id, &p.exe, &p.username, &p.realname, &p.computer, &p.distro, &p.cpu_brand]) {
                b.append_value(v);
            }
            tsc.append_value(p.tsc_frequency);
            start_time.append_value(to_ns(p.start_time));
            start_ticks.append_value(p.start_ticks);
            insert_time.append_value(to_ns(p.insert_time));
            parent.append_option(p.parent_process_id.as_deref());
            props.append_value(&p.properties);
            last_update.append_value(to_ns(p.last_update_time.unwrap_or(p.insert_time)));
            last_end_ticks.append_option(p.last_block_end_ticks);
            last_end_time.append_option(p.last_block_end_time.map(to_ns));
        }
        let mut columns: Vec<ArrayRef> = cols.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef).collect();
        columns.push(Arc::new(tsc.finish()));
        columns.push(Arc::new(start_time.finish()));
        columns.push(Arc::new(start_ticks.finish()));
        columns.push(Arc::new(insert_time.finish()));
        columns.push(Arc::new(parent.finish()));
        columns.push(Arc::new(props.finish()));
        columns.push(Arc::new(last_update.finish()));
        columns.push(Arc::new(last_end_ticks.finish()));
        columns.push(Arc::new(last_end_time.finish()));
        Ok(vec![RecordBatch::try_new(self.schema(), columns)?])
    }
}
