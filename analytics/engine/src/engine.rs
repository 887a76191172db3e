//! The engine a Node process opens once: metadata, object store, views, and query execution.

use crate::lakehouse::{Lakehouse, MaintenanceReport};
use crate::metadata::{MetadataSource, PgMetadata};
use crate::sql::{cooperative, make_session, plan_read_only, BatchSource, QueryError, QueryErrorKind, SqlLimits};
use crate::store::open_object_store;
use crate::time::TimeRange;
use crate::views::{all_views, Instance, View, ViewContext, ViewSource};
use chrono::{DateTime, Utc};
use anyhow::{anyhow, bail, Result};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// PostgreSQL URL (`MICROMEGAS_SQL_CONNECTION_STRING`).
    pub sql_connection_string: String,
    /// `file:///path` or `s3://bucket/prefix` (`MICROMEGAS_OBJECT_STORE_URI`).
    pub object_store_uri: String,
    /// Cap on DataFusion's tracked memory per query, in bytes.
    pub memory_limit: Option<usize>,
    /// Queries running longer fail with a timeout error.
    pub query_timeout: Option<Duration>,
    /// Turn block views into Parquet partitions recorded in PostgreSQL (ETL on demand).
    pub jit_partitions: bool,
    /// Queries running at once (default: twice the cores); more wait in a queue.
    pub max_concurrent_queries: Option<usize>,
    /// Queries waiting for a slot (default 16); more are refused as overloaded.
    pub max_queued_queries: Option<usize>,
    /// SQL size and nesting limits.
    pub sql_limits: SqlLimits,
}

#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub range: Option<TimeRange>,
    pub limit: Option<usize>,
}

pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Reads views straight from blocks, with no persistence.
#[derive(Debug)]
pub struct DirectSource {
    ctx: ViewContext,
}

impl std::fmt::Debug for ViewContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewContext")
    }
}

impl DirectSource {
    pub fn new(ctx: ViewContext) -> Self {
        Self { ctx }
    }
}

#[async_trait]
impl BatchSource for DirectSource {
    async fn batches(&self, view: &Arc<dyn View>, instance: &Instance, range: Option<TimeRange>, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        view.make_projected(&self.ctx, instance, range, projection).await
    }
}

/// Planning recurses over the query's expressions: its threads get a stack far above what the
/// depth limit needs (DataFusion's `recursive_protection` grows it further on demand).
const QUERY_STACK_BYTES: usize = 32 * 1024 * 1024;

/// The runtime every query plans and runs on, apart from the caller's (Node's napi runtime, a
/// test's): CPU-heavy operators never hold the threads that answer other requests, and every
/// thread has a known, large stack.
fn query_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("mm-query")
            .thread_stack_size(QUERY_STACK_BYTES)
            .max_blocking_threads(64)
            .enable_all()
            .build()
            .expect("starting the query runtime")
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Caps the queries running at once, with a short queue in front.
struct Admission {
    slots: Arc<Semaphore>,
    running_max: usize,
    waiting: AtomicUsize,
    waiting_max: usize,
}

/// Counts a query as waiting until dropped (admitted, timed out or aborted).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    fn new(running_max: usize, waiting_max: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(running_max.max(1))), running_max: running_max.max(1), waiting: AtomicUsize::new(0), waiting_max }
    }

    fn overloaded(&self) -> QueryError {
        QueryError::new(
            QueryErrorKind::Overloaded,
            format!("server busy: {} queries running and {} waiting, the most it takes; retry later", self.running_max, self.waiting_max),
        )
    }

    /// A slot to run in: at once if one is free, else after waiting in the queue (if not full).
    async fn admit(&self) -> Result<OwnedSemaphorePermit, QueryError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.waiting_max {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(self.overloaded());
        }
        let _waiting = Waiting(&self.waiting);
        self.slots.clone().acquire_owned().await.map_err(|_| self.overloaded())
    }
}

/// What planning a query needs, shared with the tasks that run queries.
struct Planner {
    views: Vec<Arc<dyn View>>,
    source: Arc<dyn BatchSource>,
    memory_limit: Option<usize>,
    limits: SqlLimits,
}

