//! ETL on demand: block views are served from Parquet partitions in the object store, recorded in
//! `lakehouse_partitions`. The first query over an instance and insert-time hour builds the
//! partition; later queries reuse it while the hour's blocks are unchanged, and rebuild it when
//! new blocks arrive (the partition records how many blocks and objects went in).

mod migration;
mod parquet_scan;
mod retention;

use datafusion::execution::cache::cache_manager::FileMetadataCache;
use parquet_scan::{footer_cache, memory_in_range, parquet_scan};
pub use migration::{migrate_lakehouse, LAKEHOUSE_SCHEMA_VERSION};
pub use retention::{apply_retention, RetentionPolicy, RetentionReport};

use crate::metadata::HourSummary;
use crate::sql::{memory_scan, project_batches, BatchSource, ScanRequest};
use crate::time::TimeRange;
use crate::views::{build_rows, load_listed_blocks, load_stream_blocks, Instance, RowFilter, View, ViewContext, ViewSource};
use anyhow::{Context, Result};
use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use std::sync::atomic::Ordering;
use std::collections::{HashMap, HashSet};
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

/// Decoded rows of whole slices a query holds for its answer (and their background write) before
/// it builds the next stale slices' partitions first and reads them back, as Parquet.
const WHOLE_SLICES_BYTES: usize = 1 << 30;

/// A query over a range reads a stale hour's blocks directly, without building the hour's
/// partition, when fewer than 1/SMALL_SHARE of its blocks overlap the range.
const SMALL_SHARE: i64 = 4;

/// A slice as a query finds it: the freshness hash of its blocks now, how many there are and
/// how many overlap the query range.
#[derive(Debug)]
struct SliceState {
    slice: Slice,
    hash: Vec<u8>,
    blocks: i64,
    in_range: i64,
}

/// A partition's Parquet object (none when the slice had no rows).
#[derive(Debug, Clone)]
pub struct PartitionFile {
    pub path: String,
    pub size: u64,
}

/// A slice's partition as recorded.
#[derive(Debug)]
struct Partition {
    file: Option<PartitionFile>,
    rows: u64,
}

/// What one maintenance pass over a view did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub partitions_written: u64,
    /// Partitions that were already up to date.
    pub partitions_fresh: u64,
    pub rows: u64,
}

/// Partitions being built after the query that needed them has answered, by view, instance and
/// slice start: one build per slice at a time, and one build running at a time (each uses every
/// core already; more would only multiply the memory held).
struct Background {
    building: std::sync::Mutex<HashSet<(&'static str, String, i64)>>,
    done: tokio::sync::Notify,
    running: tokio::sync::Semaphore,
}

impl Default for Background {
    fn default() -> Self {
        Self { building: Default::default(), done: Default::default(), running: tokio::sync::Semaphore::new(1) }
    }
}

/// Takes a background build off the list when it ends, however it ends (a panic included).
struct Built {
    background: Arc<Background>,
    key: (&'static str, String, i64),
}

impl Drop for Built {
    fn drop(&mut self) {
        let mut building = self.background.building.lock().unwrap_or_else(|e| e.into_inner());
        building.remove(&self.key);
        if building.is_empty() {
            self.background.done.notify_waiters();
        }
    }
}

/// Where a build's CPU work runs: on the calling task (maintenance, which is background work
/// already), or on a thread of its own at a lower priority, so queries keep the cores first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cpu {
    Inline,
    Niced,
}

/// Nice value of background build threads (the threads they start inherit it).
const BACKGROUND_NICE: i32 = 10;

async fn run_cpu<T: Send + 'static>(cpu: Cpu, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    if cpu == Cpu::Inline {
        return Ok(work());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("mm-partition-build".into()).spawn(move || {
        // Per thread on Linux (elsewhere it would be the whole process); failing to lower the
        // priority only costs fairness.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE)
        };
        let _ = tx.send(work());
    })?;
    rx.await.context("a partition build thread stopped")
}

