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
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// Produces a view instance's rows: straight from the sources, or through Parquet partitions.
/// Batches have the view's schema projected to `projection` (column indices), when given.
#[async_trait]
pub trait BatchSource: Send + Sync + std::fmt::Debug {
    async fn batches(
        &self,
        view: &Arc<dyn View>,
        instance: &Instance,
        range: Option<TimeRange>,
        projection: Option<&[usize]>,
    ) -> anyhow::Result<Vec<RecordBatch>>;
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

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batches = self
            .source
            .batches(&self.view, &self.instance, self.range, projection.map(|p| p.as_slice()))
            .await
            .map_err(|e| DataFusionError::External(format!("reading {}('{}'): {e:#}", self.view.name(), self.instance.id()).into()))?;
        let schema = match projection {
            Some(p) => Arc::new(self.schema().project(p)?),
            None => self.schema(),
        };
        // One partition per core (batches dealt round-robin): aggregates and filters run in parallel.
        let n = state.config().target_partitions().min(batches.len()).max(1);
        let mut partitions = vec![Vec::new(); n];
        for (i, b) in batches.into_iter().enumerate() {
            partitions[i % n].push(b);
        }
        Ok(MemorySourceConfig::try_new_exec(&partitions, schema, None)?)
    }
}
