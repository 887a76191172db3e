//! Upstream's histogram functions against a real engine (PostgreSQL metadata, file object store):
//! exact bins, counts and moments of `make_histogram`, upstream's quantile interpolation, the
//! variance formula, `sum_histograms` adding groups back into the whole, `expand_histogram` over a
//! scalar subquery, NULL and empty inputs, refusals of bad parameters, and histograms over the
//! `measures` view. Also: JSON answers keep SQL NULL as `null`.

mod common;

use common::lake::{test_pg_url, TestLake};
use common::scenario::{populated_lake, P};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use micromegas_analytics::engine::{Engine, EngineConfig, QueryOptions, ResultFormat};
use micromegas_analytics::sql::{QueryError, QueryErrorKind};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Eight values and a NULL: -3.0 and 25.0 lie outside [0, 10], 10.0 on its upper edge.
const VALUES: &str = "unnest([0.5, 1.5, 1.7, 2.0, 9.99, 10.0, -3.0, 25.0, NULL]) AS t(v)";
const VALID: [f64; 8] = [0.5, 1.5, 1.7, 2.0, 9.99, 10.0, -3.0, 25.0];

async fn lake() -> TestLake {
    let mut lake = TestLake::create(&test_pg_url()).await;
    lake.open(false).await;
    lake
}

/// The histogram type exactly as upstream declares it (`state_arrow_fields`).
fn upstream_histogram_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("start", DataType::Float64, false),
        Field::new("end", DataType::Float64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("max", DataType::Float64, false),
        Field::new("sum", DataType::Float64, false),
        Field::new("sum_sq", DataType::Float64, false),
        Field::new("count", DataType::UInt64, false),
        Field::new("bins", DataType::List(Arc::new(Field::new("bin", DataType::UInt64, false))), false),
    ]))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{what}: {actual} != {expected}");
}

fn bins(h: &Value) -> Vec<u64> {
    h["bins"].as_array().unwrap_or_else(|| panic!("no bins in {h}")).iter().map(|b| b.as_u64().unwrap()).collect()
}

