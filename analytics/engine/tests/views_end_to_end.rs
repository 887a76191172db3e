//! From stored blocks and PostgreSQL metadata to SQL rows, through every view: exact rows,
//! time-range pruning, property_get, packed payloads, corrupt blocks and bad SQL.

mod common;
use common::lake::{test_pg_url, TestLake};
use common::*;
use serde_json::json;

const P: &str = "6f0b2b1e-0000-4000-8000-000000000001";
const LOG: &str = "6f0b2b1e-0000-4000-8000-0000000000a1";
const MET: &str = "6f0b2b1e-0000-4000-8000-0000000000a2";
const CPU: &str = "6f0b2b1e-0000-4000-8000-0000000000a3";
const START_TICKS: i64 = 1000;

/// Absolute ticks of `t0 + secs` with a 1 GHz clock.
fn tick(secs: f64) -> u64 {
    (START_TICKS as f64 + secs * 1e9).round() as u64
}

fn rel(secs: f64) -> i64 {
    (secs * 1e9) as i64
}

fn log_blocks() -> (Vec<u8>, Vec<u8>) {
    // Block 1: two static events (info, error) and one formatted event.
    let mut d = Queue::default();
    d.static_string(0, 1, "hello").static_string(0, 2, "app").static_string(0, 3, "main.rs").static_string(0, 4, "boom");
    d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(4).done());
    d.pod(2, &Pod::default().u64(0x11).u64(4).u64(2).u64(2).u64(3).u32(9).u32(2).done());
    let mut o = Queue::default();
    o.pod(0, &Pod::default().u64(0x10).u64(tick(0.1)).done());
    o.var(1, &Pod::default().u64(0x10).u64(tick(0.2)).bytes(&dyn_string(2, "x=1")).done());
    o.pod(0, &Pod::default().u64(0x11).u64(tick(0.9)).done());
    let b1 = payload(&d.0, &o.0);
    // Block 2: a tagged log whose properties override the level.
    let mut d = Queue::default();
    d.static_string(0, 1, "").static_string(0, 2, "app").static_string(0, 3, "main.rs");
    d.static_string_dep(1, 5, 2, "map").static_string_dep(1, 6, 1, "dust").static_string(0, 7, "level").static_string(0, 8, "warning");
    d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(4).done());
    let sref = |id: u64| Pod::default().u64(id).u32(0).u8(2).pad(3).done();
    d.var(3, &Pod::default().u64(0x20).u32(2).bytes(&sref(5)).bytes(&sref(6)).bytes(&sref(7)).bytes(&sref(8)).done());
    let mut o = Queue::default();
    o.var(4, &Pod::default().u64(0x10).u64(0x20).u64(tick(1.5)).bytes(&dyn_string(2, "tagged")).done());
    (b1, payload(&d.0, &o.0))
}

fn metrics_block() -> Vec<u8> {
    let mut d = Queue::default();
    d.static_string(0, 1, "frame_time").static_string(0, 2, "ms").static_string(0, 3, "game").static_string(0, 4, "f.rs");
    d.static_string(0, 5, "wait").static_string(0, 6, "ticks").static_string(0, 7, "gpu").static_string(0, 8, "rtx");
    d.pod(2, &Pod::default().u64(0x30).u64(1).u64(2).u64(3).u64(4).u32(1).u32(2).done());
    d.pod(2, &Pod::default().u64(0x31).u64(5).u64(6).u64(3).u64(4).u32(2).u32(2).done());
    let sref = |id: u64| Pod::default().u64(id).u32(0).u8(2).pad(3).done();
    d.var(3, &Pod::default().u64(0x40).u32(1).bytes(&sref(7)).bytes(&sref(8)).done());
    let mut o = Queue::default();
    o.pod(1, &Pod::default().u64(0x30).f64(16.5).u64(tick(0.5)).done());
    o.pod(0, &Pod::default().u64(0x31).u64(2_000_000_000).u64(tick(1.0)).done());
    o.pod(2, &Pod::default().u64(0x30).u64(0x40).f64(33.25).u64(tick(1.5)).done());
    payload(&d.0, &o.0)
}

