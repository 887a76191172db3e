//! Retention and tail sampling: what is deleted, and only that.
//!
//! - Blocks older than `max_age` (by insert time) go, with their payload objects; streams and
//!   processes left without blocks go too, and partitions whose insert slice ended before the
//!   cutoff are retired.
//! - Tail sampling: `cpu` blocks older than `cpu_max_age` go early unless their process is kept:
//!   `keep_processes_sql` (a query returning `process_id`, by default the processes that logged
//!   an error or fatal) runs over `[now - window, now]`.
//! - Retired and replaced Parquet files wait in `temporary_files` until their expiration.

use crate::engine::{to_json_rows, Engine, QueryOptions};
use crate::time::TimeRange;
use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeSet;
use tokio_postgres::{Client, Row};

#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    pub max_age: TimeDelta,
    pub cpu_max_age: Option<TimeDelta>,
    pub keep_processes_sql: String,
    pub window: TimeDelta,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            max_age: TimeDelta::days(90),
            cpu_max_age: None,
            keep_processes_sql: "SELECT DISTINCT process_id FROM log_entries WHERE level <= 2".into(),
            window: TimeDelta::hours(1),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    pub blocks_expired: u64,
    pub cpu_blocks_sampled_out: u64,
    pub streams_deleted: u64,
    pub processes_deleted: u64,
    pub partitions_retired: u64,
    pub files_deleted: u64,
}

/// Deletes the payload objects of deleted block rows (`block_id, process_id, stream_id,
/// payload_object`); a packed object goes only once no remaining block points into it.
async fn delete_payloads(client: &Client, store: &dyn ObjectStore, rows: &[Row]) -> Result<u64> {
    let mut deleted = 0;
    let mut packed = BTreeSet::new();
    for r in rows {
        let object: Option<String> = r.get(3);
        match object {
            Some(o) => {
                packed.insert(o);
            }
            None => {
                let key = format!("blobs/{}/{}/{}", r.get::<_, String>(1), r.get::<_, String>(2), r.get::<_, String>(0));
                match store.delete(&Path::from(key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => return Err(e).with_context(|| format!("deleting {key}")),
                }
            }
        }
    }
    for o in packed {
        let still_used = client.query_opt("SELECT 1 FROM blocks WHERE payload_object = $1 LIMIT 1", &[&o]).await?.is_some();
        if !still_used {
            match store.delete(&Path::from(o.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => return Err(e).with_context(|| format!("deleting {o}")),
            }
        }
    }
    Ok(deleted)
}

const RETURNING: &str = "RETURNING b.block_id::text, b.process_id::text, b.stream_id::text, b.payload_object";

pub async fn apply_retention(engine: &Engine, policy: &RetentionPolicy, now: DateTime<Utc>) -> Result<RetentionReport> {
    let client = engine.metadata_client();
    let store = engine.view_context().store.clone();
    let has_payload_object = client
        .query_opt("SELECT 1 FROM information_schema.columns WHERE table_name = 'blocks' AND column_name = 'payload_object'", &[])
        .await?
        .is_some();
    let returning = if has_payload_object { RETURNING.to_string() } else { RETURNING.replace("b.payload_object", "NULL::text") };
    let mut report = RetentionReport::default();

    if let Some(cpu_age) = policy.cpu_max_age {
        let range = TimeRange::new(now - policy.window, now);
        let kept = engine
            .query(&policy.keep_processes_sql, &QueryOptions { range: Some(range), limit: None })
            .await
            .context("running the tail-sampling keep query")?;
        let kept: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(&to_json_rows(&kept)?)?
            .iter()
            .filter_map(|r| r["process_id"].as_str().map(str::to_owned))
            .collect();
        let rows = client
            .query(
                &format!(
                    "DELETE FROM blocks b USING streams s
                     WHERE b.stream_id = s.stream_id AND 'cpu' = ANY(s.tags) AND b.insert_time <= $1
                       AND NOT (b.process_id::text = ANY($2)) {returning}"
                ),
                &[&(now - cpu_age), &kept],
            )
            .await?;
        report.cpu_blocks_sampled_out = rows.len() as u64;
        // Partitions built from the deleted blocks would keep their rows: retire them.
        let streams: Vec<String> = rows.iter().map(|r| r.get::<_, String>(2)).collect::<BTreeSet<_>>().into_iter().collect();
        let processes: Vec<String> = rows.iter().map(|r| r.get::<_, String>(1)).collect::<BTreeSet<_>>().into_iter().collect();
        report.partitions_retired += retire(
            client,
            now,
            "(view_set_name = 'thread_spans' AND view_instance_id = ANY($1)) OR (view_set_name = 'async_events' AND view_instance_id = ANY($2))",
            &[&streams, &processes],
        )
        .await?;
        report.files_deleted += delete_payloads(client, store.as_ref(), &rows).await?;
    }

    let cutoff = now - policy.max_age;
    let rows = client.query(&format!("DELETE FROM blocks b WHERE b.insert_time <= $1 {returning}"), &[&cutoff]).await?;
    report.blocks_expired = rows.len() as u64;
    report.files_deleted += delete_payloads(client, store.as_ref(), &rows).await?;
    // Streams and processes registered before the cutoff that have no block left.
    report.streams_deleted = client
        .execute(
            "DELETE FROM streams s WHERE s.insert_time <= $1 AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.stream_id = s.stream_id)",
            &[&cutoff],
        )
        .await?;
    report.processes_deleted = client
        .execute(
            "DELETE FROM processes p WHERE p.insert_time <= $1 AND NOT EXISTS (SELECT 1 FROM streams s WHERE s.process_id = p.process_id)",
            &[&cutoff],
        )
        .await?;
    report.partitions_retired += retire(client, now, "end_insert_time <= $1", &[&cutoff]).await?;
    // Whole-instance partitions (thread spans) end in the far future: retire them with their instance.
    report.partitions_retired += retire(
        client,
        now,
        "view_instance_id <> 'global'
         AND view_instance_id NOT IN (SELECT stream_id::text FROM streams)
         AND view_instance_id NOT IN (SELECT process_id::text FROM processes)",
        &[],
    )
    .await?;

    let expired = client.query("DELETE FROM temporary_files WHERE expiration <= $1 RETURNING file_path", &[&now]).await?;
    for r in &expired {
        let path: String = r.get(0);
        match store.delete(&Path::from(path.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => report.files_deleted += 1,
            Err(e) => return Err(e).with_context(|| format!("deleting {path}")),
        }
    }
    Ok(report)
}

/// Moves matching partitions' files to `temporary_files` (expiring at `now`) and deletes the rows.
async fn retire(client: &Client, now: DateTime<Utc>, condition: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<u64> {
    let rows = client
        .query(&format!("DELETE FROM lakehouse_partitions WHERE {condition} RETURNING file_path, file_size"), params)
        .await?;
    for r in &rows {
        let path: Option<String> = r.get(0);
        if let Some(p) = path {
            client
                .execute("INSERT INTO temporary_files(file_path, file_size, expiration) VALUES ($1, $2, $3)", &[&p, &r.get::<_, i64>(1), &now])
                .await?;
        }
    }
    Ok(rows.len() as u64)
}
