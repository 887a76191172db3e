//! Partitions as a DataFusion Parquet scan: the view's time rule applied exactly, the query's
//! filters used to prune row groups. Also the same time rule over rows in memory.

use super::PartitionFile;
use crate::sql::{memory_scan, project_batches, ScanRequest};
use crate::time::TimeRange;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::Expr;
use crate::views::View;
use anyhow::Result;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{col, lit};
use datafusion::physical_expr::{conjunction, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExecBuilder;
use datafusion::physical_plan::ExecutionPlan;
use object_store::ObjectStore;
use std::sync::Arc;

/// The URL the lakehouse's object store is registered under in each query's runtime.
const STORE_URL: &str = "micromegas://lakehouse";

/// Parquet footers (file metadata) kept across queries: partition files are never rewritten (a
/// rebuild writes a new path), so a footer read once stays true.
pub fn footer_cache() -> Arc<FileMetadataCache> {
    Arc::new(DefaultCache::new(FOOTER_CACHE_BYTES).with_name("micromegas partition footers"))
}

const FOOTER_CACHE_BYTES: usize = 64 << 20;

pub fn parquet_scan(
    state: &dyn Session,
    store: Arc<dyn ObjectStore>,
    footers: &Arc<FileMetadataCache>,
    view: &dyn View,
    files: Vec<PartitionFile>,
    scan: &ScanRequest<'_>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = view.schema();
    if files.is_empty() {
        let out = match scan.projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema,
        };
        return Ok(Arc::new(EmptyExec::new(out)));
    }
    let url = ObjectStoreUrl::parse(STORE_URL)?;
    state.runtime_env().register_object_store(url.as_ref(), store.clone());

    let (b_col, e_col) = view.time_columns();
    let range_rule = time_rule(view, scan.range);

    // Pruning only: a filter DataFusion cannot turn into a physical expression is just not used.
    let full = DFSchema::try_from(schema.as_ref().clone())?;
    let pruning: Vec<Arc<dyn PhysicalExpr>> =
        scan.filters.iter().chain(range_rule.as_ref()).filter_map(|e| state.create_physical_expr(e.clone(), &full).ok()).collect();
    let mut source = ParquetSource::new(schema.clone())
        .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(store, footers.clone())));
    if !pruning.is_empty() {
        source = source.with_predicate(conjunction(pruning));
    }

    // Columns read: the requested ones plus, under a range, the time columns the rule needs.
    let read: Option<Vec<usize>> = scan.projection.map(|p| {
        let mut cols = p.to_vec();
        if range_rule.is_some() {
            cols.extend([schema.index_of(b_col), schema.index_of(e_col)].into_iter().flatten());
        }
        cols.sort_unstable();
        cols.dedup();
        cols
    });

    // Files dealt over the cores by size; DataFusion may split large ones further by byte range.
    let n = state.config().target_partitions().clamp(1, files.len());
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); n];
    let mut by_size = files;
    by_size.sort_by(|a, b| b.size.cmp(&a.size));
    for f in by_size {
        let g = groups.iter_mut().min_by_key(|g| g.0).expect("n >= 1");
        g.0 += f.size;
        g.1.push(PartitionedFile::new(f.path, f.size));
    }
    let mut config = FileScanConfigBuilder::new(url, Arc::new(source))
        .with_file_groups(groups.into_iter().map(|g| FileGroup::new(g.1)).collect())
        .with_projection_indices(read.clone())?;
    if range_rule.is_none() {
        config = config.with_limit(scan.limit);
    }
    let plan: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config.build());
    match range_rule {
        None => Ok(plan),
        Some(rule) => filter_projected(state, view, plan, rule, scan.projection),
    }
}

/// The view's time rule under `range`: rows whose `[begin, end]` overlaps it.
fn time_rule(view: &dyn View, range: Option<TimeRange>) -> Option<Expr> {
    let schema = view.schema();
    let (b_col, e_col) = view.time_columns();
    range.map(|r| {
        let ts = |name: &str, ns: i64| {
            let tz = match schema.field_with_name(name).map(|f| f.data_type()) {
                Ok(DataType::Timestamp(_, tz)) => tz.clone(),
                _ => None,
            };
            lit(ScalarValue::TimestampNanosecond(Some(ns), tz))
        };
        col(b_col).lt_eq(ts(b_col, r.end_ns)).and(col(e_col).gt_eq(ts(e_col, r.begin_ns)))
    })
}

/// `plan` (some of the view's columns) filtered by `rule`, then projected to `projection`.
fn filter_projected(state: &dyn Session, view: &dyn View, plan: Arc<dyn ExecutionPlan>, rule: Expr, projection: Option<&[usize]>) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = view.schema();
    let read_schema: Schema = plan.schema().as_ref().clone();
    let predicate = state.create_physical_expr(rule, &DFSchema::try_from(read_schema.clone())?)?;
    // Positions of the requested columns among those read.
    let output: Option<Vec<usize>> =
        projection.map(|p| p.iter().map(|i| read_schema.index_of(schema.field(*i).name())).collect::<Result<_, _>>()).transpose()?;
    Ok(Arc::new(FilterExecBuilder::new(predicate, plan).apply_projection(output)?.build()?))
}

/// Rows of whole slices in memory (every column of the view), as the scan asks for them: under
/// the view's time rule for its range, projected.
pub fn memory_in_range(state: &dyn Session, view: &dyn View, batches: Vec<RecordBatch>, scan: &ScanRequest<'_>) -> Result<Arc<dyn ExecutionPlan>> {
    match time_rule(view, scan.range) {
        None => memory_scan(state, view.schema(), scan.projection, project_batches(batches, scan.projection)?),
        Some(rule) => filter_projected(state, view, memory_scan(state, view.schema(), None, batches)?, rule, scan.projection),
    }
}
