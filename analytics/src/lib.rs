//! The Node surface of the analytics engine, and nothing else: every function here converts
//! arguments, calls `micromegas_analytics`, and converts the result. Results cross the boundary as
//! Arrow IPC stream bytes (read with `apache-arrow` on the TypeScript side) or JSON bytes.

use micromegas_analytics::engine::{self, to_ipc_stream, to_json_rows, EngineConfig};
use micromegas_analytics::sql::{QueryError, SqlLimits};
use micromegas_analytics::time::TimeRange;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;
use std::time::Duration;

/// A query allocates column buffers of tens of MiB and frees them when it ends. By default glibc
/// hands such buffers back to the kernel (mmap above 128 KiB-32 MiB, heap trimming), so every
/// query paid page faults to get them again: 20-30 % of a span query, half of a log decode. Keep
/// freed memory in the heap for reuse instead, up to 1 GiB of free top, unless the user tuned
/// malloc through its own environment variables.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[napi_derive::module_init]
fn keep_freed_memory() {
    const TUNED_BY_USER: [&str; 3] = ["GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"];
    if TUNED_BY_USER.iter().any(|k| std::env::var_os(k).is_some()) {
        return;
    }
    const GIB: libc::c_int = 1 << 30;
    // SAFETY: mallopt only sets allocator parameters; it runs once, while the module loads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, GIB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, GIB);
    }
}

fn to_napi(e: anyhow::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{e:#}"))
}

/// A query's error as `[kind] message`: the TS side turns the kind into the HTTP status, in one
/// place (server.ts), instead of guessing it from the message.
fn query_error(e: QueryError) -> Error {
    Error::new(Status::GenericFailure, format!("[{}] {}", e.kind.code(), e.message))
}

fn query_error_of(e: anyhow::Error) -> Error {
    query_error(QueryError::of(&e))
}

#[napi(object)]
pub struct OpenOptions {
    /// PostgreSQL URL; defaults to `MICROMEGAS_SQL_CONNECTION_STRING`.
    pub sql_connection_string: Option<String>,
    /// `file:///path` or `s3://bucket/prefix`; defaults to `MICROMEGAS_OBJECT_STORE_URI`.
    pub object_store_uri: Option<String>,
    /// Per-query memory cap in MiB.
    pub memory_limit_mb: Option<u32>,
    /// Per-query timeout in milliseconds.
    pub query_timeout_ms: Option<u32>,
    /// Serve block views from Parquet partitions recorded in PostgreSQL (default true).
    pub jit_partitions: Option<bool>,
    /// Queries running at once (default twice the cores); more wait in a short queue.
    pub max_concurrent_queries: Option<u32>,
    /// Queries waiting for a slot (default 16); beyond, queries are refused as overloaded.
    pub max_queued_queries: Option<u32>,
    /// Longest SQL text accepted, in bytes (default 256 KiB).
    pub max_sql_bytes: Option<u32>,
    /// Deepest expression nesting accepted (default 1000).
    pub max_expression_depth: Option<u32>,
}

#[napi(object)]
pub struct RetentionOptions {
    /// Blocks and partitions older than this (insert time) are deleted.
    pub max_age_seconds: f64,
    /// Tail sampling: cpu blocks older than this go unless their process is kept.
    pub cpu_max_age_seconds: Option<f64>,
    /// SQL returning `process_id`: processes whose cpu streams are kept (default: logged an error or fatal).
    pub keep_processes_sql: Option<String>,
    /// The keep query's time range ends now and starts this long before (default 1 h).
    pub window_seconds: Option<f64>,
}

#[napi(object)]
pub struct RetentionReport {
    pub blocks_expired: i64,
    pub cpu_blocks_sampled_out: i64,
    pub streams_deleted: i64,
    pub processes_deleted: i64,
    pub partitions_retired: i64,
    pub files_deleted: i64,
}

fn seconds(s: f64) -> chrono::TimeDelta {
    chrono::TimeDelta::milliseconds((s * 1000.0) as i64)
}

/// What one maintenance pass over a view did.
#[napi(object)]
pub struct MaintenanceReport {
    pub partitions_written: i64,
    /// Partitions that were already up to date.
    pub partitions_fresh: i64,
    pub rows: i64,
}

/// What the engine did since it was opened.
#[napi(object)]
pub struct EngineStats {
    pub blocks_read: i64,
    pub partitions_written: i64,
    pub partitions_reused: i64,
    /// Blocks left out of queries and builds because they are corrupt or inconsistent (each logged with its id).
    pub blocks_skipped: i64,
}

#[napi(object)]
pub struct QueryOptions {
    /// RFC 3339 start of the query time range (requires `end`).
    pub begin: Option<String>,
    /// RFC 3339 end of the query time range (requires `begin`).
    pub end: Option<String>,
    /// Rows at most: an integer from 0 to 2^53-1 (a JS number).
    pub limit: Option<f64>,
}

fn parse_time(what: &str, s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| Error::new(Status::InvalidArg, format!("invalid {what} time '{s}': {e}")))
}