#[derive(Clone)]
pub struct Lakehouse {
    ctx: ViewContext,
    client: Arc<Client>,
    /// Held by a partition commit and by reads of the partitions table: statements of concurrent
    /// tasks share `client`'s one session, and must not land inside another task's transaction.
    transaction: Arc<tokio::sync::Mutex<()>>,
    background: Arc<Background>,
    footers: Arc<FileMetadataCache>,
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
        Ok(Self { ctx, client: Arc::new(client), transaction: Default::default(), background: Default::default(), footers: footer_cache() })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits until every partition started in the background is written (or failed).
    pub async fn idle(&self) {
        loop {
            let done = self.background.done.notified();
            if self.background.building.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                return;
            }
            done.await;
        }
    }

    /// The slices a query over `range` touches, each with the freshness hash of the blocks it holds
    /// now and how many of them overlap the range.
    async fn slices(&self, view: &dyn View, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<SliceState>> {
        let filter = view.block_filter(instance, None);
        let state = |slice: Slice, blocks: i64, objects: i64, in_range: i64| SliceState { slice, hash: source_hash(blocks, objects), blocks, in_range };
        if !view.hourly_partitions() {
            let all = self.ctx.metadata.block_hours(&filter).await?;
            if all.is_empty() {
                return Ok(vec![]);
            }
            let (blocks, objects) = (all.iter().map(|h| h.blocks).sum(), all.iter().map(|h| h.objects).sum());
            return Ok(vec![state(whole_instance(), blocks, objects, blocks)]);
        }
        let Some(range) = range else {
            return Ok(self.ctx.metadata.block_hours(&filter).await?.iter().map(|h| state(hour_of(h.hour), h.blocks, h.objects, h.blocks)).collect());
        };
        // The hours holding blocks in range, then everything those hours hold (their partitions cover it all).
        let touched: Vec<HourSummary> = self.ctx.metadata.block_hours(&view.block_filter(instance, Some(range))).await?;
        let (Some(first), Some(last)) = (touched.first(), touched.last()) else {
            return Ok(vec![]);
        };
        let mut whole_hours = filter;
        whole_hours.insert_range = Some((hour_of(first.hour).0, hour_of(last.hour).1));
        let totals = self.ctx.metadata.block_hours(&whole_hours).await?;
        Ok(totals
            .iter()
            .filter_map(|h| {
                let in_range = touched.iter().find(|t| t.hour == h.hour)?.blocks;
                Some(state(hour_of(h.hour), h.blocks, h.objects, in_range))
            })
            .collect())
    }

    /// Maintenance: makes the partitions of every insert-time hour in `[begin, end)` that has blocks
    /// fresh (built or already up to date), so later queries over those hours read no block.
    pub async fn materialize_hours(&self, view: &Arc<dyn View>, instance: &Instance, begin: DateTime<Utc>, end: DateTime<Utc>) -> Result<MaintenanceReport> {
        let mut filter = view.block_filter(instance, None);
        filter.insert_range = Some((begin, end));
        let slices: Vec<SliceState> = self
            .ctx
            .metadata
            .block_hours(&filter)
            .await?
            .iter()
            .map(|h| SliceState { slice: hour_of(h.hour), hash: source_hash(h.blocks, h.objects), blocks: h.blocks, in_range: h.blocks })
            .filter(|s| s.slice.0 >= begin && s.slice.1 <= end)
            .collect();
        let mut report = MaintenanceReport::default();
        let mut recorded = self.recorded(view.as_ref(), instance, &slices).await?;
        for s in &slices {
            match self.fresh(&mut recorded, s) {
                Some(p) => {
                    report.partitions_fresh += 1;
                    report.rows += p.rows;
                }
                None => {
                    report.rows += self.build(view, instance, s.slice).await?.rows;
                    report.partitions_written += 1;
                }
            }
        }
        Ok(report)
    }

    /// The partitions recorded for `slices`, by slice, with the hash of the blocks each was built from.
    async fn recorded(&self, view: &dyn View, instance: &Instance, slices: &[SliceState]) -> Result<HashMap<Slice, (Vec<u8>, Partition)>> {
        let (Some(first), Some(last)) = (slices.iter().map(|s| s.slice.0).min(), slices.iter().map(|s| s.slice.1).max()) else {
            return Ok(HashMap::new());
        };
        let schema_hash = vec![view.schema_version()];
        // Oldest first, so the newest row of a slice wins.
        let _session = self.transaction.lock().await;
        let rows = self
            .client
            .query(
                "SELECT begin_insert_time, end_insert_time, file_path, file_size, source_data_hash, num_rows FROM lakehouse_partitions
                 WHERE view_set_name = $1 AND view_instance_id = $2 AND file_schema_hash = $3
                   AND begin_insert_time >= $4 AND end_insert_time <= $5
                 ORDER BY updated",
                &[&view.name(), &instance.id(), &schema_hash, &first, &last],
            )
            .await?;
        let mut recorded = HashMap::new();
        for r in rows {
            let slice: Slice = (r.get(0), r.get(1));
            let path: Option<String> = r.get(2);
            let size: i64 = r.get(3);
            let hash: Vec<u8> = r.get(4);
            let num_rows: i64 = r.get(5);
            recorded.insert(slice, (hash, Partition { file: path.map(|path| PartitionFile { path, size: size as u64 }), rows: num_rows as u64 }));
        }
        Ok(recorded)
    }

    /// The slice's recorded partition when it was built from the blocks the slice holds now.
    fn fresh(&self, recorded: &mut HashMap<Slice, (Vec<u8>, Partition)>, s: &SliceState) -> Option<Partition> {
        match recorded.remove(&s.slice) {
            Some((hash, partition)) if hash == s.hash => {
                self.ctx.stats.partitions_reused.fetch_add(1, Ordering::Relaxed);
                Some(partition)
            }
            _ => None,
        }
    }

    /// All the rows of a slice's blocks, with the hash of the blocks used.
    async fn decode_slice(&self, view: &Arc<dyn View>, instance: &Instance, slice: Slice, cpu: Cpu) -> Result<(Vec<RecordBatch>, Vec<u8>)> {
        let mut filter = view.block_filter(instance, None);
        if view.hourly_partitions() {
            filter.insert_range = Some(slice);
        }
        // The hash of the blocks listed, skipped ones too: it must match the slice's (from the
        // same listing) or a slice holding a corrupt block would be rebuilt by every query.
        let (streams, (blocks, objects)) = load_listed_blocks(&self.ctx, &filter).await?;
        let hash = source_hash(blocks, objects);
        let view = view.clone();
        let batches = run_cpu(cpu, move || build_rows(view.as_ref(), &streams, None, &RowFilter::NONE)).await??;
        Ok((batches, hash))
    }

    /// Decodes a slice's blocks into its partition and records it, on the calling task.
    async fn build(&self, view: &Arc<dyn View>, instance: &Instance, slice: Slice) -> Result<Partition> {
        let (batches, hash) = self.decode_slice(view, instance, slice, Cpu::Inline).await?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        Ok(Partition { file: self.record(view, instance, slice, batches, hash, Cpu::Inline).await?, rows })
    }

    /// Runs `work` for the slice's partition unless a build of it is already running.
    fn in_background(&self, view: &dyn View, instance: &Instance, slice: Slice, work: impl std::future::Future<Output = Result<()>> + Send + 'static) {
        let key = (view.name(), instance.id().to_string(), slice.0.timestamp());
        if !self.background.building.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return;
        }
        let done = Built { background: self.background.clone(), key };
        tokio::spawn(async move {
            let run = async {
                let _turn = done.background.running.acquire().await?;
                work.await
            };
            if let Err(e) = run.await {
                let (view, instance, at) = &done.key;
                eprintln!("micromegas-analytics: partition of {view}('{instance}') at {at} not written: {e:#}");
            }
        });
    }

    /// Writes the Parquet file and swaps the partition row in one transaction; replaced files are
    /// listed in `temporary_files` for deletion after a grace period (queries may still read them).
    async fn record(&self, view: &Arc<dyn View>, instance: &Instance, slice: Slice, batches: Vec<RecordBatch>, hash: Vec<u8>, cpu: Cpu) -> Result<Option<PartitionFile>> {
        let num_rows = batches.iter().map(|b| b.num_rows() as i64).sum::<i64>();
        let (b_col, e_col) = view.time_columns();
        let (min_t, max_t) = event_bounds(&batches, b_col, e_col);
        let (file_path, file_size) = if num_rows == 0 {
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
            let bytes = {
                let view = view.clone();
                run_cpu(cpu, move || {
                    let batches = match view.cluster_column() {
                        Some(column) => cluster_by(batches, column)?,
                        None => batches,
                    };
                    write_parquet(view.as_ref(), &batches)
                })
                .await??
            };
            let size = bytes.len() as i64;
            self.ctx.store.put(&Path::from(path.as_str()), bytes.into()).await.with_context(|| format!("writing {path}"))?;
            (Some(path), size)
        };
        let lock_key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (view.name(), instance.id(), slice.0.timestamp()).hash(&mut h);
            h.finish() as i64
        };
        let schema_hash = vec![view.schema_version()];
        let _session = self.transaction.lock().await;
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
                self.ctx.stats.partitions_written.fetch_add(1, Ordering::Relaxed);
                Ok(file_path.map(|path| PartitionFile { path, size: file_size as u64 }))
            }
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e.context(format!("recording partition of {}('{}')", view.name(), instance.id())))
            }
        }
    }
}

