//! Issue 23, untrusted blocks: a lake on the test PostgreSQL holding good blocks next to every
//! kind of hostile one a client could have stored. Queries answer with the good rows, the bad
//! blocks are skipped and counted (`blocks_skipped`), nothing aborts, `SELECT 1` still answers,
//! and maintenance (partitions, retention) goes through them.

mod common;
use chrono::TimeDelta;
use ciborium::value::Value as Cbor;
use common::lake::{t0, test_pg_url, TestLake};
use common::scenario::*;
use common::*;
use micromegas_analytics::lakehouse::{apply_retention, RetentionPolicy};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;

/// A process with no row: its stream and blocks are inconsistent data already stored.
const GHOST: &str = "6f0b2b1e-0000-4000-8000-00000000dead";
const GHOST_LOG: &str = "6f0b2b1e-0000-4000-8000-0000000000d1";
/// A stream of P whose metadata is not CBOR.
const BAD_META_LOG: &str = "6f0b2b1e-0000-4000-8000-0000000000d2";

fn block(n: u8) -> String {
    format!("6f0b2b1e-0000-4000-8000-0000000001{n:02x}")
}

/// One static log event `msg` at `secs`.
fn one_event_block(msg: &str, secs: f64) -> Vec<u8> {
    let mut d = Queue::default();
    d.static_string(0, 1, msg).static_string(0, 2, "app").static_string(0, 3, "main.rs");
    d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(4).done());
    let mut o = Queue::default();
    o.pod(0, &Pod::default().u64(0x10).u64(tick(secs)).done());
    payload(&d.0, &o.0)
}

/// The probe of issue 23: ~4.2 MB whose objects frame inflates to 1 GiB (256 independent LZ4
/// blocks of 4 MiB of zeros each, ~16 KiB apiece), next to a valid dependencies frame.
fn lz4_bomb_payload() -> Vec<u8> {
    let block = lz4_flex::block::compress(&vec![0u8; 4 << 20]);
    let descriptor = [0x60u8, 0x70];
    let mut frame = vec![0x04, 0x22, 0x4d, 0x18, descriptor[0], descriptor[1], (twox_hash::XxHash32::oneshot(0, &descriptor) >> 8) as u8];
    for _ in 0..256 {
        frame.extend_from_slice(&(block.len() as u32).to_le_bytes());
        frame.extend_from_slice(&block);
    }
    frame.extend_from_slice(&0u32.to_le_bytes());
    let mut d = Queue::default();
    d.static_string(0, 1, "bomb");
    cbor_bytes(&Cbor::Map(vec![
        (Cbor::Text("dependencies".into()), Cbor::Bytes(lz4(&d.0))),
        (Cbor::Text("objects".into()), Cbor::Bytes(frame)),
    ]))
}

/// Rows good clients wrote, then one block of each hostile kind. Returns the lake and how many
/// blocks a query over the log streams must skip.
async fn hostile_lake(jit: bool) -> (TestLake, u64) {
    let mut lake = TestLake::create(&test_pg_url()).await;
    lake.insert_process(P, "game.exe", 1_000_000_000, START_TICKS, &[]).await;
    let (dm, om) = rust_log_metadata();
    lake.insert_stream(LOG, P, &dm, &om, &["log"], &[]).await;
    let (good, _) = log_blocks();
    let ids = |n: u8| (block(n), LOG, P);
    let insert = |n: u8, secs: f64, nb_objects: i32, offset: i64, payload: Vec<u8>| {
        let lake = &lake;
        async move {
            let (b, s, p) = ids(n);
            lake.insert_block((&b, s, p), (secs, rel(secs)), (secs + 1.0, rel(secs + 1.0)), nb_objects, offset, &payload, None).await;
        }
    };
    // Good: hello, x=1, boom.
    insert(1, 0.0, 3, 0, good.clone()).await;
    // A count no payload could hold, on a valid payload: reserving for it aborted the process.
    insert(2, 1.0, i32::MAX, 3, one_event_block("lying count", 1.5)).await;
    // Truncated payload.
    insert(3, 2.0, 3, 4, good[..good.len() / 2].to_vec()).await;
    // LZ4 bomb.
    insert(4, 3.0, 1, 7, lz4_bomb_payload()).await;
    // A block naming P's stream but another (unknown) process.
    lake.insert_block((&block(5), LOG, GHOST), (4.0, rel(4.0)), (5.0, rel(5.0)), 1, 8, &one_event_block("foreign", 4.5), None).await;
    // A stream whose process row is missing, with a valid block.
    lake.insert_stream(GHOST_LOG, GHOST, &dm, &om, &["log"], &[]).await;
    lake.insert_block((&block(6), GHOST_LOG, GHOST), (0.0, 0), (1.0, rel(1.0)), 1, 0, &one_event_block("ghost", 0.5), None).await;
    // A payload that is gone from the object store.
    insert(7, 5.0, 1, 9, one_event_block("vanished", 5.5)).await;
    std::fs::remove_file(lake.store_dir.join(format!("blobs/{P}/{LOG}/{}", block(7)))).unwrap();
    // A packed payload whose row claims 1 TiB: read as a range, that was allocated before reading.
    let (b8, _, _) = ids(8);
    lake.insert_block((&b8, LOG, P), (6.0, rel(6.0)), (7.0, rel(7.0)), 1, 10, &one_event_block("huge range", 6.5), Some(("packs/p.bin", 0))).await;
    lake.client.execute("UPDATE blocks SET payload_size = 1099511627776 WHERE block_id = $1::text::uuid", &[&b8]).await.unwrap();
    // A stream whose metadata is not CBOR.
    lake.insert_stream(BAD_META_LOG, P, b"\xff\x00", b"\xff", &["log"], &[]).await;
    lake.insert_block((&block(9), BAD_META_LOG, P), (0.0, 0), (1.0, rel(1.0)), 1, 0, &one_event_block("bad metadata", 0.5), None).await;
    lake.open(jit).await;
    (lake, 7)
}