fn query_options(o: Option<QueryOptions>) -> Result<engine::QueryOptions> {
    let Some(o) = o else { return Ok(Default::default()) };
    let range = match (o.begin.as_deref().filter(|s| !s.is_empty()), o.end.as_deref().filter(|s| !s.is_empty())) {
        (Some(b), Some(e)) => {
            let (b, e) = (parse_time("begin", b)?, parse_time("end", e)?);
            if b > e {
                return Err(Error::new(Status::InvalidArg, "begin must not be after end".to_string()));
            }
            Some(TimeRange::new(b, e))
        }
        (None, None) => None,
        _ => return Err(Error::new(Status::InvalidArg, "give both begin and end, or neither".to_string())),
    };
    let limit = match o.limit {
        Some(l) if l.fract() != 0.0 || !(0.0..=9_007_199_254_740_991.0).contains(&l) => {
            return Err(query_error(QueryError::invalid(format!("limit must be an integer from 0 to 2^53-1, got {l}"))))
        }
        l => l.map(|l| l as usize),
    };
    Ok(engine::QueryOptions { range, limit })
}

#[napi]
pub struct Engine {
    inner: Arc<engine::Engine>,
}

/// A running query's encoded result.
#[napi]
pub struct QueryStream {
    inner: Arc<tokio::sync::Mutex<engine::ResultStream>>,
    abort: Option<tokio::task::AbortHandle>,
}

#[napi]
impl QueryStream {
    /// The next chunk of bytes, or null after the last.
    #[napi]
    pub async fn next(&self) -> Result<Option<Buffer>> {
        let chunk = self.inner.lock().await.next_chunk().await.map_err(query_error)?;
        Ok(chunk.map(Into::into))
    }

    /// Stops the query now (its reader is gone): its operators are dropped, its slot freed; a
    /// pending or later `next()` rejects as cancelled. Idempotent.
    #[napi]
    pub fn cancel(&self) {
        if let Some(a) = &self.abort {
            a.abort();
        }
    }
}

/// Decodes one stored block payload with its stream's metadata (CBOR UDT arrays) and returns
/// the number of events; decoding errors name what was being read. `times` (default 1) decodes
/// it again that many times (the benchmark: a query reads a stream's metadata once, not per block)
/// and returns the events of all.
#[napi]
pub fn count_block_events(dependencies_metadata: Buffer, objects_metadata: Buffer, payload: Buffer, times: Option<u32>) -> Result<u32> {
    let types = micromegas_analytics::decode::StreamTypes::try_from_cbor(&dependencies_metadata, &objects_metadata).map_err(to_napi)?;
    let mut n = 0u32;
    for _ in 0..times.unwrap_or(1) {
        micromegas_analytics::decode::try_for_each_event(&payload, &types, |_, _| {
            n += 1;
            Ok(())
        })
        .map_err(to_napi)?;
    }
    Ok(n)
}

/// Builds `view`'s Arrow rows from one stored block payload on the calling thread, `times` times
/// (default 1), and returns how many rows in all (the decode benchmark's block-to-Arrow cases).
/// `nb_objects` is the block's event count, as its metadata row always has it.
#[napi]
pub fn block_view_rows(view: String, dependencies_metadata: Buffer, objects_metadata: Buffer, payload: Buffer, nb_objects: u32, times: Option<u32>) -> Result<u32> {
    let types = micromegas_analytics::decode::StreamTypes::try_from_cbor(&dependencies_metadata, &objects_metadata).map_err(to_napi)?;
    let n = micromegas_analytics::views::rows_of_one_block(&view, types, &payload, nb_objects as i32, times.unwrap_or(1) as usize).map_err(to_napi)?;
    Ok(n as u32)
}