fn event_bounds(batches: &[RecordBatch], b_col: &str, e_col: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    use datafusion::arrow::array::TimestampNanosecondArray;
    let times = |b: &RecordBatch, n: &str| b.column_by_name(n).and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>().cloned());
    let min = batches.iter().filter_map(|b| times(b, b_col)?.values().iter().min().copied()).min();
    let max = batches.iter().filter_map(|b| times(b, e_col)?.values().iter().max().copied()).max();
    (min.map(DateTime::from_timestamp_nanos), max.map(DateTime::from_timestamp_nanos))
}

/// The rows of `batches` ordered by the text of dictionary column `column`, stably (rows of one
/// value keep their order): one pass over the keys, then one `take` per value and batch.
fn cluster_by(batches: Vec<RecordBatch>, column: &str) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::{Array, AsArray, UInt32Array};
    use datafusion::arrow::compute::take_record_batch;
    use datafusion::arrow::datatypes::Int32Type;
    let mut by_value: std::collections::BTreeMap<String, Vec<(usize, Vec<u32>)>> = Default::default();
    for (b, batch) in batches.iter().enumerate() {
        let dict = batch
            .column_by_name(column)
            .and_then(|c| c.as_dictionary_opt::<Int32Type>())
            .with_context(|| format!("clustering on {column}, which is not a dictionary column"))?;
        let values = dict.values().as_string_opt::<i32>().with_context(|| format!("clustering on {column}, whose values are not text"))?;
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); values.len()];
        for (row, key) in dict.keys().values().iter().enumerate() {
            rows[*key as usize].push(row as u32);
        }
        for (key, rows) in rows.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            by_value.entry(values.value(key).to_string()).or_default().push((b, rows));
        }
    }
    let mut out = Vec::new();
    for (b, rows) in by_value.into_values().flatten() {
        out.push(take_record_batch(&batches[b], &UInt32Array::from(rows))?);
    }
    Ok(out)
}