/// The one row `sql` returns.
async fn row(lake: &TestLake, sql: &str) -> Value {
    let rows = lake.rows(sql, None).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// The error `sql` fails with (panics when it runs).
async fn error_of(lake: &TestLake, sql: &str) -> QueryError {
    match lake.query(sql, None).await {
        Ok(_) => panic!("{sql} ran; it must fail"),
        Err(e) => QueryError::of(&e),
    }
}

async fn assert_refused(lake: &TestLake, sql: &str, message: &str) {
    let e = error_of(lake, sql).await;
    assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{sql}: {}", e.message);
    assert!(e.message.contains(message), "{sql}: expected '{message}' in: {}", e.message);
    assert_eq!(lake.rows("SELECT 1 AS one", None).await, vec![json!({ "one": 1 })], "the engine must still answer after: {sql}");
}

#[tokio::test]
async fn make_histogram_bins_counts_and_moments() {
    let lake = lake().await;
    let sql = format!("SELECT make_histogram(0.0, 10.0, 10, v) AS h FROM {VALUES}");
    let result = lake.query(&sql, None).await.unwrap();
    assert_eq!(result.schema.field(0).data_type(), &upstream_histogram_type());
    let h = &row(&lake, &sql).await["h"];
    // Out-of-range values count in the edge bins (-3.0 in the first; 10.0 and 25.0 in the last).
    assert_eq!(bins(h), vec![2, 2, 1, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(h["count"], json!(8));
    assert_eq!((f(&h["start"]), f(&h["end"]), f(&h["min"]), f(&h["max"])), (0.0, 10.0, -3.0, 25.0));
    assert_close(f(&h["sum"]), VALID.iter().sum(), "sum");
    assert_close(f(&h["sum_sq"]), VALID.iter().map(|v| v * v).sum(), "sum_sq");

    // Integer arguments are cast like upstream's signature casts them.
    let h = &row(&lake, "SELECT make_histogram(0, 4, 2, x) AS h FROM unnest([1, 2, 3]) AS t(x)").await["h"];
    assert_eq!((bins(h), f(&h["sum"])), (vec![1, 2], 6.0));

    // Bounds from the data (upstream allows any expression, the same on every row).
    let h = &row(
        &lake,
        &format!("SELECT make_histogram(b.lo, b.hi, 4, t.v) AS h FROM {VALUES} CROSS JOIN (SELECT min(v) AS lo, max(v) AS hi FROM {VALUES}) b"),
    )
    .await["h"];
    // [-3, 25] in 4 bins of 7: -3, 0.5, 1.5, 1.7, 2.0 | 9.99, 10.0 | none | 25.0 (the upper edge).
    assert_eq!((f(&h["start"]), f(&h["end"]), bins(h)), (-3.0, 25.0, vec![5, 2, 0, 1]));

    // One histogram per group.
    let rows = lake.rows(&format!("SELECT v > 5 AS high, make_histogram(0.0, 10.0, 2, v) AS h FROM {VALUES} WHERE v IS NOT NULL GROUP BY v > 5 ORDER BY high"), None).await;
    assert_eq!(rows.iter().map(|r| bins(&r["h"])).collect::<Vec<_>>(), vec![vec![5, 0], vec![0, 3]]);
}

#[tokio::test]
async fn quantiles_interpolate_inside_the_bin() {
    let lake = lake().await;
    // Cumulative counts by bin of [0, 10]: 2, 4, 5, 5, 5, 5, 5, 5, 5, 8 (8 values).
    let r = row(
        &lake,
        &format!(
            "SELECT quantile_from_histogram(h, 0.0) AS q0, quantile_from_histogram(h, 0.3) AS q30, quantile_from_histogram(h, 0.5) AS q50,
                    quantile_from_histogram(h, 0.99) AS q99, quantile_from_histogram(h, 1.0) AS q100, quantile_from_histogram(h, NULL) AS qnull
             FROM (SELECT make_histogram(0.0, 10.0, 10, v) AS h FROM {VALUES})"
        ),
    )
    .await;
    // q·count = 0 is reached in bin 0 at its start.
    assert_close(f(&r["q0"]), 0.0, "q0");
    // 0.3·8 = 2.4: bin 1 ([1, 2)) holds values 3 and 4, so 0.4 of its 2 values: 1 + 0.2.
    assert_close(f(&r["q30"]), 1.2, "q30");
    // 0.5·8 = 4: the last value of bin 1, its upper edge.
    assert_close(f(&r["q50"]), 2.0, "q50");
    // 0.99·8 = 7.92: bin 9 ([9, 10]) holds values 6..8, (7.92 - 5) / 3 of the way in.
    assert_close(f(&r["q99"]), 9.0 + (7.92 - 5.0) / 3.0, "q99");
    assert_close(f(&r["q100"]), 10.0, "q100");
    assert_eq!(r["qnull"], Value::Null);

    // An empty histogram answers its end, as upstream.
    let r = row(&lake, "SELECT quantile_from_histogram(make_histogram(0.0, 10.0, 4, v), 0.5) AS q FROM unnest([1.0]) AS t(v) WHERE v > 5").await;
    assert_close(f(&r["q"]), 10.0, "empty");

    for q in ["1.5", "-0.1", "'NaN'::double"] {
        assert_refused(&lake, &format!("SELECT quantile_from_histogram(make_histogram(0.0, 10.0, 4, v), {q}) FROM {VALUES}"), "between 0 and 1").await;
    }
}

#[tokio::test]
async fn variance_count_and_sum() {
    let lake = lake().await;
    let r = row(
        &lake,
        &format!(
            "SELECT variance_from_histogram(h) AS var, count_from_histogram(h) AS n, sum_from_histogram(h) AS s, ref_var
             FROM (SELECT make_histogram(0.0, 10.0, 10, v) AS h, var_samp(v) AS ref_var FROM {VALUES})"
        ),
    )
    .await;
    let n = VALID.len() as f64;
    let (sum, sum_sq): (f64, f64) = (VALID.iter().sum(), VALID.iter().map(|v| v * v).sum());
    let mean = sum / n;
    assert_close(f(&r["var"]), (sum_sq / n - mean * mean) * n / (n - 1.0), "variance formula");
    assert_close(f(&r["var"]), f(&r["ref_var"]), "variance against var_samp");
    assert_eq!(r["n"], json!(8));
    assert_close(f(&r["s"]), sum, "sum");

    let result = lake.query("SELECT count_from_histogram(make_histogram(0.0, 1.0, 1, 0.5)) AS n, sum_from_histogram(make_histogram(0.0, 1.0, 1, 0.5)) AS s", None).await.unwrap();
    assert_eq!(result.schema.field(0).data_type(), &DataType::UInt64);
    assert_eq!(result.schema.field(1).data_type(), &DataType::Float64);

    // Fewer than two values: no sample variance.
    let r = row(&lake, "SELECT variance_from_histogram(make_histogram(0.0, 10.0, 4, v)) AS var FROM unnest([3.0]) AS t(v)").await;
    assert_eq!(r["var"], Value::Null);
}

#[tokio::test]
async fn sum_histograms_of_groups_is_the_histogram_of_all() {
    let lake = lake().await;
    let r = row(
        &lake,
        &format!(
            "WITH t AS (SELECT v FROM {VALUES}),
                  parts AS (SELECT v > 5 AS g, make_histogram(0.0, 10.0, 10, v) AS h FROM t GROUP BY v > 5)
             SELECT sum_histograms(h) AS summed, (SELECT make_histogram(0.0, 10.0, 10, v) FROM t) AS whole, count(*) AS parts FROM parts"
        ),
    )
    .await;
    // Three groups: v <= 5, v > 5 and NULL (a histogram with no values).
    assert_eq!(r["parts"], json!(3));
    let (summed, whole) = (&r["summed"], &r["whole"]);
    assert_eq!(bins(summed), vec![2, 2, 1, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(bins(summed), bins(whole));
    for k in ["start", "end", "min", "max", "sum", "sum_sq"] {
        assert_close(f(&summed[k]), f(&whole[k]), k);
    }
    assert_eq!(summed["count"], whole["count"]);

    // Histograms with other bounds don't add up.
    assert_refused(
        &lake,
        &format!(
            "SELECT sum_histograms(h) FROM (SELECT make_histogram(0.0, 10.0, 10, v) AS h FROM {VALUES} UNION ALL SELECT make_histogram(0.0, 20.0, 10, v) FROM {VALUES})"
        ),
        "incompatible histograms",
    )
    .await;
    assert_refused(
        &lake,
        &format!("SELECT sum_histograms(h) FROM (SELECT make_histogram(0.0, 10.0, 10, v) AS h FROM {VALUES} UNION ALL SELECT make_histogram(0.0, 10.0, 5, v) FROM {VALUES})"),
        "incompatible histograms",
    )
    .await;

    // No histogram at all: NULL, and NULL through the accessors.
    let r = row(
        &lake,
        "SELECT sum_histograms(h) AS s, count_from_histogram(sum_histograms(h)) AS n, quantile_from_histogram(sum_histograms(h), 0.5) AS q
         FROM (SELECT make_histogram(0.0, 1.0, 2, v) AS h FROM unnest([1.0]) AS t(v)) WHERE h IS NULL",
    )
    .await;
    assert_eq!(r, json!({ "s": null, "n": null, "q": null }));
}

#[tokio::test]
async fn expand_histogram_gives_a_row_per_bin() {
    let lake = lake().await;
    let sql = format!("SELECT bin_center, count FROM expand_histogram((SELECT make_histogram(0.0, 10.0, 5, v) FROM {VALUES}))");
    let result = lake.query(&sql, None).await.unwrap();
    assert_eq!(result.schema.field(0).data_type(), &DataType::Float64);
    assert_eq!(result.schema.field(1).data_type(), &DataType::UInt64);
    let rows = lake.rows(&format!("{sql} ORDER BY bin_center"), None).await;
    let rows: Vec<(f64, u64)> = rows.iter().map(|r| (f(&r["bin_center"]), r["count"].as_u64().unwrap())).collect();
    assert_eq!(rows, vec![(1.0, 4), (3.0, 1), (5.0, 0), (7.0, 0), (9.0, 3)]);

    // Filters, projections and limits apply to its rows.
    let rows = lake.rows(&format!("SELECT bin_center FROM expand_histogram((SELECT make_histogram(0.0, 10.0, 5, v) FROM {VALUES})) WHERE count > 0 ORDER BY bin_center DESC LIMIT 2"), None).await;
    assert_eq!(rows, vec![json!({ "bin_center": 9.0 }), json!({ "bin_center": 3.0 })]);
    let rows = lake.rows(&format!("SELECT count(*) AS n FROM (SELECT * FROM expand_histogram((SELECT make_histogram(0.0, 10.0, 5, v) FROM {VALUES})) LIMIT 3)"), None).await;
    assert_eq!(rows, vec![json!({ "n": 3 })]);

    // A zero-width histogram gets unit-width bins (upstream).
    let rows = lake.rows("SELECT bin_center, count FROM expand_histogram((SELECT make_histogram(2.0, 2.0, 2, v) FROM unnest([2.0, 2.0]) AS t(v)))", None).await;
    assert_eq!(rows, vec![json!({ "bin_center": 2.5, "count": 2 }), json!({ "bin_center": 3.5, "count": 0 })]);

    // A NULL histogram has no bins.
    let rows = lake
        .rows("SELECT * FROM expand_histogram((SELECT sum_histograms(h) FROM (SELECT make_histogram(0.0, 1.0, 2, v) AS h FROM unnest([1.0]) AS t(v)) WHERE h IS NULL))", None)
        .await;
    assert_eq!(rows, Vec::<Value>::new());

    assert_refused(
        &lake,
        &format!("SELECT * FROM expand_histogram((SELECT make_histogram(0.0, 10.0, 5, v) FROM {VALUES} GROUP BY v > 5))"),
        "more than one row",
    )
    .await;
    assert_refused(&lake, "SELECT * FROM expand_histogram((SELECT make_histogram(0.0, 10.0, 5, v) FROM unnest([1.0]) AS t(v) GROUP BY v HAVING false))", "no rows").await;
    assert_refused(&lake, "SELECT * FROM expand_histogram(1.5)", "expected a histogram").await;
    assert_refused(&lake, "SELECT * FROM expand_histogram()", "takes one argument").await;
    // The subquery reads what any query may read: a file path is no table.
    let e = error_of(&lake, "SELECT * FROM expand_histogram((SELECT make_histogram(0.0, 1.0, 2, 0.5) FROM '/etc/passwd'))").await;
    assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{}", e.message);
    assert!(!e.message.contains("root:"), "{}", e.message);
}

#[tokio::test]
async fn empty_and_null_inputs() {
    let lake = lake().await;
    // Literal bounds: an empty group still has its bounds and zero counts (upstream).
    for from in ["unnest([1.0]) AS t(v) WHERE v > 5", "unnest([CAST(NULL AS DOUBLE), NULL]) AS t(v)"] {
        let h = &row(&lake, &format!("SELECT make_histogram(0.0, 10.0, 4, v) AS h FROM {from}")).await["h"];
        assert_eq!((bins(h), h["count"].clone(), f(&h["start"]), f(&h["end"]), f(&h["sum"])), (vec![0, 0, 0, 0], json!(0), 0.0, 10.0, 0.0), "{from}");
    }
    // NULL parameters, bad bin counts and bounds are refused with a message.
    assert_refused(&lake, &format!("SELECT make_histogram(CAST(NULL AS DOUBLE), 10.0, 4, v) FROM {VALUES}"), "start argument is NULL").await;
    assert_refused(&lake, &format!("SELECT make_histogram(0.0, 10.0, CAST(NULL AS BIGINT), v) FROM {VALUES}"), "bins argument is NULL").await;
    assert_refused(&lake, &format!("SELECT make_histogram(0.0, 10.0, 0, v) FROM {VALUES}"), "bins must be between 1 and 10000, got 0").await;
    assert_refused(&lake, &format!("SELECT make_histogram(0.0, 10.0, -5, v) FROM {VALUES}"), "bins must be between 1 and 10000").await;
    // A client-chosen bin count must not allocate terabytes.
    assert_refused(&lake, &format!("SELECT make_histogram(0.0, 10.0, 1000000000000, v) FROM {VALUES}"), "bins must be between 1 and 10000").await;
    assert_refused(&lake, &format!("SELECT make_histogram(10.0, 0.0, 4, v) FROM {VALUES}"), "must be <= end").await;
    assert_refused(&lake, &format!("SELECT make_histogram(0.0, power(10.0, 400), 4, v) FROM {VALUES}"), "finite").await;
    // Bounds that change within one histogram.
    assert_refused(&lake, &format!("SELECT make_histogram(0.0, 10.0, CAST(v AS BIGINT) + 5, v) FROM {VALUES} WHERE v > 0"), "the same for all rows").await;
    assert_refused(&lake, "SELECT sum_histograms(1.5)", "sum_histograms").await;
    assert_refused(&lake, "SELECT quantile_from_histogram('x', 0.5)", "quantile_from_histogram").await;
}

#[tokio::test]
async fn histograms_over_measures() {
    let lake = populated_lake(false).await;
    // frame_time is 16.5 at t0+0.5 s and 33.25 at t0+1.5 s.
    let sql = "SELECT make_histogram(0.0, 40.0, 4, value) AS h FROM measures WHERE name = 'frame_time'";
    let h = &row(&lake, sql).await["h"];
    assert_eq!((bins(h), h["count"].clone(), f(&h["min"]), f(&h["max"]), f(&h["sum"])), (vec![0, 1, 0, 1], json!(2), 16.5, 33.25, 49.75));
    // The query's time range applies: only the first second.
    let rows = lake.rows(sql, Some((0.0, 1.0))).await;
    assert_eq!(bins(&rows[0]["h"]), vec![0, 1, 0, 0]);

    let rows = lake
        .rows(
            &format!(
                "SELECT bin_center, count FROM expand_histogram((SELECT make_histogram(0.0, 40.0, 4, value) FROM view_instance('measures', '{P}') WHERE name = 'frame_time')) ORDER BY bin_center"
            ),
            None,
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({ "bin_center": 5.0, "count": 0 }),
            json!({ "bin_center": 15.0, "count": 1 }),
            json!({ "bin_center": 25.0, "count": 0 }),
            json!({ "bin_center": 35.0, "count": 1 }),
        ]
    );
    let r = row(&lake, "SELECT quantile_from_histogram(sum_histograms(h), 0.5) AS median FROM (SELECT name, make_histogram(0.0, 40.0, 4, value) AS h FROM measures WHERE name = 'frame_time' GROUP BY name)").await;
    // 0.5·2 = 1: the single value of bin 1 ([10, 20)), its upper edge.
    assert_close(f(&r["median"]), 20.0, "median");
}

/// The subquery of `expand_histogram` runs under the query timeout like any query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expand_histogram_subquery_stops_at_the_timeout() {
    let mut lake = TestLake::create(&test_pg_url()).await;
    lake.engine = Some(Engine::open(EngineConfig { query_timeout: Some(Duration::from_millis(500)), ..lake.config() }).await.unwrap());
    let heavy = "SELECT * FROM expand_histogram((SELECT make_histogram(0.0, 1.0, 10, CAST(x AS DOUBLE)) FROM
                   (SELECT * FROM unnest(range(100000))) a(x), (SELECT * FROM unnest(range(100000))) b(y) WHERE x + y >= 0))";
    let started = Instant::now();
    let e = error_of(&lake, heavy).await;
    assert_eq!(e.kind, QueryErrorKind::Timeout, "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(10), "stopped only after {:?}", started.elapsed());
    assert_eq!(lake.rows("SELECT 1 AS one", None).await, vec![json!({ "one": 1 })]);
}

/// `/api/query` answers JSON through `to_json_rows` or the streaming encoder: both keep NULL.
#[tokio::test]
async fn json_answers_keep_sql_null() {
    let lake = lake().await;
    let sql = "SELECT 1 AS a, NULL AS b";
    let r = lake.query(sql, None).await.unwrap();
    let whole = micromegas_analytics::engine::to_json_rows(&r).unwrap();
    assert_eq!(String::from_utf8(whole).unwrap(), r#"[{"a":1,"b":null}]"#);

    let mut stream = lake.engine().query_stream(sql, &QueryOptions::default(), ResultFormat::Json);
    let mut streamed = Vec::new();
    while let Some(chunk) = stream.next_chunk().await.unwrap() {
        streamed.extend(chunk);
    }
    assert_eq!(String::from_utf8(streamed).unwrap(), r#"[{"a":1,"b":null}]"#);

    // Over several batches, and for NULLs inside structs and lists.
    let rows = lake.rows("SELECT x, CASE WHEN x % 2 = 0 THEN NULL ELSE x END AS odd, named_struct('k', CAST(NULL AS INT)) AS s FROM unnest(range(3)) AS t(x) ORDER BY x", None).await;
    assert_eq!(
        rows,
        vec![json!({ "x": 0, "odd": null, "s": { "k": null } }), json!({ "x": 1, "odd": 1, "s": { "k": null } }), json!({ "x": 2, "odd": null, "s": { "k": null } })]
    );
}
