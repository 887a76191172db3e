//! Upstream's JSONB functions against a real engine (PostgreSQL metadata): exact values and
//! types for each function, upstream's documented queries, NULLs, missing keys, type mismatches,
//! and hostile input (deep nesting, huge text, forged binary) that must end in an error or a
//! value, never a crashed process.

mod common;

use common::lake::{test_pg_url, TestLake};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type};
use micromegas_analytics::sql::{QueryError, QueryErrorKind};
use serde_json::{json, Value};
use std::sync::Arc;

async fn lake() -> TestLake {
    let mut lake = TestLake::create(&test_pg_url()).await;
    lake.open(false).await;
    lake
}

/// The single value of a one-row, one-column query, as JSON (NULL as `null`).
async fn one(lake: &TestLake, sql: &str) -> Value {
    let rows = lake.rows(sql, None).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0].as_object().unwrap().values().next().cloned().unwrap_or(Value::Null)
}

async fn error_of(lake: &TestLake, sql: &str) -> QueryError {
    match lake.query(sql, None).await {
        Ok(_) => panic!("{sql} ran; it must fail"),
        Err(e) => QueryError::of(&e),
    }
}

async fn column_type(lake: &TestLake, sql: &str) -> DataType {
    lake.query(sql, None).await.unwrap().schema.field(0).data_type().clone()
}

/// `jsonb_format_json(<expr>)` of one row.
async fn json_of(lake: &TestLake, expr: &str) -> Value {
    one(lake, &format!("SELECT jsonb_format_json({expr}) AS v")).await
}

const DOC: &str = r#"{"name": "web_server", "port": 8080, "load": 0.75, "tags": ["prod", "us-east"], "owner": {"team": "core", "id": 7}, "none": null, "on": true}"#;

fn parsed() -> String {
    format!("jsonb_parse('{DOC}')")
}

#[tokio::test]
async fn types_are_upstreams() {
    let lake = lake().await;
    let dict = |v: DataType| DataType::Dictionary(Box::new(DataType::Int32), Box::new(v));
    let p = parsed();
    let cases = [
        (format!("SELECT {p}"), dict(DataType::Binary)),
        (format!("SELECT jsonb_get({p}, 'name')"), dict(DataType::Binary)),
        (format!("SELECT jsonb_format_json({p})"), dict(DataType::Utf8)),
        (format!("SELECT jsonb_as_string(jsonb_get({p}, 'name'))"), dict(DataType::Utf8)),
        (format!("SELECT jsonb_as_f64(jsonb_get({p}, 'load'))"), DataType::Float64),
        (format!("SELECT jsonb_as_i64(jsonb_get({p}, 'port'))"), DataType::Int64),
        (format!("SELECT jsonb_array_length(jsonb_get({p}, 'tags'))"), DataType::Int64),
        (format!("SELECT jsonb_object_keys({p})"), dict(DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))))),
        (format!("SELECT jsonb_path_query_first({p}, '$.tags[0]')"), dict(DataType::Binary)),
        (format!("SELECT jsonb_path_query({p}, '$.tags[*]')"), dict(DataType::Binary)),
    ];
    for (sql, expected) in cases {
        assert_eq!(column_type(&lake, &sql).await, expected, "{sql}");
    }
    let r = lake.query(&format!("SELECT * FROM jsonb_each({p})"), None).await.unwrap();
    assert_eq!(r.schema.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone())).collect::<Vec<_>>(), vec![("key", DataType::Utf8), ("value", DataType::Binary)]);
    let r = lake.query("SELECT * FROM jsonb_array_elements(jsonb_parse('[1]'))", None).await.unwrap();
    assert_eq!(r.schema.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone())).collect::<Vec<_>>(), vec![("value", DataType::Binary)]);
}

