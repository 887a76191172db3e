//! `log_stats`: log entries counted per minute, process, level and target (upstream's columns).
//! Built from the same blocks as `log_entries`, in hourly partitions that maintenance keeps
//! materialized, so error and volume rates over many processes scan a few rows per minute.

use super::block_source::{batches_from_blocks, StreamBlocks};
use super::columns::{dict, ts, ts_builder, DictBuilder};
use super::log_entries::LogEntriesView;
use super::{Instance, RowFilter, View, ViewContext, ViewSource};
use crate::time::TimeRange;
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Builder, Int64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimestampNanosecondType};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

const MINUTE_NS: i64 = 60_000_000_000;

#[derive(Debug)]
pub struct LogStatsView;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        ts("time_bin"),
        dict("process_id"),
        Field::new("level", DataType::Int32, false),
        dict("target"),
        Field::new("count", DataType::Int64, false),
    ]))
});

#[async_trait]
impl View for LogStatsView {
    fn name(&self) -> &'static str {
        "log_stats"
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
        bail!("log_stats has only a global instance: SELECT … FROM log_stats")
    }

    fn has_global_instance(&self) -> bool {
        true
    }

    fn time_columns(&self) -> (&'static str, &'static str) {
        ("time_bin", "time_bin")
    }

    async fn make_batches(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>> {
        batches_from_blocks(self, ctx, instance, range).await
    }

    /// Counts the `log_entries` rows of the blocks, sorted by `(time_bin, process_id, level, target)`.
    fn rows_from_blocks(&self, streams: &[StreamBlocks], range: Option<TimeRange>, _filter: &RowFilter) -> Result<RecordBatch> {
        let entries = LogEntriesView.rows_from_blocks(streams, range, &RowFilter::NONE)?;
        let column = |name: &str| entries.column_by_name(name).with_context(|| format!("log_entries has no {name}"));
        let time = column("time")?.as_primitive::<TimestampNanosecondType>().clone();
        let level = column("level")?.as_primitive::<Int32Type>().clone();
        let process = cast(column("process_id")?, &DataType::Utf8)?;
        let target = cast(column("target")?, &DataType::Utf8)?;
        let (process, target) = (process.as_string::<i32>(), target.as_string::<i32>());
        let mut counts: BTreeMap<(i64, &str, i32, &str), i64> = BTreeMap::new();
        for i in 0..entries.num_rows() {
            let bin = time.value(i).div_euclid(MINUTE_NS) * MINUTE_NS;
            *counts.entry((bin, process.value(i), level.value(i), target.value(i))).or_default() += 1;
        }
        let (mut bins, mut processes, mut levels, mut targets, mut n) =
            (ts_builder(), DictBuilder::new(), Int32Builder::new(), DictBuilder::new(), Int64Builder::new());
        for ((bin, p, l, t), c) in counts {
            bins.append_value(bin);
            processes.append_value(p);
            levels.append_value(l);
            targets.append_value(t);
            n.append_value(c);
        }
        let columns: Vec<ArrayRef> =
            vec![Arc::new(bins.finish()), Arc::new(processes.finish()), Arc::new(levels.finish()), Arc::new(targets.finish()), Arc::new(n.finish())];
        debug_assert!(columns.iter().all(|c| c.null_count() == 0));
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}
