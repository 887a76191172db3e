//! JIT partitions: the first query answers from the blocks and writes Parquet partitions in the
//! background, the next reads no block, and a new block invalidates exactly the partition it falls in.

mod common;
use common::lake::at;
use common::scenario::*;
use common::*;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;

fn counters(lake: &common::lake::TestLake) -> (u64, u64, u64) {
    let s = lake.engine().stats();
    (s.blocks_read.load(Relaxed), s.partitions_written.load(Relaxed), s.partitions_reused.load(Relaxed))
}

#[tokio::test]
async fn a_partition_is_reused_then_rebuilt_when_a_block_arrives() {
    let lake = populated_lake(true).await;
    let sql = format!("SELECT msg FROM view_instance('log_entries', '{P}') ORDER BY time");

    let first = lake.rows(&sql, None).await;
    assert_eq!(first.len(), 4);
    // Three log blocks (one corrupt) in one insert-time hour: every block read, one partition
    // written once the query has answered.
    lake.engine().idle().await;
    assert_eq!(counters(&lake), (3, 1, 0));
    let files: i64 = lake
        .client
        .query_one(
            "SELECT count(*) FROM lakehouse_partitions WHERE view_set_name = 'log_entries' AND view_instance_id = $1 AND num_rows = 4",
            &[&P],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(files, 1);

    // Second query: same rows, no block read, the partition reused.
    assert_eq!(lake.rows(&sql, None).await, first);
    assert_eq!(counters(&lake), (3, 1, 1));

    // A new block in the same hour makes the partition stale: it is rebuilt with the new row,
    // and the replaced file is queued for deletion.
    let mut d = Queue::default();
    d.static_string(0, 1, "late").static_string(0, 2, "app").static_string(0, 3, "main.rs");
    d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(4).done());
    let mut o = Queue::default();
    o.pod(0, &Pod::default().u64(0x10).u64(tick(3.5)).done());
    let late = "6f0b2b1e-0000-4000-8000-0000000000f1";
    lake.insert_block((late, LOG, P), (3.0, rel(3.0)), (4.0, rel(4.0)), 1, 6, &payload(&d.0, &o.0), None).await;
    let third = lake.rows(&sql, None).await;
    assert_eq!(third.last(), Some(&json!({"msg": "late"})));
    assert_eq!(third.len(), 5);
    lake.engine().idle().await;
    assert_eq!(counters(&lake), (7, 2, 1));
    let (rows, temp): (i64, i64) = {
        let r = lake
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM lakehouse_partitions WHERE view_set_name = 'log_entries'),
                        (SELECT count(*) FROM temporary_files)",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((rows, temp), (1, 1));
    assert!(at(3.5) > at(3.0));
}

#[tokio::test]
async fn thread_spans_partition_covers_the_stream_and_a_range_reads_only_its_blocks() {
    let lake = populated_lake(true).await;
    let sql = format!("SELECT name FROM view_instance('thread_spans', '{CPU}') ORDER BY begin");
    assert_eq!(lake.rows(&sql, None).await.len(), 3);
    lake.engine().idle().await;
    assert_eq!(counters(&lake), (2, 1, 0));
    // A range query decodes only the blocks in range (the partition holds the stream's whole
    // life) and keeps only overlapping spans.
    assert_eq!(lake.rows(&sql, Some((1.4, 1.6))).await, vec![json!({"name": "C"})]);
    assert_eq!(counters(&lake), (3, 1, 0));
}

