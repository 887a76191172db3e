//! One DataFusion session per query: global views as tables, `view_instance`, our functions.

use super::property_get::PropertyGet;
use super::view_instance::ViewInstanceFunction;
use super::view_table::{BatchSource, ViewTable};
use crate::time::TimeRange;
use crate::views::{Instance, View};
use anyhow::Result;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

/// The out-of-band time range of a query (`begin`/`end` next to the SQL, not inside it).
pub type QueryRange = Option<TimeRange>;

/// Builds the session a query runs in. `memory_limit` caps DataFusion's tracked memory.
pub fn make_session(
    views: &[Arc<dyn View>],
    range: QueryRange,
    source: Arc<dyn BatchSource>,
    memory_limit: Option<usize>,
) -> Result<SessionContext> {
    // Bigger batches than the default 8192: fewer per-batch costs in scans and aggregates.
    let config = SessionConfig::new().with_information_schema(true).with_batch_size(32 * 1024);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    for view in views.iter().filter(|v| v.has_global_instance()) {
        ctx.register_table(view.name(), Arc::new(ViewTable::new(view.clone(), Instance::Global, range, source.clone())))?;
    }
    ctx.register_udtf("view_instance", Arc::new(ViewInstanceFunction::new(views.to_vec(), range, source)));
    ctx.register_udf(ScalarUDF::from(PropertyGet::default()));
    super::jsonb::register_jsonb_functions(&ctx);
    super::histogram::register(&ctx);
    Ok(ctx)
}
