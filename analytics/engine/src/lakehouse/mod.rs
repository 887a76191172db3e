//! ETL on demand: block views are served from Parquet partitions in the object store, recorded in
//! `lakehouse_partitions`. The first query over an instance and insert-time hour builds the
//! partition; later queries reuse it while the hour's blocks are unchanged, and rebuild it when
//! new blocks arrive (the partition records how many blocks and objects went in).

mod migration;
mod retention;
mod time_filter;

pub use migration::{migrate_lakehouse, LAKEHOUSE_SCHEMA_VERSION};
pub use retention::{apply_retention, RetentionPolicy, RetentionReport};
pub use time_filter::filter_by_time;

use crate::metadata::BlockRow;
use crate::sql::{project_batches, BatchSource};
use crate::time::TimeRange;
use crate::views::{load_stream_blocks, Instance, View, ViewContext, ViewSource};
use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_postgres::Client;

/// An insert-time slice `[begin, end)` of an instance.
pub type Slice = (DateTime<Utc>, DateTime<Utc>);

/// The slice of views whose partitions cover a whole instance.
fn whole_instance() -> Slice {
    (Utc.timestamp_opt(0, 0).unwrap(), Utc.with_ymd_and_hms(3000, 1, 1, 0, 0, 0).unwrap())
}

fn hour_of(t: DateTime<Utc>) -> Slice {
    let begin = t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t);
    (begin, begin + TimeDelta::hours(1))
}

/// The freshness test: how many blocks and objects a partition was built from.
fn source_hash(blocks: i64, objects: i64) -> Vec<u8> {
    [blocks.to_le_bytes(), objects.to_le_bytes()].concat()
}

/// What one maintenance pass over a view did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub partitions_written: u64,
    /// Partitions that were already up to date.
    pub partitions_fresh: u64,
    pub rows: u64,
}

pub struct Lakehouse {
    ctx: ViewContext,
    client: Arc<Client>,
}

impl std::fmt::Debug for Lakehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lakehouse")
    }
}

