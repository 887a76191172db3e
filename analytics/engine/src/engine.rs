//! The engine a Node process opens once: metadata, object store, views, and query execution.

use crate::lakehouse::{Lakehouse, MaintenanceReport};
use crate::metadata::{MetadataSource, PgMetadata};
use crate::sql::{make_session, BatchSource};
use crate::store::open_object_store;
use crate::time::TimeRange;
use crate::views::{all_views, Instance, View, ViewContext, ViewSource};
use chrono::{DateTime, Utc};
use anyhow::{anyhow, bail, Result};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;
use std::time::Duration;

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

pub struct Engine {
    pg: Arc<PgMetadata>,
    views: Vec<Arc<dyn View>>,
    view_ctx: ViewContext,
    source: Arc<dyn BatchSource>,
    /// The same object as `source` when JIT partitions are on.
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
        Ok(Self { pg, views: all_views(), view_ctx, source, lakehouse, config })
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

    /// Waits until the partitions queries started building in the background are written.
    pub async fn idle(&self) {
        if let Some(l) = &self.lakehouse {
            l.idle().await;
        }
    }

    /// Plans `sql` under the query's range and limit.
    async fn plan(&self, sql: &str, options: &QueryOptions) -> Result<datafusion::dataframe::DataFrame> {
        let ctx = make_session(&self.views, options.range, self.source.clone(), self.config.memory_limit)?;
        let mut df = ctx.sql(sql).await?;
        if let Some(limit) = options.limit {
            df = df.limit(0, Some(limit))?;
        }
        Ok(df)
    }

    fn timed_out(&self) -> anyhow::Error {
        anyhow!("query timed out after {} ms", self.config.query_timeout.map_or(0, |t| t.as_millis()))
    }

    /// Plans and runs `sql`; errors carry the engine's own message.
    pub async fn query(&self, sql: &str, options: &QueryOptions) -> Result<QueryResult> {
        let run = async {
            let df = self.plan(sql, options).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            Ok::<_, anyhow::Error>(QueryResult { schema, batches })
        };
        match self.config.query_timeout {
            Some(t) => tokio::time::timeout(t, run).await.map_err(|_| self.timed_out())?,
            None => run.await,
        }
    }

    /// Runs `sql` and hands the result out encoded batch by batch, so a large result never sits
    /// whole in memory. The query timeout bounds the whole stream.
    pub async fn query_stream(&self, sql: &str, options: &QueryOptions, format: ResultFormat) -> Result<ResultStream> {
        let deadline = self.config.query_timeout.map(|t| tokio::time::Instant::now() + t);
        let start = async {
            let df = self.plan(sql, options).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            Ok::<_, anyhow::Error>((schema, df.execute_stream().await?))
        };
        let (schema, batches) = match deadline {
            Some(d) => tokio::time::timeout_at(d, start).await.map_err(|_| self.timed_out())??,
            None => start.await?,
        };
        let encoder = match format {
            ResultFormat::ArrowIpc => Encoder::Ipc(datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?),
            ResultFormat::Json => Encoder::Json { rows: 0 },
        };
        Ok(ResultStream { batches, encoder, deadline, timeout: self.timed_out().to_string(), done: false })
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

/// A running query's result, encoded one batch at a time.
pub struct ResultStream {
    batches: datafusion::execution::SendableRecordBatchStream,
    encoder: Encoder,
    deadline: Option<tokio::time::Instant>,
    timeout: String,
    done: bool,
}

impl ResultStream {
    /// The next encoded bytes: the IPC schema comes with the first chunk, the end marker (or
    /// the closing bracket) with the last; `None` once everything was handed out.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        use futures::StreamExt;
        if self.done {
            return Ok(None);
        }
        let next = match self.deadline {
            Some(d) => tokio::time::timeout_at(d, self.batches.next()).await.map_err(|_| anyhow!("{}", self.timeout))?,
            None => self.batches.next().await,
        };
        match (next.transpose()?, &mut self.encoder) {
            (Some(batch), Encoder::Ipc(w)) => {
                w.write(&batch)?;
                Ok(Some(std::mem::take(w.get_mut())))
            }
            (Some(batch), Encoder::Json { rows }) => {
                if batch.num_rows() == 0 {
                    return Ok(Some(Vec::new()));
                }
                let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
                w.write(&batch)?;
                w.finish()?;
                let mut out = w.into_inner();
                // `[rows]` of this batch: the first batch keeps its `[`, later ones continue with `,`.
                out.pop();
                if *rows > 0 {
                    out[0] = b',';
                }
                *rows += batch.num_rows();
                Ok(Some(out))
            }
            (None, Encoder::Ipc(w)) => {
                self.done = true;
                w.finish()?;
                Ok(Some(std::mem::take(w.get_mut())))
            }
            (None, Encoder::Json { rows }) => {
                self.done = true;
                Ok(Some(if *rows == 0 { b"[]".to_vec() } else { b"]".to_vec() }))
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

/// A JSON array of row objects.
pub fn to_json_rows(result: &QueryResult) -> Result<Vec<u8>> {
    let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    for b in &result.batches {
        w.write(b)?;
    }
    w.finish()?;
    let out = w.into_inner();
    Ok(if out.is_empty() { b"[]".to_vec() } else { out })
}
