//! Metadata in PostgreSQL, in upstream's schema plus our `blocks.payload_object/payload_offset`.

use super::{BlockFilter, BlockRow, HourSummary, MetadataSource, ProcessRow, StreamRow};
use crate::time::TimeRange;
use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

pub struct PgMetadata {
    client: Client,
    has_payload_object: bool,
}

/// `micromegas_property[]` as a JSON object text, so no composite-type decoding is needed.
const PROPS: &str = "COALESCE((SELECT jsonb_object_agg(p.key, p.value) FROM unnest({col}) p), '{}'::jsonb)::text";

fn props(col: &str) -> String {
    PROPS.replace("{col}", col)
}

impl PgMetadata {
    /// Connects; the connection task runs on the current Tokio runtime.
    pub async fn connect(url: &str) -> Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .with_context(|| "connecting to PostgreSQL (MICROMEGAS_SQL_CONNECTION_STRING)")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self::from_client(client).await
    }

    pub async fn from_client(client: Client) -> Result<Self> {
        let has_payload_object = client
            .query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_name = 'blocks' AND column_name = 'payload_object'",
                &[],
            )
            .await?
            .is_some();
        Ok(Self { client, has_payload_object })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn process_sql(&self, where_clause: &str) -> String {
        format!(
            "SELECT p.process_id::text, p.exe, p.username, p.realname, p.computer, p.distro, p.cpu_brand,
                    p.tsc_frequency, p.start_time, p.start_ticks, p.insert_time, p.parent_process_id::text,
                    {props}, b.last_update_time, b.last_block_end_ticks, b.last_block_end_time
             FROM processes p
             LEFT JOIN LATERAL (
                 SELECT max(insert_time) AS last_update_time,
                        (array_agg(end_ticks ORDER BY end_time DESC))[1] AS last_block_end_ticks,
                        max(end_time) AS last_block_end_time
                 FROM blocks WHERE blocks.process_id = p.process_id) b ON true
             {where_clause}
             ORDER BY p.start_time, p.process_id",
            props = props("p.properties")
        )
    }

    fn stream_sql(&self, where_clause: &str) -> String {
        format!(
            "SELECT s.stream_id::text, s.process_id::text, s.dependencies_metadata, s.objects_metadata, s.tags,
                    {props}, s.insert_time, s.format,
                    (SELECT max(insert_time) FROM blocks WHERE blocks.stream_id = s.stream_id) AS last_update_time
             FROM streams s {where_clause}
             ORDER BY s.insert_time, s.stream_id",
            props = props("s.properties")
        )
    }
}

fn process_from_row(r: &Row) -> Result<ProcessRow> {
    Ok(ProcessRow {
        process_id: r.try_get(0)?,
        exe: r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
        username: r.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
        realname: r.try_get::<_, Option<String>>(3)?.unwrap_or_default(),
        computer: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
        distro: r.try_get::<_, Option<String>>(5)?.unwrap_or_default(),
        cpu_brand: r.try_get::<_, Option<String>>(6)?.unwrap_or_default(),
        tsc_frequency: r.try_get::<_, Option<i64>>(7)?.unwrap_or(0),
        start_time: r.try_get(8)?,
        start_ticks: r.try_get::<_, Option<i64>>(9)?.unwrap_or(0),
        insert_time: r.try_get(10)?,
        parent_process_id: r.try_get(11)?,
        properties: r.try_get(12)?,
        last_update_time: r.try_get(13)?,
        last_block_end_ticks: r.try_get(14)?,
        last_block_end_time: r.try_get(15)?,
    })
}

fn stream_from_row(r: &Row) -> Result<StreamRow> {
    Ok(StreamRow {
        stream_id: r.try_get(0)?,
        process_id: r.try_get(1)?,
        dependencies_metadata: r.try_get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
        objects_metadata: r.try_get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
        tags: r.try_get::<_, Option<Vec<String>>>(4)?.unwrap_or_default(),
        properties: r.try_get(5)?,
        insert_time: r.try_get(6)?,
        format: r.try_get(7)?,
        last_update_time: r.try_get(8)?,
    })
}

#[async_trait]
impl MetadataSource for PgMetadata {
    async fn processes(&self, range: Option<TimeRange>) -> Result<Vec<ProcessRow>> {
        let rows = match range {
            // Alive during the window: inserted before its end, updated after its beginning.
            Some(r) => {
                let sql = self.process_sql("WHERE p.insert_time <= $1 AND COALESCE(b.last_update_time, p.insert_time) >= $2");
                self.client.query(&sql, &[&r.end(), &r.begin()]).await?
            }
            None => self.client.query(&self.process_sql(""), &[]).await?,
        };
        rows.iter().map(process_from_row).collect()
    }