/// Connects to PostgreSQL and the object store.
#[napi]
pub async fn open_engine(options: OpenOptions) -> Result<Engine> {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let config = EngineConfig {
        sql_connection_string: options.sql_connection_string.unwrap_or_else(|| env("MICROMEGAS_SQL_CONNECTION_STRING")),
        object_store_uri: options.object_store_uri.unwrap_or_else(|| env("MICROMEGAS_OBJECT_STORE_URI")),
        memory_limit: options.memory_limit_mb.map(|m| m as usize * 1024 * 1024),
        query_timeout: options.query_timeout_ms.map(|ms| Duration::from_millis(ms as u64)),
        jit_partitions: options.jit_partitions.unwrap_or(true),
        max_concurrent_queries: options.max_concurrent_queries.map(|n| n as usize),
        max_queued_queries: options.max_queued_queries.map(|n| n as usize),
        sql_limits: SqlLimits {
            max_sql_bytes: options.max_sql_bytes.map_or(SqlLimits::default().max_sql_bytes, |n| n as usize),
            max_expression_depth: options.max_expression_depth.map_or(SqlLimits::default().max_expression_depth, |n| n as usize),
        },
    };
    let inner = engine::Engine::open(config).await.map_err(to_napi)?;
    Ok(Engine { inner: Arc::new(inner) })
}

#[napi]
impl Engine {
    /// Runs `sql` and returns the result as an Arrow IPC stream.
    #[napi]
    pub async fn query_ipc(&self, sql: String, options: Option<QueryOptions>) -> Result<Buffer> {
        let options = query_options(options)?;
        let r = self.inner.query(&sql, &options).await.map_err(query_error_of)?;
        Ok(to_ipc_stream(&r).map_err(to_napi)?.into())
    }

    #[napi]
    pub fn stats(&self) -> EngineStats {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.inner.stats();
        EngineStats {
            blocks_read: s.blocks_read.load(Relaxed) as i64,
            partitions_written: s.partitions_written.load(Relaxed) as i64,
            partitions_reused: s.partitions_reused.load(Relaxed) as i64,
            blocks_skipped: s.blocks_skipped.load(Relaxed) as i64,
        }
    }

    /// Resolves once the partitions that queries started writing in the background are written.
    #[napi]
    pub async fn idle(&self) -> Result<()> {
        self.inner.idle().await;
        Ok(())
    }

    /// Applies retention and tail sampling now; see `lakehouse::retention`.
    #[napi]
    pub async fn apply_retention(&self, options: RetentionOptions) -> Result<RetentionReport> {
        let mut policy = micromegas_analytics::lakehouse::RetentionPolicy { max_age: seconds(options.max_age_seconds), ..Default::default() };
        policy.cpu_max_age = options.cpu_max_age_seconds.map(seconds);
        if let Some(sql) = options.keep_processes_sql {
            policy.keep_processes_sql = sql;
        }
        if let Some(w) = options.window_seconds {
            policy.window = seconds(w);
        }
        let r = micromegas_analytics::lakehouse::apply_retention(&self.inner, &policy, chrono::Utc::now()).await.map_err(to_napi)?;
        Ok(RetentionReport {
            blocks_expired: r.blocks_expired as i64,
            cpu_blocks_sampled_out: r.cpu_blocks_sampled_out as i64,
            streams_deleted: r.streams_deleted as i64,
            processes_deleted: r.processes_deleted as i64,
            partitions_retired: r.partitions_retired as i64,
            files_deleted: r.files_deleted as i64,
        })
    }

    /// Builds or refreshes the global partitions of a block view (`log_entries`, `measures`, …)
    /// for every insert-time hour inside `[begin, end)` (RFC 3339).
    #[napi]
    pub async fn materialize_global(&self, view: String, begin: String, end: String) -> Result<MaintenanceReport> {
        let (b, e) = (parse_time("begin", &begin)?, parse_time("end", &end)?);
        let r = self.inner.materialize_global(&view, b, e).await.map_err(to_napi)?;
        Ok(MaintenanceReport { partitions_written: r.partitions_written as i64, partitions_fresh: r.partitions_fresh as i64, rows: r.rows as i64 })
    }

    /// Starts `sql` and returns its result as a stream of encoded chunks (Arrow IPC stream bytes,
    /// or the pieces of one JSON array), read with `next()`; errors, planning ones included,
    /// come from `next()`; `cancel()` stops the query.
    #[napi]
    pub fn query_stream(&self, sql: String, options: Option<QueryOptions>, arrow: bool) -> Result<QueryStream> {
        let options = query_options(options)?;
        let format = if arrow { engine::ResultFormat::ArrowIpc } else { engine::ResultFormat::Json };
        let stream = self.inner.query_stream(&sql, &options, format);
        let abort = stream.abort_handle();
        Ok(QueryStream { inner: Arc::new(tokio::sync::Mutex::new(stream)), abort })
    }

    /// Runs `sql` and returns the result as a JSON array of row objects.
    #[napi]
    pub async fn query_json(&self, sql: String, options: Option<QueryOptions>) -> Result<Buffer> {
        let options = query_options(options)?;
        let r = self.inner.query(&sql, &options).await.map_err(query_error_of)?;
        Ok(to_json_rows(&r).map_err(to_napi)?.into())
    }
}