impl Lakehouse {
    /// `client` is a connection of its own (partition commits run in transactions).
    pub async fn new(ctx: ViewContext, client: Client) -> Result<Self> {
        migrate_lakehouse(&client).await.context("migrating lakehouse tables")?;
        Ok(Self { ctx, client: Arc::new(client) })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The slices a query over `range` touches.
    async fn slices(&self, view: &dyn View, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<Slice>> {
        if !view.hourly_partitions() {
            return Ok(vec![whole_instance()]);
        }
        let hours = self.ctx.metadata.block_hours(&view.block_filter(instance, range)).await?;
        Ok(hours.iter().map(|h| hour_of(h.hour)).collect())
    }

    /// Maintenance: makes the partitions of every insert-time hour in `[begin, end)` that has blocks
    /// fresh (built or already up to date), so later queries over those hours read no block.
    pub async fn materialize_hours(&self, view: &dyn View, instance: &Instance, begin: DateTime<Utc>, end: DateTime<Utc>) -> Result<MaintenanceReport> {
        let mut filter = view.block_filter(instance, None);
        filter.insert_range = Some((begin, end));
        let hours: BTreeSet<Slice> =
            self.ctx.metadata.block_hours(&filter).await?.iter().map(|h| hour_of(h.hour)).filter(|h| h.0 >= begin && h.1 <= end).collect();
        let mut report = MaintenanceReport::default();
        for hour in hours {
            let (batches, built) = self.materialize(view, instance, hour, Some(&[])).await?;
            report.rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            if built {
                report.partitions_written += 1;
            } else {
                report.partitions_fresh += 1;
            }
        }
        Ok(report)
    }

    /// Rows of one slice, from its partition when fresh, else rebuilt from blocks and recorded
    /// (`true` when rebuilt). `columns`: the view-schema columns to return (all when `None`).
    pub async fn materialize(&self, view: &dyn View, instance: &Instance, slice: Slice, columns: Option<&[usize]>) -> Result<(Vec<RecordBatch>, bool)> {
        let mut filter = view.block_filter(instance, None);
        if view.hourly_partitions() {
            filter.insert_range = Some(slice);
        }
        let summary = self.ctx.metadata.block_hours(&filter).await?;
        let hash = source_hash(summary.iter().map(|h| h.blocks).sum(), summary.iter().map(|h| h.objects).sum());
        let schema_hash = vec![view.schema_version()];
        let existing = self
            .client
            .query_opt(
                "SELECT file_path, source_data_hash FROM lakehouse_partitions
                 WHERE view_set_name = $1 AND view_instance_id = $2 AND begin_insert_time = $3 AND end_insert_time = $4
                   AND file_schema_hash = $5
                 ORDER BY updated DESC LIMIT 1",
                &[&view.name(), &instance.id(), &slice.0, &slice.1, &schema_hash],
            )
            .await?;
        if let Some(row) = existing {
            let stored: Vec<u8> = row.get(1);
            if stored == hash {
                self.ctx.stats.partitions_reused.fetch_add(1, Ordering::Relaxed);
                let path: Option<String> = row.get(0);
                return match path {
                    None => Ok((vec![], false)),
                    Some(p) => Ok((read_parquet(&self.ctx, &p, columns).await?, false)),
                };
            }
        }
        let streams = load_stream_blocks(&self.ctx, &filter).await?;
        let used: Vec<&BlockRow> = streams.iter().flat_map(|s| s.blocks.iter().map(|(b, _)| b)).collect();
        let hash = source_hash(used.len() as i64, used.iter().map(|b| b.nb_objects as i64).sum());
        let batch = view.rows_from_blocks(&streams, None)?;
        self.record(view, instance, slice, &batch, hash).await?;
        self.ctx.stats.partitions_written.fetch_add(1, Ordering::Relaxed);
        if batch.num_rows() == 0 {
            return Ok((vec![], true));
        }
        Ok((
            vec![match columns {
                Some(c) => batch.project(c)?,
                None => batch,
            }],
            true,
        ))
    }

    /// Writes the Parquet file and swaps the partition row in one transaction; replaced files are
    /// listed in `temporary_files` for deletion after a grace period (queries may still read them).
    async fn record(&self, view: &dyn View, instance: &Instance, slice: Slice, batch: &RecordBatch, hash: Vec<u8>) -> Result<()> {
        let (file_path, file_size) = if batch.num_rows() == 0 {
            (None, 0i64)
        } else {
            let path = format!(
                "views/{}/{}/{}/{}_{}.parquet",
                view.name(),
                instance.id(),
                slice.0.format("%Y-%m-%d"),
                slice.0.format("%H-%M-%S"),
                uuid::Uuid::new_v4()
            );
            let bytes = write_parquet(batch)?;
            let size = bytes.len() as i64;
            self.ctx.store.put(&Path::from(path.as_str()), bytes.into()).await.with_context(|| format!("writing {path}"))?;
            (Some(path), size)
        };
        let (b_col, e_col) = view.time_columns();
        let (min_t, max_t) = event_bounds(batch, b_col, e_col);
        let lock_key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (view.name(), instance.id(), slice.0.timestamp()).hash(&mut h);
            h.finish() as i64
        };
        let schema_hash = vec![view.schema_version()];
        let num_rows = batch.num_rows() as i64;
        self.client.batch_execute("BEGIN").await?;
        let r = async {
            self.client.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key]).await?;
            self.client
                .execute(
                    "INSERT INTO temporary_files(file_path, file_size, expiration)
                     SELECT file_path, file_size, now() + interval '1 hour' FROM lakehouse_partitions
                     WHERE view_set_name = $1 AND view_instance_id = $2 AND begin_insert_time = $3 AND end_insert_time = $4
                       AND file_path IS NOT NULL",
                    &[&view.name(), &instance.id(), &slice.0, &slice.1],
                )
                .await?;
            self.client
                .execute(
                    "DELETE FROM lakehouse_partitions
                     WHERE view_set_name = $1 AND view_instance_id = $2 AND begin_insert_time = $3 AND end_insert_time = $4",
                    &[&view.name(), &instance.id(), &slice.0, &slice.1],
                )
                .await?;
            self.client
                .execute(
                    "INSERT INTO lakehouse_partitions(view_set_name, view_instance_id, begin_insert_time, end_insert_time,
                       min_event_time, max_event_time, updated, file_path, file_size, file_schema_hash, source_data_hash, num_rows)
                     VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9, $10, $11)",
                    &[&view.name(), &instance.id(), &slice.0, &slice.1, &min_t, &max_t, &file_path, &file_size, &schema_hash, &hash, &num_rows],
                )
                .await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        match r {
            Ok(()) => {
                self.client.batch_execute("COMMIT").await?;
                Ok(())
            }
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e.context(format!("recording partition of {}('{}')", view.name(), instance.id())))
            }
        }
    }
}