#[tokio::test]
async fn parse_gives_upstreams_bytes_and_formats_back() {
    let lake = lake().await;
    // databend JSONB of {"a":1}: object header (1 field), key entry (string, 1 byte), value entry
    // (number, 2 bytes), "a", then the number as tag 0x50 (unsigned integer) + one byte.
    let r = lake.query("SELECT arrow_cast(jsonb_parse('{\"a\":1}'), 'Binary') AS v", None).await.unwrap();
    let bytes = r.batches[0].column(0).as_binary::<i32>().value(0).to_vec();
    assert_eq!(bytes, vec![0x40, 0, 0, 1, 0x10, 0, 0, 1, 0x20, 0, 0, 2, b'a', 0x50, 1]);
    assert_eq!(
        json_of(&lake, &parsed()).await,
        json!(r#"{"load":0.75,"name":"web_server","none":null,"on":true,"owner":{"id":7,"team":"core"},"port":8080,"tags":["prod","us-east"]}"#)
    );
    assert_eq!(json_of(&lake, "jsonb_parse('[1, [2, [3, {}]], \"x\"]')").await, json!(r#"[1,[2,[3,{}]],"x"]"#));
    assert_eq!(json_of(&lake, "jsonb_parse('\"just text\"')").await, json!(r#""just text""#));
    // Malformed text is NULL, as upstream (which logs a warning); NULL in, NULL out.
    for bad in ["'{\"a\": '", "'not json'", "'[1, 2'", "'{\"a\" 1}'", "NULL"] {
        assert_eq!(json_of(&lake, &format!("jsonb_parse({bad})")).await, Value::Null, "{bad}");
    }
    // Dictionary-encoded and Utf8View text parse too.
    assert_eq!(json_of(&lake, "jsonb_parse(arrow_cast('{\"k\":[true]}', 'Dictionary(Int32, Utf8)'))").await, json!(r#"{"k":[true]}"#));
    assert_eq!(json_of(&lake, "jsonb_parse(arrow_cast('{\"k\":2}', 'Utf8View'))").await, json!(r#"{"k":2}"#));
    // A column: every row parsed, duplicates share one dictionary value.
    let rows = lake
        .rows("SELECT jsonb_format_json(jsonb_parse(t)) AS v FROM (VALUES ('{\"a\":1}'), ('bad'), ('{\"a\":1}'), (NULL), ('[2]')) AS x(t)", None)
        .await;
    let got: Vec<Value> = rows.iter().map(|r| r.get("v").cloned().unwrap_or(Value::Null)).collect();
    assert_eq!(got, vec![json!(r#"{"a":1}"#), Value::Null, json!(r#"{"a":1}"#), Value::Null, json!("[2]")]);
}

#[tokio::test]
async fn get_and_casts_give_exact_values() {
    let lake = lake().await;
    let p = parsed();
    let cases = [
        (format!("jsonb_format_json(jsonb_get({p}, 'owner'))"), json!(r#"{"id":7,"team":"core"}"#)),
        (format!("jsonb_format_json(jsonb_get(jsonb_get({p}, 'owner'), 'team'))"), json!(r#""core""#)),
        (format!("jsonb_as_string(jsonb_get(jsonb_get({p}, 'owner'), 'team'))"), json!("core")),
        (format!("jsonb_as_string(jsonb_get({p}, 'name'))"), json!("web_server")),
        (format!("jsonb_as_i64(jsonb_get({p}, 'port'))"), json!(8080)),
        (format!("jsonb_as_f64(jsonb_get({p}, 'load'))"), json!(0.75)),
        (format!("jsonb_as_f64(jsonb_get({p}, 'port'))"), json!(8080.0)),
        (format!("jsonb_array_length(jsonb_get({p}, 'tags'))"), json!(2)),
        ("jsonb_array_length(jsonb_parse('[]'))".to_string(), json!(0)),
        // Missing keys, type mismatches and NULLs are NULL.
        (format!("jsonb_format_json(jsonb_get({p}, 'missing'))"), Value::Null),
        (format!("jsonb_format_json(jsonb_get(jsonb_get({p}, 'tags'), 'x'))"), Value::Null),
        (format!("jsonb_as_string(jsonb_get({p}, 'port'))"), Value::Null),
        (format!("jsonb_as_i64(jsonb_get({p}, 'name'))"), Value::Null),
        (format!("jsonb_as_f64(jsonb_get({p}, 'tags'))"), Value::Null),
        (format!("jsonb_array_length({p})"), Value::Null),
        (format!("jsonb_format_json(jsonb_get({p}, 'none'))"), json!("null")),
        (format!("jsonb_as_string(jsonb_get({p}, 'none'))"), Value::Null),
        ("jsonb_format_json(jsonb_get(NULL, 'a'))".to_string(), Value::Null),
        ("jsonb_as_string(NULL)".to_string(), Value::Null),
        ("jsonb_as_i64(jsonb_parse(NULL))".to_string(), Value::Null),
        ("jsonb_array_length(NULL)".to_string(), Value::Null),
        // Plain Binary works as well as the dictionary jsonb_parse returns.
        (format!("jsonb_as_i64(jsonb_get(arrow_cast({p}, 'Binary'), 'port'))"), json!(8080)),
    ];
    for (expr, expected) in cases {
        assert_eq!(one(&lake, &format!("SELECT {expr} AS v")).await, expected, "{expr}");
    }
}

#[tokio::test]
async fn object_keys_are_sorted_as_jsonb_stores_them() {
    let lake = lake().await;
    let r = lake
        .query(
            "SELECT jsonb_object_keys(jsonb_parse(t)) AS k FROM (VALUES ('{\"port\": 8080, \"name\": \"server\"}'), ('[1]'), (NULL), ('{}'), ('{\"name\": \"server\", \"port\": 1}')) AS x(t)",
            None,
        )
        .await
        .unwrap();
    let column = r.batches[0].column(0);
    let dict = column.as_dictionary::<Int32Type>();
    assert_eq!(dict.values().len(), 2, "identical key lists share a dictionary entry");
    let lists = cast(column, dict.values().data_type()).unwrap();
    let lists = lists.as_list::<i32>();
    let keys = |i: usize| -> Option<Vec<String>> {
        lists.is_valid(i).then(|| lists.value(i).as_string::<i32>().iter().map(|s| s.unwrap().to_string()).collect())
    };
    assert_eq!(keys(0), Some(vec!["name".to_string(), "port".to_string()]));
    assert_eq!(keys(1), None);
    assert_eq!(keys(2), None);
    assert_eq!(keys(3), Some(vec![]));
    assert_eq!(keys(4), Some(vec!["name".to_string(), "port".to_string()]));
}

#[tokio::test]
async fn path_queries_as_upstreams_docs_write_them() {
    let lake = lake().await;
    let cases = [
        ("jsonb_path_query_first(jsonb_parse('{\"user\": {\"name\": \"Alice\"}}'), '$.user.name')", json!(r#""Alice""#)),
        ("jsonb_path_query_first(jsonb_parse('{\"items\": [10, 20, 30]}'), '$.items[1]')", json!("20")),
        ("jsonb_path_query(jsonb_parse('{\"users\": [{\"name\": \"Alice\"}, {\"name\": \"Bob\"}]}'), '$.users[*].name')", json!(r#"["Alice","Bob"]"#)),
        ("jsonb_path_query(jsonb_parse('[1, 2, 3]'), '$[*]')", json!("[1,2,3]")),
        ("jsonb_path_query(jsonb_parse('{\"a\": 1}'), '$.missing')", json!("[]")),
        (
            "jsonb_path_query(jsonb_parse('{\"items\": [{\"type\": \"active\", \"id\": 1}, {\"type\": \"inactive\", \"id\": 2}]}'), '$.items[*] ? (@.type == \"active\")')",
            json!(r#"[{"id":1,"type":"active"}]"#),
        ),
        (
            "jsonb_path_query(jsonb_parse('{\"scores\": [{\"name\": \"Alice\", \"val\": 85}, {\"name\": \"Bob\", \"val\": 42}]}'), '$.scores[*] ? (@.val > 50)')",
            json!(r#"[{"name":"Alice","val":85}]"#),
        ),
        (
            "jsonb_path_query_first(jsonb_parse('{\"users\": [{\"role\": \"admin\", \"name\": \"Alice\"}, {\"role\": \"user\", \"name\": \"Bob\"}]}'), '$.users[*] ? (@.role == \"admin\")')",
            json!(r#"{"name":"Alice","role":"admin"}"#),
        ),
        ("jsonb_path_query_first(jsonb_parse('{\"a\": 1}'), '$.missing')", Value::Null),
        ("jsonb_path_query_first(NULL, '$.a')", Value::Null),
    ];
    for (expr, expected) in cases {
        assert_eq!(json_of(&lake, expr).await, expected, "{expr}");
    }
    let e = error_of(&lake, "SELECT jsonb_path_query(jsonb_parse('{\"items\": []}'), '$.items[?(@.type==\"active\")]')").await;
    assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{}", e.message);
    assert!(e.message.contains("invalid JSONPath"), "{}", e.message);
}

#[tokio::test]
async fn each_and_array_elements_expand_rows() {
    let lake = lake().await;
    let rows = lake
        .rows(
            "SELECT key, jsonb_format_json(value) AS json_value FROM jsonb_each((SELECT jsonb_parse('{\"name\": \"server\", \"port\": 8080, \"tags\": [\"prod\", \"us-east\"]}')))",
            None,
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"key": "name", "json_value": "\"server\""}),
            json!({"key": "port", "json_value": "8080"}),
            json!({"key": "tags", "json_value": "[\"prod\",\"us-east\"]"}),
        ]
    );
    let rows = lake.rows("SELECT key AS index, jsonb_format_json(value) AS element FROM jsonb_each((SELECT jsonb_parse('[10, 20, 30]')))", None).await;
    assert_eq!(rows, vec![json!({"index": "0", "element": "10"}), json!({"index": "1", "element": "20"}), json!({"index": "2", "element": "30"})]);
    // A direct call, as the brief's example and upstream's code accept it.
    let rows = lake.rows("SELECT key, jsonb_as_i64(value) AS v FROM jsonb_each(jsonb_parse('{\"a\":1}'))", None).await;
    assert_eq!(rows, vec![json!({"key": "a", "v": 1})]);
    // A subquery over several rows concatenates them and skips NULLs.
    let rows = lake
        .rows("SELECT key FROM jsonb_each((SELECT jsonb_parse(t) FROM (VALUES ('{\"a\":1}'), (NULL), ('{\"b\":2}')) AS x(t)))", None)
        .await;
    assert_eq!(rows, vec![json!({"key": "a"}), json!({"key": "b"})]);
    let rows = lake.rows("SELECT jsonb_as_string(jsonb_get(value, 'name')) AS player_name FROM jsonb_array_elements(jsonb_path_query(jsonb_parse('{\"teams\": [{\"players\": [{\"type\": \"human\", \"name\": \"ann\"}, {\"type\": \"bot\", \"name\": \"b0\"}]}, {\"players\": [{\"type\": \"human\", \"name\": \"bo\"}]}]}'), '$.teams[*].players[*] ? (@.type == \"human\")'))", None).await;
    assert_eq!(rows, vec![json!({"player_name": "ann"}), json!({"player_name": "bo"})]);
    let rows = lake.rows("SELECT jsonb_as_i64(value) AS v FROM jsonb_array_elements(jsonb_parse('[1, 2, 3]')) LIMIT 2", None).await;
    assert_eq!(rows, vec![json!({"v": 1}), json!({"v": 2})]);
    assert_eq!(lake.rows("SELECT * FROM jsonb_array_elements(jsonb_parse('[]'))", None).await, Vec::<Value>::new());
    assert_eq!(lake.rows("SELECT * FROM jsonb_each(jsonb_parse(NULL))", None).await, Vec::<Value>::new());
    for (sql, says) in [
        ("SELECT * FROM jsonb_each(jsonb_parse('42'))", "not a JSONB object or array"),
        ("SELECT * FROM jsonb_array_elements(jsonb_parse('{\"a\":1}'))", "not a JSONB array"),
        ("SELECT * FROM jsonb_each('{\"a\":1}')", "must be JSONB"),
        ("SELECT * FROM jsonb_each(jsonb_parse('[1]'), 2)", "exactly one argument"),
        ("SELECT * FROM jsonb_each((SELECT jsonb_parse('[1]') WHERE false))", "no rows"),
    ] {
        let e = error_of(&lake, sql).await;
        assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{sql}: {}", e.message);
        assert!(e.message.contains(says), "{sql}: {}", e.message);
    }
}

#[tokio::test]
async fn wrong_argument_types_are_clear_errors() {
    let lake = lake().await;
    for (sql, says) in [
        ("SELECT jsonb_get('{\"a\":1}', 'a')", "must be JSONB"),
        ("SELECT jsonb_format_json(42)", "must be JSONB"),
        ("SELECT jsonb_parse(42)", "must be text"),
        ("SELECT jsonb_get(jsonb_parse('{}'), 42)", "must be text"),
        // Bytes that are not JSONB: garbage, a truncated value, a string that is not UTF-8.
        ("SELECT jsonb_format_json(X'00')", "not valid JSONB"),
        ("SELECT jsonb_as_string(X'40000001100000012000000261')", "not valid JSONB"),
        ("SELECT jsonb_as_string(X'200000011000000261FF')", "not valid JSONB"),
    ] {
        let e = error_of(&lake, sql).await;
        assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{sql}: {}", e.message);
        assert!(e.message.contains(says), "{sql}: {}", e.message);
    }
}

#[tokio::test]
async fn hostile_input_errors_or_answers_and_the_engine_lives() {
    let lake = lake().await;
    // 100k levels of nesting: an error, not a stack overflow.
    for text in ["repeat('[', 100000)", "concat(repeat('[', 100000), repeat(']', 100000))", "concat(repeat('{\"a\":', 100000), '1', repeat('}', 100000))"] {
        let e = error_of(&lake, &format!("SELECT jsonb_parse({text})")).await;
        assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{text}: {}", e.message);
        assert!(e.message.contains("nested more than 128 levels"), "{text}: {}", e.message);
    }
    // Nesting at the limit still parses.
    assert_eq!(one(&lake, "SELECT jsonb_array_length(jsonb_parse(concat(repeat('[', 128), repeat(']', 128)))) AS v").await, json!(1));
    // Unclosed or non-standard text nested deep is refused too.
    let e = error_of(&lake, "SELECT jsonb_parse(concat(repeat('[', 100000), '''x'''))").await;
    assert!(e.message.contains("nested more than 128 levels"), "{}", e.message);
    // The crate's extended syntax (single quotes) is parsed when its brackets can't nest too deep…
    assert_eq!(one(&lake, "SELECT jsonb_format_json(jsonb_parse('[''a'', {b: ''c''}]')) AS v").await, json!(r#"["a",{"b":"c"}]"#));
    // …and is NULL past that, since its depth can't be bounded cheaply (upstream would parse it).
    assert_eq!(one(&lake, "SELECT jsonb_format_json(jsonb_parse(concat('[', repeat('[''a''],', 200), '1]'))) AS v").await, Value::Null);
    // Brackets inside strings are not nesting.
    assert_eq!(one(&lake, "SELECT length(jsonb_as_string(jsonb_parse(concat('\"', repeat('[', 100000), '\"')))) AS v").await, json!(100000));
    // 10 MB of JSON text is a value.
    assert_eq!(one(&lake, "SELECT length(jsonb_as_string(jsonb_parse(concat('\"', repeat('x', 10000000), '\"')))) AS v").await, json!(10_000_000));
    assert_eq!(
        one(&lake, "SELECT jsonb_array_length(jsonb_parse(concat('[', repeat('{\"k\":[1,2,3]},', 100000), '0]'))) AS v").await,
        json!(100_001)
    );
    // Forged binary nested past the limit (what a client can write as a literal): refused before
    // any recursive reader sees it, by every function and table function.
    let mut forged: Vec<u8> = vec![0x80, 0, 0, 0];
    for _ in 0..10_000 {
        let mut outer = vec![0x80, 0, 0, 1];
        outer.extend_from_slice(&(0x5000_0000u32 | forged.len() as u32).to_be_bytes());
        outer.extend_from_slice(&forged);
        forged = outer;
    }
    let hex: String = forged.iter().map(|b| format!("{b:02X}")).collect();
    for f in ["jsonb_format_json(X'{h}')", "jsonb_path_query(X'{h}', '$.**')", "jsonb_array_length(X'{h}')", "jsonb_object_keys(X'{h}')"] {
        let sql = format!("SELECT {}", f.replace("{h}", &hex));
        let e = error_of(&lake, &sql).await;
        assert!(e.message.contains("nested more than 128 levels"), "{f}: {}", e.message);
    }
    for f in ["jsonb_each", "jsonb_array_elements"] {
        let e = error_of(&lake, &format!("SELECT * FROM {f}(X'{hex}')")).await;
        assert!(e.message.contains("nested more than 128 levels"), "{f}: {}", e.message);
    }
    // A JSONPath nested 100k levels deep is refused before its recursive parser runs.
    let e = error_of(&lake, "SELECT jsonb_path_query(jsonb_parse('[1]'), concat('$ ? ', repeat('(', 100000), '@ == 1', repeat(')', 100000)))").await;
    assert!(e.message.contains("JSONPath too long or nested too deeply"), "{}", e.message);
    // Still a read-only sandbox: a table function's argument can't smuggle a statement.
    let e = error_of(&lake, "SELECT * FROM jsonb_each((CREATE TABLE t AS SELECT 1))").await;
    assert_eq!(e.kind, QueryErrorKind::InvalidSql, "{}", e.message);
    let e = error_of(&lake, "CREATE TABLE t AS SELECT * FROM jsonb_each(jsonb_parse('{\"a\":1}'))").await;
    assert!(e.message.contains("only queries are allowed"), "{}", e.message);
    assert_eq!(lake.rows("SELECT 1 AS one", None).await, vec![json!({"one": 1})]);
}
