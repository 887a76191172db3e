//! The lakehouse's own tables in PostgreSQL, created idempotently, with a version row.

use anyhow::Result;
use tokio_postgres::Client;

pub const LAKEHOUSE_SCHEMA_VERSION: i32 = 1;

/// Creates `lakehouse_partitions` (upstream's name and core columns), `temporary_files` and
/// `lakehouse_migration`. Serialized by an advisory lock so concurrent engines can start together.
pub async fn migrate_lakehouse(client: &Client) -> Result<()> {
    client
        .batch_execute(
            "BEGIN;
             SELECT pg_advisory_xact_lock(7462811);
             CREATE TABLE IF NOT EXISTS lakehouse_partitions(
               view_set_name VARCHAR(255) NOT NULL,
               view_instance_id VARCHAR(255) NOT NULL,
               begin_insert_time TIMESTAMPTZ NOT NULL,
               end_insert_time TIMESTAMPTZ NOT NULL,
               min_event_time TIMESTAMPTZ,
               max_event_time TIMESTAMPTZ,
               updated TIMESTAMPTZ NOT NULL,
               file_path VARCHAR(2047),
               file_size BIGINT NOT NULL,
               file_schema_hash BYTEA NOT NULL,
               source_data_hash BYTEA NOT NULL,
               num_rows BIGINT NOT NULL);
             CREATE INDEX IF NOT EXISTS lakehouse_partitions_instance
               ON lakehouse_partitions(view_set_name, view_instance_id, begin_insert_time);
             CREATE INDEX IF NOT EXISTS lakehouse_partitions_end ON lakehouse_partitions(end_insert_time);
             CREATE TABLE IF NOT EXISTS temporary_files(
               file_path VARCHAR(2047) NOT NULL, file_size BIGINT NOT NULL, expiration TIMESTAMPTZ NOT NULL);
             CREATE TABLE IF NOT EXISTS lakehouse_migration(version INTEGER NOT NULL);
             INSERT INTO lakehouse_migration(version)
               SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM lakehouse_migration);
             COMMIT;",
        )
        .await?;
    Ok(())
}
