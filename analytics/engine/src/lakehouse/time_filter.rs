//! Applies a view's time rule to rows read back from a partition.

use crate::time::TimeRange;
use anyhow::{anyhow, Result};
use datafusion::arrow::array::{BooleanArray, TimestampNanosecondArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;

/// Keeps rows whose `[begin_col, end_col]` overlaps the range (point views pass the same column twice).
pub fn filter_by_time(batch: &RecordBatch, begin_col: &str, end_col: &str, range: TimeRange) -> Result<RecordBatch> {
    let col = |name: &str| -> Result<&TimestampNanosecondArray> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
            .ok_or_else(|| anyhow!("partition has no timestamp column {name}"))
    };
    let (b, e) = (col(begin_col)?, col(end_col)?);
    let keep: BooleanArray = b.values().iter().zip(e.values().iter()).map(|(&b, &e)| Some(range.overlaps(b, e))).collect();
    Ok(filter_record_batch(batch, &keep)?)
}