fn cpu_blocks() -> (Vec<u8>, Vec<u8>) {
    let mut d = Queue::default();
    d.static_string(2, 1, "A").static_string(2, 2, "engine").static_string(2, 3, "a.rs").static_string(2, 4, "B-named");
    d.static_string(2, 5, "load");
    d.pod(0, &Pod::default().u64(0x50).u64(1).u64(2).u64(2).u64(3).u32(10).u32(1).done());
    d.pod(1, &Pod::default().u64(0x51).u64(2).u64(2).u64(3).u32(20).u32(1).done());
    d.pod(0, &Pod::default().u64(0x52).u64(5).u64(2).u64(2).u64(3).u32(30).u32(1).done());
    let mut o = Queue::default();
    o.pod(0, &Pod::default().u64(0x50).u64(tick(0.1)).done());
    o.pod(2, &Pod::default().u64(0x51).u64(4).u32(7).pad(4).u64(tick(0.2)).done());
    o.pod(4, &Pod::default().u64(0x52).u64(77).u64(0).u64(tick(0.25)).u32(1).pad(4).done());
    o.pod(3, &Pod::default().u64(0x51).u64(4).u32(7).pad(4).u64(tick(0.3)).done());
    o.pod(5, &Pod::default().u64(0x52).u64(77).u64(0).u64(tick(0.35)).u32(1).pad(4).done());
    let b1 = payload(&d.0, &o.0);
    let mut d = Queue::default();
    d.static_string(2, 1, "A").static_string(2, 2, "engine").static_string(2, 3, "a.rs").static_string(2, 6, "C");
    d.pod(0, &Pod::default().u64(0x50).u64(1).u64(2).u64(2).u64(3).u32(10).u32(1).done());
    d.pod(0, &Pod::default().u64(0x53).u64(6).u64(2).u64(2).u64(3).u32(40).u32(1).done());
    let mut o = Queue::default();
    o.pod(1, &Pod::default().u64(0x50).u64(tick(1.2)).done());
    o.pod(0, &Pod::default().u64(0x53).u64(tick(1.5)).done());
    (b1, payload(&d.0, &o.0))
}

async fn populated_lake() -> Option<TestLake> {
    let mut lake = TestLake::create(&test_pg_url().await?).await;
    lake.insert_process(P, "game.exe", 1_000_000_000, START_TICKS, &[("version", "1.2")]).await;
    let (dm, om) = rust_log_metadata();
    lake.insert_stream(LOG, P, &dm, &om, &["log"], &[]).await;
    let (dm, om) = rust_metrics_metadata();
    lake.insert_stream(MET, P, &dm, &om, &["metrics"], &[]).await;
    let (dm, om) = rust_cpu_metadata();
    lake.insert_stream(CPU, P, &dm, &om, &["cpu"], &[("thread-name", "main"), ("thread-id", "12")]).await;
    let (l1, l2) = log_blocks();
    let b = |n: u8| format!("6f0b2b1e-0000-4000-8000-0000000000{n:02x}");
    lake.insert_block((&b(1), LOG, P), (0.0, 0), (1.0, rel(1.0)), 3, 0, &l1, None).await;
    // Packed layout: this payload sits at offset 100 of a shared object.
    lake.insert_block((&b(2), LOG, P), (1.0, rel(1.0)), (2.0, rel(2.0)), 1, 3, &l2, Some(("packs/p1.bin", 100))).await;
    lake.insert_block((&b(3), LOG, P), (2.0, rel(2.0)), (3.0, rel(3.0)), 2, 4, b"not a payload", None).await;
    lake.insert_block((&b(4), MET, P), (0.0, 0), (2.0, rel(2.0)), 3, 0, &metrics_block(), None).await;
    let (c1, c2) = cpu_blocks();
    lake.insert_block((&b(5), CPU, P), (0.0, 0), (1.0, rel(1.0)), 5, 0, &c1, None).await;
    lake.insert_block((&b(6), CPU, P), (1.0, rel(1.0)), (2.0, rel(2.0)), 2, 5, &c2, None).await;
    lake.open().await;
    Some(lake)
}

