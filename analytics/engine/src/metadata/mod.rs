//! The ingestion side's metadata (`processes`, `streams`, `blocks`), read through one trait so the
//! engine does not care whether it lives in PostgreSQL or was handed in by the Node process.

mod postgres;
pub use postgres::PgMetadata;

use crate::time::TimeRange;
use anyhow::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct ProcessRow {
    pub process_id: String,
    pub exe: String,
    pub username: String,
    pub realname: String,
    pub computer: String,
    pub distro: String,
    pub cpu_brand: String,
    pub tsc_frequency: i64,
    pub start_time: DateTime<Utc>,
    pub start_ticks: i64,
    pub insert_time: DateTime<Utc>,
    pub parent_process_id: Option<String>,
    /// JSON object text `{"key": "value", …}`.
    pub properties: String,
    /// Derived from the process's blocks; `None` when it has none yet.
    pub last_update_time: Option<DateTime<Utc>>,
    pub last_block_end_ticks: Option<i64>,
    pub last_block_end_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct StreamRow {
    pub stream_id: String,
    pub process_id: String,
    pub dependencies_metadata: Vec<u8>,
    pub objects_metadata: Vec<u8>,
    pub tags: Vec<String>,
    pub properties: String,
    pub insert_time: DateTime<Utc>,
    pub format: String,
    pub last_update_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct BlockRow {
    pub block_id: String,
    pub stream_id: String,
    pub process_id: String,
    pub begin_time: DateTime<Utc>,
    pub begin_ticks: i64,
    pub end_time: DateTime<Utc>,
    pub end_ticks: i64,
    pub nb_objects: i32,
    pub object_offset: i64,
    pub payload_size: i64,
    pub insert_time: DateTime<Utc>,
    /// Object holding the payload; `None` means upstream's `blobs/<process>/<stream>/<block>`.
    pub payload_object: Option<String>,
    pub payload_offset: Option<i64>,
}

/// Blocks of one insert-time hour `[hour, hour + 1 h)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourSummary {
    pub hour: DateTime<Utc>,
    pub blocks: i64,
    pub objects: i64,
}

/// Which blocks a view needs.
#[derive(Debug, Clone, Default)]
pub struct BlockFilter {
    pub process_id: Option<String>,
    pub stream_id: Option<String>,
    /// Only blocks of streams carrying this tag.
    pub tag: Option<String>,
    /// Only blocks whose `[begin_time, end_time]` overlaps this range.
    pub range: Option<TimeRange>,
    /// Only blocks with `begin <= insert_time < end` (a partition's insert-time slice).
    pub insert_range: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

#[async_trait]
pub trait MetadataSource: Send + Sync {
    /// Processes, with the derived last-block columns, alive during `range` when given.
    async fn processes(&self, range: Option<TimeRange>) -> Result<Vec<ProcessRow>>;
    async fn process(&self, process_id: &str) -> Result<Option<ProcessRow>>;
    async fn streams(&self, process_id: Option<&str>, range: Option<TimeRange>) -> Result<Vec<StreamRow>>;
    async fn stream(&self, stream_id: &str) -> Result<Option<StreamRow>>;
    /// Blocks matching the filter, ordered by stream then `begin_ticks`.
    async fn blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockRow>>;
    /// The matching blocks summed per insert-time hour, in hour order: what a partition's
    /// freshness depends on, without listing every block.
    async fn block_hours(&self, filter: &BlockFilter) -> Result<Vec<HourSummary>>;
}
