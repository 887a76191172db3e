//! Views with upstream's names and columns. One view per file, each implementing [`View`].

mod async_events;
mod block_source;
mod blocks;
mod columns;
mod descriptors;
mod log_entries;
mod log_stats;
mod measures;
mod processes;
mod row_filter;
mod streams;
mod thread_spans;

pub use async_events::AsyncEventsView;
pub use block_source::{
    build_rows, decode_block_into, decode_stream_blocks, events_hint, events_hint_of, load_listed_blocks, load_stream_blocks, rows_of_one_block, StreamBlocks,
};
pub use blocks::BlocksView;
pub use log_entries::LogEntriesView;
pub use log_stats::LogStatsView;
pub use measures::MeasuresView;
pub use processes::ProcessesView;
pub use row_filter::RowFilter;
pub use streams::StreamsView;
pub use thread_spans::ThreadSpansView;

use crate::metadata::{BlockFilter, MetadataSource};
use crate::time::TimeRange;
use anyhow::Result;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use std::sync::Arc;

/// Which slice of a view a table reads: everything, one process, or one stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instance {
    Global,
    Process(String),
    Stream(String),
}

impl Instance {
    /// The id recorded in the partitions table (`global` or the UUID).
    pub fn id(&self) -> &str {
        match self {
            Instance::Global => "global",
            Instance::Process(id) | Instance::Stream(id) => id,
        }
    }
}

/// What a view needs to read its sources.
#[derive(Clone)]
pub struct ViewContext {
    pub metadata: Arc<dyn MetadataSource>,
    pub store: Arc<dyn ObjectStore>,
    pub stats: Arc<Stats>,
}

/// Counters that tell tests and benchmarks what a query really did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Block payloads fetched from the object store and decoded.
    pub blocks_read: std::sync::atomic::AtomicU64,
    pub partitions_written: std::sync::atomic::AtomicU64,
    pub partitions_reused: std::sync::atomic::AtomicU64,
    /// Blocks left out of a query or build because their bytes or rows are inconsistent
    /// (corrupt payload, missing stream or process, foreign block); each is logged with its id.
    pub blocks_skipped: std::sync::atomic::AtomicU64,
}

/// Where a view's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewSource {
    /// Read from metadata at query time (cheap, always fresh).
    Metadata,
    /// Decoded from the blocks of streams with this tag; candidates for Parquet partitions.
    Blocks { tag: &'static str },
}

#[async_trait]
pub trait View: Send + Sync + std::fmt::Debug {
    /// The SQL name, also the first argument of `view_instance`.
    fn name(&self) -> &'static str;
    /// The Arrow schema of every batch.
    fn schema(&self) -> SchemaRef;
    /// Where rows come from.
    fn source(&self) -> ViewSource;
    /// Turns `view_instance`'s id argument into an instance, or says why it is refused.
    fn instance(&self, id: &str) -> Result<Instance>;
    /// Whether a bare table name (the global instance) is queryable.
    fn has_global_instance(&self) -> bool;
    /// Rows of `instance`, restricted to `range` when given (each view applies its own time rule).
    async fn make_batches(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>) -> Result<Vec<RecordBatch>>;
    /// [`View::make_batches`] projected to `projection` (column indices, all when `None`); views
    /// that can skip building the columns a query does not read override it.
    async fn make_projected(&self, ctx: &ViewContext, instance: &Instance, range: Option<TimeRange>, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        crate::sql::project_batches(self.make_batches(ctx, instance, range).await?, projection)
    }
    /// The timestamp columns the query range is matched against: `(begin, end)` of an overlap
    /// test; point-in-time views return the same column twice.
    fn time_columns(&self) -> (&'static str, &'static str) {
        ("time", "time")
    }
    /// Bumped when the partition schema changes: older partitions are then ignored and rebuilt.
    fn schema_version(&self) -> u8 {
        1
    }
    /// Partitions of this view cover one insert-time hour (`true`) or the whole instance (`false`,
    /// for views whose rows span blocks, like call trees).
    fn hourly_partitions(&self) -> bool {
        true
    }
    /// The columns whose filters [`View::rows_from_blocks`] tests while it decodes (a filter on
    /// another column saves no work there).
    fn filter_columns(&self) -> &'static [&'static str] {
        &[]
    }
    /// The column a partition's rows are ordered by before they are written (stably), so that row
    /// groups hold few of its values and a query filtering on it reads few of them: a metric's
    /// series, for instance.
    fn cluster_column(&self) -> Option<&'static str> {
        None
    }
    /// Each row comes from one event alone (not from its neighbours, like call trees or counts per
    /// minute), so a build may decode a stream's blocks in chunks on every core.
    fn rows_per_event(&self) -> bool {
        false
    }
    /// The blocks an instance reads.
    fn block_filter(&self, instance: &Instance, range: Option<TimeRange>) -> BlockFilter {
        let mut f = BlockFilter { range, ..Default::default() };
        match instance {
            Instance::Global => {}
            Instance::Process(p) => f.process_id = Some(p.clone()),
            Instance::Stream(s) => f.stream_id = Some(s.clone()),
        }
        if let (ViewSource::Blocks { tag }, false) = (self.source(), matches!(instance, Instance::Stream(_))) {
            f.tag = Some(tag.to_string());
        }
        f
    }
    /// The rows built from streams' blocks (block views only): those in `range`, less rows `filter`
    /// rejects (a view tests what it cheaply can, or nothing).
    fn rows_from_blocks(&self, _blocks: &[StreamBlocks], _range: Option<TimeRange>, _filter: &RowFilter) -> Result<RecordBatch> {
        anyhow::bail!("{} is not built from blocks", self.name())
    }
}

/// Every view this engine serves.
pub fn all_views() -> Vec<Arc<dyn View>> {
    vec![
        Arc::new(ProcessesView),
        Arc::new(StreamsView),
        Arc::new(BlocksView),
        Arc::new(LogEntriesView),
        Arc::new(LogStatsView),
        Arc::new(MeasuresView),
        Arc::new(ThreadSpansView),
        Arc::new(AsyncEventsView),
    ]
}

/// Refuses anything but a UUID, like upstream.
pub fn parse_uuid(view: &str, id: &str) -> Result<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| anyhow::anyhow!("view_instance('{view}', '{id}'): the instance id must be a UUID"))
}