impl Planner {
    /// Plans `sql` read-only, under the query's range and limit.
    async fn plan(&self, sql: &str, options: &QueryOptions) -> Result<DataFrame, QueryError> {
        let ctx = make_session(&self.views, options.range, self.source.clone(), self.memory_limit).map_err(|e| QueryError::new(QueryErrorKind::Internal, format!("{e:#}")))?;
        let mut df = plan_read_only(&ctx, sql, &self.limits).await?;
        if let Some(limit) = options.limit {
            df = df.limit(0, Some(limit))?;
        }
        Ok(df)
    }
}

/// A query running on the query runtime; dropping it aborts the query.
pub struct QueryTask<T> {
    handle: tokio::task::JoinHandle<Result<T, QueryError>>,
}

impl<T> QueryTask<T> {
    /// Aborts the query from anywhere (another thread, a JS callback) without its owner.
    pub fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.handle.abort_handle()
    }

    pub async fn join(mut self) -> Result<T, QueryError> {
        let r = (&mut self.handle).await;
        match r {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err(QueryError::new(QueryErrorKind::Cancelled, "query cancelled")),
            Err(_) => Err(QueryError::new(QueryErrorKind::Internal, "query failed: its task panicked")),
        }
    }
}

impl<T> Drop for QueryTask<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub struct Engine {
    pg: Arc<PgMetadata>,
    views: Vec<Arc<dyn View>>,
    view_ctx: ViewContext,
    planner: Arc<Planner>,
    admission: Arc<Admission>,
    /// The same object as the planner's source when JIT partitions are on.
    lakehouse: Option<Arc<Lakehouse>>,
    config: EngineConfig,
}