    async fn process(&self, process_id: &str) -> Result<Option<ProcessRow>> {
        let sql = self.process_sql("WHERE p.process_id = $1::text::uuid");
        let rows = self.client.query(&sql, &[&process_id]).await?;
        rows.first().map(process_from_row).transpose()
    }

    async fn streams(&self, process_id: Option<&str>, range: Option<TimeRange>) -> Result<Vec<StreamRow>> {
        let mut clauses = Vec::new();
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(p) = process_id {
            params.push(Box::new(p.to_string()));
            clauses.push(format!("s.process_id = ${}::text::uuid", params.len()));
        }
        if let Some(r) = range {
            params.push(Box::new(r.end()));
            clauses.push(format!("s.insert_time <= ${}", params.len()));
            params.push(Box::new(r.begin()));
            clauses.push(format!(
                "COALESCE((SELECT max(insert_time) FROM blocks WHERE blocks.stream_id = s.stream_id), s.insert_time) >= ${}",
                params.len()
            ));
        }
        let where_clause = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&self.stream_sql(&where_clause), &refs).await?;
        rows.iter().map(stream_from_row).collect()
    }

    async fn stream(&self, stream_id: &str) -> Result<Option<StreamRow>> {
        let rows = self.client.query(&self.stream_sql("WHERE s.stream_id = $1::text::uuid"), &[&stream_id]).await?;
        rows.first().map(stream_from_row).transpose()
    }

    async fn blocks(&self, f: &BlockFilter) -> Result<Vec<BlockRow>> {
        let (where_clause, params) = block_where(f);
        let payload_cols = if self.has_payload_object { "b.payload_object, b.payload_offset" } else { "NULL::text, NULL::bigint" };
        let sql = format!(
            "SELECT b.block_id::text, b.stream_id::text, b.process_id::text, b.begin_time, b.begin_ticks, b.end_time,
                    b.end_ticks, b.nb_objects, b.object_offset, b.payload_size, b.insert_time, {payload_cols}
             FROM blocks b {where_clause}
             ORDER BY b.stream_id, b.begin_ticks, b.object_offset"
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&sql, &refs).await.map_err(|e| anyhow!("listing blocks: {e}"))?;
        rows.iter()
            .map(|r| {
                Ok(BlockRow {
                    block_id: r.try_get(0)?,
                    stream_id: r.try_get(1)?,
                    process_id: r.try_get(2)?,
                    begin_time: r.try_get(3)?,
                    begin_ticks: r.try_get(4)?,
                    end_time: r.try_get(5)?,
                    end_ticks: r.try_get(6)?,
                    nb_objects: r.try_get(7)?,
                    object_offset: r.try_get(8)?,
                    payload_size: r.try_get(9)?,
                    insert_time: r.try_get(10)?,
                    payload_object: r.try_get(11)?,
                    payload_offset: r.try_get(12)?,
                })
            })
            .collect()
    }

    async fn block_hours(&self, f: &BlockFilter) -> Result<Vec<HourSummary>> {
        let (where_clause, params) = block_where(f);
        let sql = format!(
            "SELECT date_trunc('hour', b.insert_time AT TIME ZONE 'UTC') AS h, count(*), COALESCE(sum(b.nb_objects), 0)::bigint
             FROM blocks b {where_clause} GROUP BY h ORDER BY h"
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&sql, &refs).await.map_err(|e| anyhow!("summing blocks per hour: {e}"))?;
        rows.iter()
            .map(|r| {
                let hour: chrono::NaiveDateTime = r.try_get(0)?;
                Ok(HourSummary { hour: hour.and_utc(), blocks: r.try_get(1)?, objects: r.try_get(2)? })
            })
            .collect()
    }
}

/// The WHERE clause (over `blocks b`) and its parameters for a filter.
fn block_where(f: &BlockFilter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut clauses = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(p) = &f.process_id {
        params.push(Box::new(p.clone()));
        clauses.push(format!("b.process_id = ${}::text::uuid", params.len()));
    }
    if let Some(s) = &f.stream_id {
        params.push(Box::new(s.clone()));
        clauses.push(format!("b.stream_id = ${}::text::uuid", params.len()));
    }
    if let Some(t) = &f.tag {
        params.push(Box::new(t.clone()));
        clauses.push(format!("b.stream_id IN (SELECT stream_id FROM streams WHERE ${} = ANY(tags))", params.len()));
    }
    if let Some(r) = f.range {
        params.push(Box::new(r.end()));
        clauses.push(format!("b.begin_time <= ${}", params.len()));
        params.push(Box::new(r.begin()));
        clauses.push(format!("b.end_time >= ${}", params.len()));
    }
    if let Some((b, e)) = f.insert_range {
        params.push(Box::new(b));
        clauses.push(format!("b.insert_time >= ${}", params.len()));
        params.push(Box::new(e));
        clauses.push(format!("b.insert_time < ${}", params.len()));
    }
    let where_clause = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    (where_clause, params)
}
