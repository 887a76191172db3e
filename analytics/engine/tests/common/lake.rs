//! A throwaway lake for end-to-end tests: a fresh database on the test PostgreSQL
//! (`MICROMEGAS_TEST_PG_URL`) with the ingestion schema, and a temporary `file://` object store.

use chrono::{DateTime, TimeZone, Utc};
use micromegas_analytics::engine::{Engine, EngineConfig, QueryOptions, QueryResult};
use micromegas_analytics::time::TimeRange;
use std::path::PathBuf;
use tokio_postgres::{Client, NoTls};

pub struct TestLake {
    pub client: Client,
    pub url: String,
    pub store_dir: PathBuf,
    pub engine: Option<Engine>,
}

/// The test PostgreSQL's URL. Without one the test fails: a test that skips passes silently.
pub fn test_pg_url() -> String {
    match std::env::var("MICROMEGAS_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "MICROMEGAS_TEST_PG_URL is not set: run these tests through `npm test` (it starts PostgreSQL), \
             or start `node scripts/test-services.mjs` and export the MICROMEGAS_TEST_PG_URL it prints"
        ),
    }
}

/// Replaces the database name of a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("MICROMEGAS_TEST_PG_URL must be a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

/// `t0 + secs` seconds.
pub fn at(secs: f64) -> DateTime<Utc> {
    t0() + chrono::Duration::nanoseconds((secs * 1e9) as i64)
}

impl TestLake {
    pub async fn create(base_url: &str) -> TestLake {
        let db = format!("mm_analytics_{}", uuid::Uuid::new_v4().simple());
        let (admin, conn) = tokio_postgres::connect(base_url, NoTls).await.expect("connect to test PostgreSQL");
        tokio::spawn(conn);
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
        let url = with_database(base_url, &db);
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(include_str!("../fixtures/ingestion_schema.sql")).await.unwrap();
        let store_dir = std::env::temp_dir().join(&db);
        std::fs::create_dir_all(&store_dir).unwrap();
        TestLake { client, url, store_dir, engine: None }
    }

    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            sql_connection_string: self.url.clone(),
            object_store_uri: format!("file://{}", self.store_dir.display()),
            ..Default::default()
        }
    }

    pub async fn open(&mut self, jit: bool) {
        let config = EngineConfig { jit_partitions: jit, ..self.config() };
        self.engine = Some(Engine::open(config).await.unwrap());
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open() first")
    }

    pub async fn insert_process(&self, process_id: &str, exe: &str, tsc_frequency: i64, start_ticks: i64, props: &[(&str, &str)]) {
        let keys: Vec<String> = props.iter().map(|p| p.0.to_string()).collect();
        let values: Vec<String> = props.iter().map(|p| p.1.to_string()).collect();
        self.client
            .execute(
                "INSERT INTO processes VALUES ($1::text::uuid, $2, 'alice', 'Alice', 'host-1', 'linux', 'cpu', $3, $4, $5, $4, NULL,
                   (SELECT coalesce(array_agg(ROW(k, v)::micromegas_property), '{}') FROM unnest($6::text[], $7::text[]) AS t(k, v)))",
                &[&process_id, &exe, &tsc_frequency, &t0(), &start_ticks, &keys, &values],
            )
            .await
            .unwrap();
    }

    pub async fn insert_stream(&self, stream_id: &str, process_id: &str, deps_meta: &[u8], objs_meta: &[u8], tags: &[&str], props: &[(&str, &str)]) {
        let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        let keys: Vec<String> = props.iter().map(|p| p.0.to_string()).collect();
        let values: Vec<String> = props.iter().map(|p| p.1.to_string()).collect();
        self.client
            .execute(
                "INSERT INTO streams VALUES ($1::text::uuid, $2::text::uuid, $3, $4, $5,
                   (SELECT coalesce(array_agg(ROW(k, v)::micromegas_property), '{}') FROM unnest($6::text[], $7::text[]) AS t(k, v)), $8)",
                &[&stream_id, &process_id, &deps_meta, &objs_meta, &tags, &keys, &values, &t0()],
            )
            .await
            .unwrap();
    }

    /// Writes the payload in upstream's layout (`packed = None`) or appended to a shared object
    /// at the given offset, then records the block. Ticks are relative to process start.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_block(
        &self,
        ids: (&str, &str, &str),
        begin: (f64, i64),
        end: (f64, i64),
        nb_objects: i32,
        object_offset: i64,
        payload: &[u8],
        packed: Option<(&str, i64)>,
    ) {
        let (block_id, stream_id, process_id) = ids;
        let (object, offset) = match packed {
            None => {
                let path = self.store_dir.join(format!("blobs/{process_id}/{stream_id}/{block_id}"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, payload).unwrap();
                (None, None)
            }
            Some((key, offset)) => {
                let path = self.store_dir.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let mut bytes = std::fs::read(&path).unwrap_or_default();
                bytes.resize(offset as usize, 0xEE);
                bytes.extend_from_slice(payload);
                bytes.extend_from_slice(b"trailing bytes of other blocks");
                std::fs::write(path, bytes).unwrap();
                (Some(key.to_string()), Some(offset))
            }
        };
        self.client
            .execute(
                "INSERT INTO blocks VALUES ($1::text::uuid, $2::text::uuid, $3::text::uuid, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    &block_id, &stream_id, &process_id, &at(begin.0), &begin.1, &at(end.0), &end.1, &nb_objects,
                    &object_offset, &(payload.len() as i64), &at(end.0 + 0.5), &object, &offset,
                ],
            )
            .await
            .unwrap();
    }

    pub async fn query(&self, sql: &str, range: Option<(f64, f64)>) -> anyhow::Result<QueryResult> {
        let options = QueryOptions { range: range.map(|(b, e)| TimeRange::new(at(b), at(e))), limit: None };
        self.engine.as_ref().expect("open() first").query(sql, &options).await
    }

    /// Rows as JSON objects (via the same writer `POST /api/query` uses).
    pub async fn rows(&self, sql: &str, range: Option<(f64, f64)>) -> Vec<serde_json::Value> {
        let r = self.query(sql, range).await.unwrap_or_else(|e| panic!("{sql}: {e:#}"));
        let bytes = micromegas_analytics::engine::to_json_rows(&r).unwrap();
        serde_json::from_slice::<Vec<serde_json::Value>>(&bytes).unwrap()
    }
}