fn event_bounds(batch: &RecordBatch, b_col: &str, e_col: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    use datafusion::arrow::array::TimestampNanosecondArray;
    let get = |n: &str| batch.column_by_name(n).and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>().cloned());
    let min = get(b_col).and_then(|a| a.values().iter().min().copied()).map(DateTime::from_timestamp_nanos);
    let max = get(e_col).and_then(|a| a.values().iter().max().copied()).map(DateTime::from_timestamp_nanos);
    (min, max)
}

/// LZ4_RAW pages and 128 Ki-row groups, like upstream.
fn write_parquet(batch: &RecordBatch) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))?;
    w.write(batch)?;
    Ok(w.into_inner()?)
}

/// Reads only `columns` (root indices; the file's columns are the view's, in order): ranged reads
/// of just those column chunks, and the row groups split across the cores, in file order.
#[allow(deprecated)] // ParquetObjectReader: still the simplest AsyncFileReader over our ObjectStore
async fn read_parquet(ctx: &ViewContext, path: &str, columns: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
    use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    use datafusion::parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
    use futures::TryStreamExt;
    let mut reader = ParquetObjectReader::new(ctx.store.clone(), Path::from(path));
    let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::default())
        .await
        .with_context(|| format!("reading partition {path}"))?;
    let mask = columns.map(|c| ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), c.iter().copied()));
    let groups: Vec<usize> = (0..metadata.metadata().num_row_groups()).collect();
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get()).min(groups.len()).max(1);
    let tasks: Vec<_> = groups
        .chunks(groups.len().div_ceil(parallelism).max(1))
        .map(|chunk| {
            let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), metadata.clone())
                .with_row_groups(chunk.to_vec())
                .with_batch_size(64 * 1024);
            if let Some(m) = &mask {
                builder = builder.with_projection(m.clone());
            }
            tokio::spawn(async move { builder.build()?.try_collect::<Vec<_>>().await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.context("partition reader task")?.with_context(|| format!("reading partition {path}"))?);
    }
    Ok(out)
}

#[async_trait]
impl BatchSource for Lakehouse {
    async fn batches(&self, view: &Arc<dyn View>, instance: &Instance, range: Option<TimeRange>, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        if view.source() == ViewSource::Metadata {
            return project_batches(view.make_batches(&self.ctx, instance, range).await?, projection);
        }
        // Read the requested columns plus, under a range, the time columns the filter needs;
        // `read` is sorted, so the file's column order is kept.
        let schema = view.schema();
        let (b_col, e_col) = view.time_columns();
        let read: Option<Vec<usize>> = projection.map(|p| {
            let mut cols: Vec<usize> = p.to_vec();
            if range.is_some() {
                cols.extend([schema.index_of(b_col), schema.index_of(e_col)].into_iter().flatten());
            }
            cols.sort_unstable();
            cols.dedup();
            cols
        });
        let read_schema = match &read {
            Some(c) => Arc::new(schema.project(c)?),
            None => schema.clone(),
        };
        // Positions of the requested columns inside the read batches.
        let output: Option<Vec<usize>> = projection.map(|p| p.iter().map(|i| read_schema.index_of(schema.field(*i).name()).unwrap_or(0)).collect());
        let mut out = Vec::new();
        for slice in self.slices(view.as_ref(), instance, range).await? {
            for batch in self.materialize(view.as_ref(), instance, slice, read.as_deref()).await?.0 {
                let batch = match range {
                    Some(r) => filter_by_time(&batch, b_col, e_col, r)?,
                    None => batch,
                };
                let batch = match &output {
                    Some(o) => batch.project(o)?,
                    None => batch,
                };
                if batch.num_rows() > 0 {
                    out.push(batch);
                }
            }
        }
        Ok(out)
    }
}