impl Engine {
    pub async fn open(config: EngineConfig) -> Result<Self> {
        if config.sql_connection_string.is_empty() {
            bail!("no PostgreSQL connection string: set MICROMEGAS_SQL_CONNECTION_STRING");
        }
        if config.object_store_uri.is_empty() {
            bail!("no object store: set MICROMEGAS_OBJECT_STORE_URI");
        }
        let pg = Arc::new(PgMetadata::connect(&config.sql_connection_string).await?);
        let store = open_object_store(&config.object_store_uri)?;
        let view_ctx = ViewContext { metadata: pg.clone() as Arc<dyn MetadataSource>, store, stats: Default::default() };
        let lakehouse = if config.jit_partitions {
            let (client, connection) = tokio_postgres::connect(&config.sql_connection_string, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Some(Arc::new(Lakehouse::new(view_ctx.clone(), client).await?))
        } else {
            None
        };
        let source: Arc<dyn BatchSource> = match &lakehouse {
            Some(l) => l.clone(),
            None => Arc::new(DirectSource::new(view_ctx.clone())),
        };
        let views = all_views();
        let planner = Arc::new(Planner { views: views.clone(), source, memory_limit: config.memory_limit, limits: config.sql_limits });
        let admission = Arc::new(Admission::new(config.max_concurrent_queries.unwrap_or(2 * cores()), config.max_queued_queries.unwrap_or(16)));
        Ok(Self { pg, views, view_ctx, planner, admission, lakehouse, config })
    }

    pub fn view_context(&self) -> &ViewContext {
        &self.view_ctx
    }

    /// The metadata connection (retention deletes through it).
    pub fn metadata_client(&self) -> &tokio_postgres::Client {
        self.pg.client()
    }

    pub fn stats(&self) -> &crate::views::Stats {
        &self.view_ctx.stats
    }

    pub fn views(&self) -> &[Arc<dyn View>] {
        &self.views
    }

    /// Maintenance: builds (or finds fresh) the global partitions of `view` for every insert-time
    /// hour inside `[begin, end)`, so queries over those hours read Parquet only.
    pub async fn materialize_global(&self, view: &str, begin: DateTime<Utc>, end: DateTime<Utc>) -> Result<MaintenanceReport> {
        let lakehouse = self.lakehouse.as_ref().ok_or_else(|| anyhow!("materializing needs JIT partitions (jit_partitions)"))?;
        let view = self.views.iter().find(|v| v.name() == view).ok_or_else(|| anyhow!("no view named {view}"))?;
        if !matches!(view.source(), ViewSource::Blocks { .. }) || !view.has_global_instance() || !view.hourly_partitions() {
            bail!("{} has no global hourly partitions to materialize", view.name());
        }
        lakehouse.materialize_hours(view, &Instance::Global, begin, end).await
    }

    /// Queries holding a slot now.
    pub fn queries_running(&self) -> usize {
        self.admission.running_max - self.admission.slots.available_permits()
    }

    /// Queries waiting for a slot now.
    pub fn queries_waiting(&self) -> usize {
        self.admission.waiting.load(Ordering::Relaxed)
    }

    /// Waits until the partitions queries started building in the background are written.
    pub async fn idle(&self) {
        if let Some(l) = &self.lakehouse {
            l.idle().await;
        }
    }

    /// Runs `work` over the planned `sql` as a task of the query runtime, once admitted: the query
    /// timeout bounds the wait for a slot (then it is refused as overloaded), planning and `work`
    /// (then its task stops: everything it runs is dropped).
    fn spawn_query<T, F, Fut>(&self, sql: &str, options: &QueryOptions, work: F) -> QueryTask<T>
    where
        T: Send + 'static,
        F: FnOnce(DataFrame) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, QueryError>> + Send + 'static,
    {
        let (planner, admission) = (self.planner.clone(), self.admission.clone());
        let (sql, options) = (sql.to_string(), options.clone());
        let timeout = self.config.query_timeout;
        let handle = query_runtime().spawn(async move {
            let admitted = AtomicBool::new(false);
            let run = async {
                let _slot = admission.admit().await?;
                admitted.store(true, Ordering::Relaxed);
                let df = planner.plan(&sql, &options).await?;
                work(df).await
            };
            let Some(timeout) = timeout else { return run.await };
            match tokio::time::timeout(timeout, run).await {
                Ok(r) => r,
                Err(_) if !admitted.load(Ordering::Relaxed) => Err(QueryError::new(
                    QueryErrorKind::Overloaded,
                    format!("server busy: no query slot freed within the query timeout ({} ms); retry later", timeout.as_millis()),
                )),
                Err(_) => Err(QueryError::new(QueryErrorKind::Timeout, format!("query timed out after {} ms and was stopped", timeout.as_millis()))),
            }
        });
        QueryTask { handle }
    }

    /// Plans and runs `sql`; errors carry a [`QueryError`] (see [`QueryError::of`]).
    pub async fn query(&self, sql: &str, options: &QueryOptions) -> Result<QueryResult> {
        let task = self.spawn_query(sql, options, |df| async move {
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let task_ctx = Arc::new(df.task_ctx());
            let plan = cooperative(df.create_physical_plan().await?)?;
            let batches = datafusion::physical_plan::collect(plan, task_ctx).await?;
            Ok::<_, QueryError>(QueryResult { schema, batches })
        });
        Ok(task.join().await?)
    }

    /// Runs `sql` and hands the result out encoded batch by batch, so a large result never sits
    /// whole in memory. Errors (planning included) come with the first chunks; the query timeout
    /// bounds the whole stream, and dropping the stream (or its abort handle) stops the query.
    pub fn query_stream(&self, sql: &str, options: &QueryOptions, format: ResultFormat) -> ResultStream {
        use futures::StreamExt;
        // Two chunks ahead at most: a slow reader holds the query back rather than memory.
        let (tx, rx) = mpsc::channel(2);
        let task = self.spawn_query(sql, options, move |df| async move {
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let task_ctx = Arc::new(df.task_ctx());
            let plan = cooperative(df.create_physical_plan().await?)?;
            let mut batches = datafusion::physical_plan::execute_stream(plan, task_ctx)?;
            let mut encoder = Encoder::new(format, &schema)?;
            while let Some(batch) = batches.next().await {
                let bytes = encoder.batch(&batch?)?;
                if !bytes.is_empty() && tx.send(Piece::Bytes(bytes)).await.is_err() {
                    return Ok(()); // the reader is gone
                }
            }
            let _ = tx.send(Piece::Last(encoder.finish()?)).await;
            Ok::<(), QueryError>(())
        });
        ResultStream { rx, task: Some(task), done: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    ArrowIpc,
    /// A JSON array of row objects.
    Json,
}

enum Encoder {
    Ipc(datafusion::arrow::ipc::writer::StreamWriter<Vec<u8>>),
    Json { rows: usize },
}

fn encoding_error(e: datafusion::arrow::error::ArrowError) -> QueryError {
    QueryError::new(QueryErrorKind::Internal, format!("encoding the result: {e}"))
}

impl Encoder {
    fn new(format: ResultFormat, schema: &SchemaRef) -> Result<Self, QueryError> {
        Ok(match format {
            ResultFormat::ArrowIpc => Encoder::Ipc(datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema).map_err(encoding_error)?),
            ResultFormat::Json => Encoder::Json { rows: 0 },
        })
    }

    /// One batch's bytes (the IPC schema comes with the first).
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, QueryError> {
        match self {
            Encoder::Ipc(w) => {
                w.write(batch).map_err(encoding_error)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Encoder::Json { rows } => {
                if batch.num_rows() == 0 {
                    return Ok(Vec::new());
                }
                let mut w = json_writer(Vec::new());
                w.write(batch).map_err(encoding_error)?;
                w.finish().map_err(encoding_error)?;
                let mut out = w.into_inner();
                // `[rows]` of this batch: the first batch keeps its `[`, later ones continue with `,`.
                out.pop();
                if *rows > 0 {
                    out[0] = b',';
                }
                *rows += batch.num_rows();
                Ok(out)
            }
        }
    }

    /// The end marker (or the closing bracket).
    fn finish(&mut self) -> Result<Vec<u8>, QueryError> {
        match self {
            Encoder::Ipc(w) => {
                w.finish().map_err(encoding_error)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Encoder::Json { rows } => Ok(if *rows == 0 { b"[]".to_vec() } else { b"]".to_vec() }),
        }
    }
}

enum Piece {
    Bytes(Vec<u8>),
    Last(Vec<u8>),
}

/// A running query's result, encoded one batch at a time.
pub struct ResultStream {
    rx: mpsc::Receiver<Piece>,
    task: Option<QueryTask<()>>,
    done: bool,
}

impl ResultStream {
    /// Stops the query from anywhere; a pending or later `next_chunk` then fails as cancelled.
    pub fn abort_handle(&self) -> Option<tokio::task::AbortHandle> {
        self.task.as_ref().map(|t| t.abort_handle())
    }

    /// The next encoded bytes: the IPC schema comes with the first chunk, the end marker (or
    /// the closing bracket) with the last; `None` once everything was handed out.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, QueryError> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv().await {
            Some(Piece::Bytes(b)) => Ok(Some(b)),
            Some(Piece::Last(b)) => {
                self.done = true;
                Ok(Some(b))
            }
            // The task ended without the last piece: its error (timeout, SQL…) tells why.
            None => {
                self.done = true;
                match self.task.take() {
                    Some(task) => task.join().await.and(Err(QueryError::new(QueryErrorKind::Cancelled, "query cancelled"))),
                    None => Ok(None),
                }
            }
        }
    }
}

/// Arrow IPC stream bytes (schema, dictionaries, batches).
pub fn to_ipc_stream(result: &QueryResult) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)?;
        for b in &result.batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(out)
}

/// Writes a JSON array of row objects; SQL NULL stays a `null` field (by default arrow-json drops
/// the field, so a client could not tell NULL from a missing column).
fn json_writer(out: Vec<u8>) -> datafusion::arrow::json::ArrayWriter<Vec<u8>> {
    datafusion::arrow::json::WriterBuilder::new().with_explicit_nulls(true).build(out)
}

/// A JSON array of row objects.
pub fn to_json_rows(result: &QueryResult) -> Result<Vec<u8>> {
    let mut w = json_writer(Vec::new());
    for b in &result.batches {
        w.write(b)?;
    }
    w.finish()?;
    let out = w.into_inner();
    Ok(if out.is_empty() { b"[]".to_vec() } else { out })
}