#[tokio::test]
async fn every_view_answers_with_the_exact_rows() {
    let Some(lake) = populated_lake().await else { return };

    // The corrupt third block is skipped; the other two give four entries.
    assert_eq!(lake.rows("SELECT count(*) AS n FROM log_entries", None).await, vec![json!({"n": 4})]);
    assert_eq!(
        lake.rows(
            &format!(
                "SELECT msg, level, target, property_get(properties, 'map') AS map, property_get(process_properties, 'version') AS v
                 FROM view_instance('log_entries', '{P}') ORDER BY time"
            ),
            None
        )
        .await,
        vec![
            json!({"msg": "hello", "level": 4, "target": "app", "v": "1.2"}),
            json!({"msg": "x=1", "level": 4, "target": "app", "v": "1.2"}),
            json!({"msg": "boom", "level": 2, "target": "app", "v": "1.2"}),
            json!({"msg": "tagged", "level": 3, "target": "app", "map": "dust", "v": "1.2"}),
        ]
    );
    // Event time is start_time + (ticks - start_ticks) / frequency.
    assert_eq!(
        lake.rows("SELECT CAST(time AS VARCHAR) AS t, exe, computer FROM log_entries WHERE msg = 'boom'", None).await,
        vec![json!({"t": "2026-11-24T12:00:00.900+00:00", "exe": "game.exe", "computer": "host-1"})]
    );

    assert_eq!(
        lake.rows("SELECT name, unit, value, property_get(properties, 'gpu') AS gpu FROM measures ORDER BY time", None).await,
        vec![
            json!({"name": "frame_time", "unit": "ms", "value": 16.5}),
            json!({"name": "wait", "unit": "seconds", "value": 2.0}),
            json!({"name": "frame_time", "unit": "ms", "value": 33.25, "gpu": "rtx"}),
        ]
    );

    // Spans cross the block boundary (A) and a span still open at the end closes at block end (C).
    assert_eq!(
        lake.rows(
            &format!("SELECT id, parent, depth, name, filename, line, duration FROM view_instance('thread_spans', '{CPU}') ORDER BY begin"),
            None
        )
        .await,
        vec![
            json!({"id": 0, "parent": -1, "depth": 0, "name": "A", "filename": "a.rs", "line": 10, "duration": 1_100_000_000i64}),
            json!({"id": 1, "parent": 0, "depth": 1, "name": "B-named", "filename": "a.rs", "line": 20, "duration": 100_000_000}),
            json!({"id": 6, "parent": -1, "depth": 0, "name": "C", "filename": "a.rs", "line": 40, "duration": 500_000_000}),
        ]
    );
    assert_eq!(
        lake.rows(&format!("SELECT event_type, span_id, depth, name FROM view_instance('async_events', '{P}') ORDER BY time"), None).await,
        vec![
            json!({"event_type": "begin", "span_id": 77, "depth": 1, "name": "load"}),
            json!({"event_type": "end", "span_id": 77, "depth": 1, "name": "load"}),
        ]
    );

    assert_eq!(
        lake.rows("SELECT exe, property_get(properties, 'version') AS v, CAST(last_block_end_time AS VARCHAR) AS last FROM processes", None).await,
        vec![json!({"exe": "game.exe", "v": "1.2", "last": "2026-11-24T12:00:03+00:00"})]
    );
    assert_eq!(
        lake.rows("SELECT property_get(properties, 'thread-name') AS thread FROM streams WHERE array_has(tags, 'cpu')", None).await,
        vec![json!({"thread": "main"})]
    );
    assert_eq!(
        lake.rows(r#"SELECT count(*) AS n, sum(nb_objects) AS objects FROM blocks WHERE array_has("streams.tags", 'log')"#, None).await,
        vec![json!({"n": 3, "objects": 6})]
    );
}

#[tokio::test]
async fn the_query_range_prunes_blocks_and_rows() {
    let Some(lake) = populated_lake().await else { return };
    assert_eq!(
        lake.rows("SELECT msg FROM log_entries ORDER BY time", Some((0.15, 1.0))).await,
        vec![json!({"msg": "x=1"}), json!({"msg": "boom"})]
    );
    // Only the second cpu block overlaps: A's end has no begin there, C is kept.
    assert_eq!(
        lake.rows(&format!("SELECT name FROM view_instance('thread_spans', '{CPU}')"), Some((1.4, 1.6))).await,
        vec![json!({"name": "C"})]
    );
    assert_eq!(lake.rows("SELECT count(*) AS n FROM blocks", Some((1.4, 1.6))).await, vec![json!({"n": 3})]);
}

#[tokio::test]
async fn bad_sql_and_bad_instances_give_the_engines_message_and_do_not_break_later_queries() {
    let Some(lake) = populated_lake().await else { return };
    let e = format!("{:#}", lake.query("SELEC 1", None).await.err().unwrap());
    assert!(e.contains("SELEC"), "{e}");
    let e = format!("{:#}", lake.query("SELECT nope FROM log_entries", None).await.err().unwrap());
    assert!(e.contains("nope"), "{e}");
    let e = format!("{:#}", lake.query("SELECT * FROM view_instance('log_entries', 'not-a-uuid')", None).await.err().unwrap());
    assert!(e.contains("must be a UUID"), "{e}");
    let e = format!("{:#}", lake.query("SELECT * FROM thread_spans", None).await.err().unwrap());
    assert!(e.contains("thread_spans"), "{e}");
    let e = format!("{:#}", lake.query("SELECT * FROM view_instance('thread_spans', 'global')", None).await.err().unwrap());
    assert!(e.contains("no global instance"), "{e}");
    assert_eq!(lake.rows("SELECT count(*) AS n FROM measures", None).await, vec![json!({"n": 3})]);
}
