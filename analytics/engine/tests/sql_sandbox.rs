//! The read-only SQL sandbox against a real engine (PostgreSQL metadata, file object store): only
//! queries run, nothing touches the file system, errors tell nothing about files, and deep or
//! huge SQL gets a clear error instead of overflowing planning's stack. After each refusal the
//! engine still answers `SELECT 1`.

mod common;

use common::lake::{test_pg_url, TestLake};
use micromegas_analytics::engine::QueryOptions;
use micromegas_analytics::sql::{QueryError, QueryErrorKind};

async fn lake() -> TestLake {
    let mut lake = TestLake::create(&test_pg_url()).await;
    lake.open(false).await;
    lake
}

/// The error `sql` fails with (panics when it runs).
async fn error_of(lake: &TestLake, sql: &str) -> QueryError {
    match lake.query(sql, None).await {
        Ok(_) => panic!("{sql} ran; it must be refused"),
        Err(e) => QueryError::of(&e),
    }
}

async fn assert_select_1(lake: &TestLake) {
    let rows = lake.rows("SELECT 1 AS one", None).await;
    assert_eq!(rows, vec![serde_json::json!({ "one": 1 })]);
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mm-sandbox-{}-{name}", std::process::id()))
}

#[tokio::test]
async fn statements_other_than_queries_are_refused() {
    let lake = lake().await;
    let copied = scratch("copy.csv");
    let explained = scratch("explain.csv");
    let refused = [
        format!("COPY (SELECT 1) TO '{}'", copied.display()),
        format!("COPY (SELECT 1 AS a) TO '{}' STORED AS CSV", copied.display()),
        format!("EXPLAIN ANALYZE COPY (SELECT 1) TO '{}'", explained.display()),
        format!("EXPLAIN COPY (SELECT 1) TO '{}'", explained.display()),
        "CREATE TABLE t (x INT)".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        "CREATE SCHEMA s".to_string(),
        "DROP TABLE log_entries".to_string(),
        "INSERT INTO log_entries SELECT * FROM log_entries".to_string(),
        "DELETE FROM processes".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "RESET datafusion.execution.batch_size".to_string(),
        "BEGIN TRANSACTION".to_string(),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "PREPARE p AS SELECT 1".to_string(),
    ];
    for sql in &refused {
        let e = error_of(&lake, sql).await;
        assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{sql}: {}", e.message);
        assert!(e.message.contains("only queries are allowed"), "{sql}: {}", e.message);
        assert_select_1(&lake).await;
    }
    assert!(!copied.exists() && !explained.exists(), "a refused COPY wrote a file");
}

#[tokio::test]
async fn files_are_not_tables_and_errors_do_not_tell_whether_they_exist() {
    let lake = lake().await;
    let existing = scratch("secret.csv");
    std::fs::write(&existing, "secret_column\ntop-secret-value\n").unwrap();
    let missing = scratch("missing.csv");
    for make in [
        |p: &str| format!("SELECT * FROM '{p}'"),
        |p: &str| format!("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{p}'"),
        |p: &str| format!("CREATE EXTERNAL TABLE t (x INT) STORED AS CSV LOCATION '{p}'"),
        |p: &str| format!("SELECT * FROM \"{p}\""),
    ] {
        let (there, absent) = (existing.display().to_string(), missing.display().to_string());
        let e1 = error_of(&lake, &make(&there)).await;
        let e2 = error_of(&lake, &make(&absent)).await;
        assert_eq!(e1.kind, QueryErrorKind::InvalidSql);
        assert_eq!(e1.message.replace(&there, "P"), e2.message.replace(&absent, "P"), "the answers differ by the file's existence");
        assert!(!e1.message.contains("secret_column") && !e1.message.contains("top-secret"), "{}", e1.message);
        assert_select_1(&lake).await;
    }
    for passwd in ["SELECT * FROM '/etc/passwd'", "SELECT * FROM 'file:///etc/passwd'"] {
        let e = error_of(&lake, passwd).await;
        assert!(!e.message.contains("root:"), "{}", e.message);
    }
    std::fs::remove_file(existing).unwrap();
}

#[tokio::test]
async fn queries_of_every_read_only_kind_run() {
    let lake = lake().await;
    for sql in [
        "SELECT 1",
        "WITH t AS (SELECT 2 AS x) SELECT x FROM t",
        "VALUES (1), (2)",
        "EXPLAIN SELECT count(*) FROM log_entries",
        "SHOW TABLES",
        "SHOW COLUMNS FROM log_entries",
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'log_entries'",
        "SELECT count(*) FROM processes",
        "SELECT v FROM unnest(range(10)) AS t(v) WHERE v IN (1, 2, 3)",
    ] {
        lake.query(sql, None).await.unwrap_or_else(|e| panic!("{sql}: {e:#}"));
    }
}

fn chain(terms: usize, term: impl Fn(usize) -> String, op: &str) -> String {
    (0..terms).map(term).collect::<Vec<_>>().join(op)
}

#[tokio::test]
async fn deep_or_huge_sql_gets_a_clear_error_never_a_crash() {
    let lake = lake().await;
    // 1,000 terms: within the depth limit, it runs.
    let sum = format!("SELECT {} AS n", chain(1000, |_| "1".into(), " + "));
    assert_eq!(lake.rows(&sum, None).await, vec![serde_json::json!({ "n": 1000 })]);
    // 1,000 ORs in a WHERE, too.
    let ors = format!("SELECT count(*) AS n FROM unnest(range(10)) AS t(a) WHERE {}", chain(999, |i| format!("a = {i}"), " OR "));
    assert_eq!(lake.rows(&ors, None).await, vec![serde_json::json!({ "n": 10 })]);
    let deep = [
        format!("SELECT {} AS n", chain(5000, |_| "1".into(), " + ")),
        format!("SELECT 1 FROM unnest(range(10)) AS t(a) WHERE {}", chain(20_000, |i| format!("a = {i}"), " OR ")),
    ];
    for sql in &deep {
        let e = error_of(&lake, sql).await;
        assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{}", e.message);
        assert!(e.message.contains("nest more than 1000 levels"), "{}", e.message);
        assert_select_1(&lake).await;
    }
    let nested = [
        format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("SELECT {}1", "- ".repeat(10_000)),
        format!("SELECT {}1{}", "abs(".repeat(5_000), ")".repeat(5_000)),
        format!("SELECT {}1{}", "(SELECT ".repeat(3_000), ")".repeat(3_000)),
    ];
    for sql in &nested {
        let e = error_of(&lake, sql).await;
        assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{}", e.message);
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
        assert_select_1(&lake).await;
    }
    // A parse error, but no crash either.
    let nots = error_of(&lake, &format!("SELECT 1 WHERE {}true", "NOT ".repeat(10_000))).await;
    assert_eq!(nots.kind, QueryErrorKind::InvalidSql, "{}", nots.message);
    assert_select_1(&lake).await;
    let huge = format!("SELECT '{}'", "x".repeat(300 * 1024));
    let e = error_of(&lake, &huge).await;
    assert_eq!(e.kind, QueryErrorKind::InvalidSql);
    assert!(e.message.contains("more than the limit of 262144 bytes"), "{}", e.message);
    assert_select_1(&lake).await;
}

#[tokio::test]
async fn limits_above_u32_return_every_row() {
    let lake = lake().await;
    for limit in [1usize << 32, (1usize << 53) - 1] {
        let options = QueryOptions { range: None, limit: Some(limit) };
        let r = lake.engine().query("SELECT v FROM unnest(range(10)) AS t(v)", &options).await.unwrap();
        assert_eq!(r.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10, "limit {limit}");
    }
}