#[tokio::test]
async fn maintenance_materializes_global_hours_once_and_queries_then_read_no_block() {
    let lake = populated_lake(true).await;
    let engine = lake.engine();
    let (begin, end) = (at(-3600.0), at(7200.0));
    // Log blocks were inserted within one hour (t0 + ~1.5–3.5 s): one partition with the 4 good rows.
    let first = engine.materialize_global("log_entries", begin, end).await.unwrap();
    assert_eq!((first.partitions_written, first.partitions_fresh, first.rows), (1, 0, 4));
    let again = engine.materialize_global("log_entries", begin, end).await.unwrap();
    assert_eq!((again.partitions_written, again.partitions_fresh, again.rows), (0, 1, 4));
    let blocks_before = counters(&lake).0;
    assert_eq!(lake.rows("SELECT count(*) AS n FROM log_entries", Some((0.0, 10.0))).await, vec![json!({"n": 4})]);
    assert_eq!(counters(&lake).0, blocks_before, "the query read Parquet only");
    // An hour outside the window is not touched; views without global hourly partitions are refused.
    let none = engine.materialize_global("measures", at(7200.0), at(10800.0)).await.unwrap();
    assert_eq!(none, Default::default());
    assert!(engine.materialize_global("thread_spans", begin, end).await.unwrap_err().to_string().contains("no global hourly partitions"));
    assert!(engine.materialize_global("nope", begin, end).await.is_err());
}

#[tokio::test]
async fn a_range_over_a_small_share_of_a_stale_hour_reads_its_blocks_without_building_the_hour() {
    let lake = populated_lake(true).await;
    // Five more one-event log blocks, 10..14 s, in the same insert-time hour: eight in all.
    for i in 0..5u8 {
        let secs = 10.0 + i as f64;
        let mut d = Queue::default();
        d.static_string(0, 1, &format!("later {i}")).static_string(0, 2, "app").static_string(0, 3, "main.rs");
        d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(4).done());
        let mut o = Queue::default();
        o.pod(0, &Pod::default().u64(0x10).u64(tick(secs + 0.5)).done());
        let id = format!("6f0b2b1e-0000-4000-8000-0000000001{i:02}");
        lake.insert_block((&id, LOG, P), (secs, rel(secs)), (secs + 1.0, rel(secs + 1.0)), 1, 6 + i as i64, &payload(&d.0, &o.0), None).await;
    }
    let sql = format!("SELECT msg FROM view_instance('log_entries', '{P}') ORDER BY time");
    // One block of eight overlaps 12.2..12.8 s: it is decoded, and no partition is written.
    assert_eq!(lake.rows(&sql, Some((12.2, 12.8))).await, vec![json!({"msg": "later 2"})]);
    assert_eq!(counters(&lake), (1, 0, 0));
    // A range over most of the hour builds its partition; later ranges read it.
    assert_eq!(lake.rows(&sql, Some((0.0, 20.0))).await.len(), 9);
    lake.engine().idle().await;
    assert_eq!(counters(&lake), (9, 1, 0));
    assert_eq!(lake.rows(&sql, Some((12.2, 12.8))).await, vec![json!({"msg": "later 2"})]);
    assert_eq!(counters(&lake), (9, 1, 1));
}

#[tokio::test]
async fn a_filtered_query_builds_only_its_rows_and_the_partition_follows_in_the_background() {
    let lake = populated_lake(true).await;
    let errors = format!("SELECT msg, level FROM view_instance('log_entries', '{P}') WHERE level <= 3 ORDER BY time");
    // Answered from the three blocks; the hour's partition (all four rows) is then written from
    // a second read of them.
    let expected = vec![json!({"msg": "boom", "level": 2}), json!({"msg": "tagged", "level": 3})];
    assert_eq!(lake.rows(&errors, None).await, expected);
    lake.engine().idle().await;
    assert_eq!(counters(&lake), (6, 1, 0));
    let n: i64 = lake
        .client
        .query_one("SELECT num_rows FROM lakehouse_partitions WHERE view_set_name = 'log_entries' AND view_instance_id = $1", &[&P])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4, "the partition holds every row, not just the query's");
    // Later queries, filtered or not, read the partition.
    assert_eq!(lake.rows(&errors, None).await, expected);
    let all = format!("SELECT count(*) AS n FROM view_instance('log_entries', '{P}') WHERE target = 'app'");
    assert_eq!(lake.rows(&all, None).await, vec![json!({"n": 4})]);
    assert_eq!(counters(&lake), (6, 1, 2));
}
