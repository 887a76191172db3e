//! A view instance as a DataFusion table.

use crate::time::TimeRange;
use crate::views::{Instance, View};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// What a query asks of a view instance's scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanRequest<'a> {
    pub range: Option<TimeRange>,
    /// View-schema column indices to return (all when `None`).
    pub projection: Option<&'a [usize]>,
    /// The query's filters on this table: a source may use them to skip data, never to decide rows.
    pub filters: &'a [Expr],
    /// Rows wanted at most (DataFusion passes it only when nothing above filters rows).
    pub limit: Option<usize>,
}

/// Produces a view instance's rows: straight from the sources, or through Parquet partitions.
#[async_trait]
pub trait BatchSource: Send + Sync + std::fmt::Debug {
    /// The rows of `instance` under `range`, projected to `projection` (column indices) when given.
    async fn batches(
        &self,
        view: &Arc<dyn View>,
        instance: &Instance,
        range: Option<TimeRange>,
        projection: Option<&[usize]>,
    ) -> anyhow::Result<Vec<RecordBatch>>;

    /// The plan that scans `instance`; by default its rows in memory.
    async fn scan(&self, state: &dyn Session, view: &Arc<dyn View>, instance: &Instance, scan: &ScanRequest<'_>) -> anyhow::Result<Arc<dyn ExecutionPlan>> {
        memory_scan(state, view.schema(), scan.projection, self.batches(view, instance, scan.range, scan.projection).await?)
    }
}

/// Batches in memory as a plan with one partition per core (batches dealt round-robin), so
/// aggregates and filters above run in parallel.
pub fn memory_scan(state: &dyn Session, schema: SchemaRef, projection: Option<&[usize]>, batches: Vec<RecordBatch>) -> anyhow::Result<Arc<dyn ExecutionPlan>> {
    let schema = match projection {
        Some(p) => Arc::new(schema.project(p)?),
        None => schema,
    };
    let n = state.config().target_partitions().min(batches.len()).max(1);
    let mut partitions = vec![Vec::new(); n];
    for (i, b) in batches.into_iter().enumerate() {
        partitions[i % n].push(b);
    }
    Ok(MemorySourceConfig::try_new_exec(&partitions, schema, None)?)
}

/// Projects full-schema batches (sources that cannot read fewer columns).
pub fn project_batches(batches: Vec<RecordBatch>, projection: Option<&[usize]>) -> anyhow::Result<Vec<RecordBatch>> {
    match projection {
        None => Ok(batches),
        Some(p) => batches.iter().map(|b| Ok(b.project(p)?)).collect(),
    }
}

#[derive(Debug)]
pub struct ViewTable {
    view: Arc<dyn View>,
    instance: Instance,
    range: Option<TimeRange>,
    source: Arc<dyn BatchSource>,
}

impl ViewTable {
    pub fn new(view: Arc<dyn View>, instance: Instance, range: Option<TimeRange>, source: Arc<dyn BatchSource>) -> Self {
        Self { view, instance, range, source }
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.view.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    /// Filters are offered to the source for skipping data (partition row groups); DataFusion
    /// still applies them to every row.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let request = ScanRequest { range: self.range, projection: projection.map(|p| p.as_slice()), filters, limit };
        self.source
            .scan(state, &self.view, &self.instance, &request)
            .await
            .map_err(|e| DataFusionError::External(format!("reading {}('{}'): {e:#}", self.view.name(), self.instance.id()).into()))
    }
}