/// Rows per row group, like upstream.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// LZ4_RAW pages and 128 Ki-row groups, like upstream, row groups encoded on every core and
/// written in order. Free text gets no min/max statistics: nothing prunes on it, and computing
/// them compares every value.
fn write_parquet(view: &dyn View, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    use datafusion::parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk};
    use datafusion::parquet::file::properties::EnabledStatistics;
    use datafusion::parquet::schema::types::ColumnPath;
    let schema = view.schema();
    let mut props = WriterProperties::builder().set_compression(Compression::LZ4_RAW).set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for text in ["msg", "properties", "process_properties"] {
        props = props.set_column_statistics_enabled(ColumnPath::from(text), EnabledStatistics::None);
    }
    let (mut file, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.build()))?.into_serialized_writer()?;
    // Row groups cut from the batches in order (slices share the batches' buffers).
    let mut groups: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let mut in_group = 0;
    for b in batches {
        let mut offset = 0;
        while offset < b.num_rows() {
            let take = (ROW_GROUP_ROWS - in_group).min(b.num_rows() - offset);
            groups.last_mut().expect("one group").push(b.slice(offset, take));
            offset += take;
            in_group += take;
            if in_group == ROW_GROUP_ROWS {
                groups.push(Vec::new());
                in_group = 0;
            }
        }
    }
    groups.retain(|g| !g.is_empty());
    let encode = |index: usize, group: &[RecordBatch]| -> Result<Vec<ArrowColumnChunk>> {
        let mut writers = factory.create_column_writers(index)?;
        for b in group {
            let mut w = writers.iter_mut();
            for (column, field) in b.columns().iter().zip(schema.fields()) {
                for leaf in compute_leaves(field, column)? {
                    w.next().ok_or_else(|| anyhow::anyhow!("more leaves than column writers"))?.write(&leaf)?;
                }
            }
        }
        writers.into_iter().map(|w| Ok(w.close()?)).collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (wave, chunk) in groups.chunks(cores).enumerate() {
        let encoded: Vec<Result<Vec<ArrowColumnChunk>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunk.iter().enumerate().map(|(i, g)| scope.spawn(move || encode(wave * cores + i, g))).collect();
            workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a Parquet encoding thread panicked")))).collect()
        });
        for columns in encoded {
            let mut row_group = file.next_row_group()?;
            for c in columns? {
                c.append_to_row_group(&mut row_group)?;
            }
            row_group.close()?;
        }
    }
    Ok(file.into_inner()?)
}