fn skipped(lake: &TestLake) -> u64 {
    lake.engine().stats().blocks_skipped.load(Relaxed)
}

fn msgs(rows: &[serde_json::Value]) -> Vec<&str> {
    rows.iter().map(|r| r["msg"].as_str().unwrap()).collect()
}

const GOOD_ROWS: [&str; 4] = ["hello", "x=1", "boom", "lying count"];

#[tokio::test]
async fn queries_answer_with_the_good_rows_and_count_the_hostile_blocks() {
    let (lake, bad) = hostile_lake(false).await;
    let rows = lake.rows("SELECT msg FROM log_entries ORDER BY time", None).await;
    assert_eq!(msgs(&rows), GOOD_ROWS);
    assert_eq!(skipped(&lake), bad, "every hostile block counted once");

    // The process's own instance reads the blocks that name it: the foreign and ghost ones do not.
    let before = skipped(&lake);
    let rows = lake.rows(&format!("SELECT msg FROM view_instance('log_entries', '{P}') ORDER BY time"), None).await;
    assert_eq!(msgs(&rows), GOOD_ROWS);
    assert_eq!(skipped(&lake) - before, bad - 2);

    // Views over the same blocks, and the server still answers anything else.
    let stats = lake.rows("SELECT sum(count) AS n FROM log_stats", None).await;
    assert_eq!(stats, vec![json!({"n": 4})]);
    assert_eq!(lake.rows("SELECT 1 AS one", None).await, vec![json!({"one": 1})]);
    // `blocks` describes only blocks whose stream and process rows exist.
    let listed = lake.rows("SELECT count(*) AS n FROM blocks", None).await;
    assert_eq!(listed, vec![json!({"n": 7})]);
}

#[tokio::test]
async fn partitions_are_built_past_hostile_blocks_reused_and_retention_goes_through() {
    let (lake, bad) = hostile_lake(true).await;
    let engine = lake.engine();
    // Maintenance builds the global hour past every hostile block; its freshness counts the
    // skipped blocks too, or every pass (and query) would build it again.
    let (begin, end) = (common::lake::at(-3600.0), common::lake::at(7200.0));
    let first = engine.materialize_global("log_entries", begin, end).await.unwrap();
    assert_eq!((first.partitions_written, first.partitions_fresh, first.rows), (1, 0, 4));
    assert_eq!(skipped(&lake), bad);
    let again = engine.materialize_global("log_entries", begin, end).await.unwrap();
    assert_eq!((again.partitions_written, again.partitions_fresh, again.rows), (0, 1, 4));
    assert_eq!(msgs(&lake.rows("SELECT msg FROM log_entries ORDER BY time", None).await), GOOD_ROWS);
    assert_eq!(skipped(&lake), bad, "answered from the partition: no block decoded again");

    // A process instance's partition, built by the first query, reused by the next.
    let sql = format!("SELECT msg FROM view_instance('log_entries', '{P}') ORDER BY time");
    let s = engine.stats();
    let written = s.partitions_written.load(Relaxed);
    assert_eq!(msgs(&lake.rows(&sql, None).await), GOOD_ROWS);
    engine.idle().await;
    assert_eq!(s.partitions_written.load(Relaxed), written + 1);
    let reused = s.partitions_reused.load(Relaxed);
    assert_eq!(msgs(&lake.rows(&sql, None).await), GOOD_ROWS);
    assert_eq!((s.partitions_written.load(Relaxed), s.partitions_reused.load(Relaxed)), (written + 1, reused + 1));

    // Retention walks the same rows: it expires everything, the hostile rows included.
    // With tail sampling on, its keep query reads log_entries over the hostile blocks first.
    let policy = RetentionPolicy { max_age: TimeDelta::days(1), cpu_max_age: Some(TimeDelta::minutes(5)), ..Default::default() };
    let report = apply_retention(engine, &policy, t0() + TimeDelta::days(2)).await.unwrap();
    assert_eq!(report.blocks_expired, 9, "{report:?}");
    assert_eq!(lake.rows("SELECT count(*) AS n FROM log_entries", None).await, vec![json!({"n": 0})]);
    assert_eq!(lake.rows("SELECT 1 AS one", None).await, vec![json!({"one": 1})]);
}