#[async_trait]
impl BatchSource for Lakehouse {
    async fn batches(&self, view: &Arc<dyn View>, instance: &Instance, range: Option<TimeRange>, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        view.make_projected(&self.ctx, instance, range, projection).await
    }

    /// Block views read their Parquet partitions through DataFusion's Parquet scan: column chunks
    /// are fetched by range, row groups pruned by the time range and the query's filters, and
    /// decoding runs in the plan's partitions, pipelined with what consumes it.
    ///
    /// A slice without a fresh partition is answered from its blocks, and its partition is written
    /// in the background, so the first query does not wait for Parquet. When the query's filters
    /// narrow the rows (a metric name, a log level), only the rows they keep are built now and the
    /// background build decodes the slice again; otherwise the slice's rows are built once, answer
    /// the query and go into the partition. A range over a small share of a stale hour reads just
    /// its blocks in range and builds nothing: maintenance or a wider query will.
    async fn scan(&self, state: &dyn Session, view: &Arc<dyn View>, instance: &Instance, scan: &ScanRequest<'_>) -> Result<Arc<dyn ExecutionPlan>> {
        // Metadata views are read fresh. A whole-instance partition (a stream's call tree) holds
        // the stream's entire life, so a query over a time range decodes just the blocks in range.
        if view.source() == ViewSource::Metadata || (!view.hourly_partitions() && scan.range.is_some()) {
            return memory_scan(state, view.schema(), scan.projection, self.batches(view, instance, scan.range, scan.projection).await?);
        }
        let slices = self.slices(view.as_ref(), instance, scan.range).await?;
        let mut recorded = self.recorded(view.as_ref(), instance, &slices).await?;
        let filter = RowFilter::from_exprs(scan.filters).on(view.filter_columns());
        let mut files = Vec::new();
        // Rows already restricted to the range and filtered, and whole slices' rows.
        let (mut kept, mut whole) = (Vec::new(), Vec::new());
        let mut whole_bytes = 0;
        // Partition writes, started once this query's own reads are done.
        let mut later: Vec<(Slice, futures::future::BoxFuture<'static, Result<()>>)> = Vec::new();
        for s in &slices {
            if let Some(p) = self.fresh(&mut recorded, s) {
                files.extend(p.file);
                continue;
            }
            let small = scan.range.is_some() && view.hourly_partitions() && s.in_range * SMALL_SHARE < s.blocks;
            if !small && filter.is_empty() && whole_bytes >= WHOLE_SLICES_BYTES {
                // Enough rows held for this query already: build, write and read this one as Parquet.
                files.extend(self.build(view, instance, s.slice).await?.file);
                continue;
            }
            if !small && filter.is_empty() {
                let (batches, hash) = self.decode_slice(view, instance, s.slice, Cpu::Inline).await?;
                whole_bytes += batches.iter().map(|b| b.get_array_memory_size()).sum::<usize>();
                let (me, v, i, b, slice) = (self.clone(), view.clone(), instance.clone(), batches.clone(), s.slice);
                later.push((slice, Box::pin(async move { me.record(&v, &i, slice, b, hash, Cpu::Niced).await.map(drop) })));
                whole.extend(batches);
                continue;
            }
            if !small {
                let (me, v, i, slice) = (self.clone(), view.clone(), instance.clone(), s.slice);
                later.push((
                    slice,
                    Box::pin(async move {
                        let (batches, hash) = me.decode_slice(&v, &i, slice, Cpu::Niced).await?;
                        me.record(&v, &i, slice, batches, hash, Cpu::Niced).await.map(drop)
                    }),
                ));
            }
            let mut blocks = view.block_filter(instance, scan.range);
            blocks.insert_range = Some(s.slice);
            let streams = load_stream_blocks(&self.ctx, &blocks).await?;
            kept.extend(build_rows(view.as_ref(), &streams, scan.range, &filter)?);
        }
        for (slice, work) in later {
            self.in_background(view.as_ref(), instance, slice, work);
        }
        let mut plans = Vec::new();
        if !files.is_empty() || (kept.is_empty() && whole.is_empty()) {
            plans.push(parquet_scan(state, self.ctx.store.clone(), &self.footers, view.as_ref(), files, scan)?);
        }
        if !kept.is_empty() {
            plans.push(memory_scan(state, view.schema(), scan.projection, project_batches(kept, scan.projection)?)?);
        }
        if !whole.is_empty() {
            plans.push(memory_in_range(state, view.as_ref(), whole, scan)?);
        }
        Ok(match plans.len() {
            1 => plans.remove(0),
            _ => datafusion::physical_plan::union::UnionExec::try_new(plans)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_by;
    use datafusion::arrow::array::{Array, ArrayAccessor, AsArray, DictionaryArray, Int64Array};
    use datafusion::arrow::datatypes::{Int32Type, Int64Type};
    use datafusion::arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    fn batch(names: &[&str], seq: &[i64]) -> RecordBatch {
        let name: DictionaryArray<Int32Type> = names.iter().copied().collect();
        RecordBatch::try_from_iter([("name", Arc::new(name) as Arc<dyn Array>), ("seq", Arc::new(Int64Array::from(seq.to_vec())))]).unwrap()
    }

    #[test]
    fn clustering_orders_rows_by_value_across_batches_and_keeps_their_order_within_one() {
        let out = cluster_by(vec![batch(&["b", "a", "b", "c"], &[1, 2, 3, 4]), batch(&["a", "b"], &[5, 6])], "name").unwrap();
        let rows: Vec<(String, i64)> = out
            .iter()
            .flat_map(|b| {
                let names = b.column(0).as_dictionary::<Int32Type>().downcast_dict::<datafusion::arrow::array::StringArray>().unwrap();
                let seq = b.column(1).as_primitive::<Int64Type>();
                (0..b.num_rows()).map(move |i| (names.value(i).to_string(), seq.value(i))).collect::<Vec<_>>()
            })
            .collect();
        let expected = [("a", 2), ("a", 5), ("b", 1), ("b", 3), ("b", 6), ("c", 4)];
        assert_eq!(rows, expected.map(|(n, s)| (n.to_string(), s)));
        assert!(cluster_by(vec![batch(&["x"], &[1])], "seq").is_err(), "only dictionary columns cluster");
    }
}
