//! Retention and tail sampling delete exactly what the policy says and nothing else.

mod common;
use chrono::TimeDelta;
use common::lake::{t0, TestLake};
use common::scenario::*;
use micromegas_analytics::lakehouse::{apply_retention, RetentionPolicy, RetentionReport};

const Q: &str = "6f0b2b1e-0000-4000-8000-000000000002";
const Q_CPU: &str = "6f0b2b1e-0000-4000-8000-0000000000b3";

fn files(lake: &TestLake) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![lake.store_dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(&lake.store_dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

async fn count(lake: &TestLake, sql: &str) -> i64 {
    lake.client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn cpu_streams_of_processes_without_errors_expire_early_and_everything_expires_at_max_age() {
    let mut lake = populated_lake(true).await;
    // A second process, Q, with a cpu stream but no error logged.
    lake.insert_process(Q, "quiet.exe", 1_000_000_000, START_TICKS, &[]).await;
    let (dm, om) = common::rust_cpu_metadata();
    lake.insert_stream(Q_CPU, Q, &dm, &om, &["cpu"], &[]).await;
    let (c1, _) = cpu_blocks();
    lake.insert_block(("6f0b2b1e-0000-4000-8000-0000000000c1", Q_CPU, Q), (0.0, 0), (1.0, rel(1.0)), 5, 0, &c1, None).await;
    lake.open(true).await;
    // Build the thread_spans partition of Q so its retirement can be checked.
    // A is still open at the end of Q's only block, so it ends there: two spans.
    assert_eq!(lake.rows(&format!("SELECT count(*) AS n FROM view_instance('thread_spans', '{Q_CPU}')"), None).await[0]["n"], 2);
    lake.engine().idle().await;
    let before = files(&lake);
    let q_blob = format!("blobs/{Q}/{Q_CPU}/6f0b2b1e-0000-4000-8000-0000000000c1");
    assert!(before.contains(&q_blob));

    // Ten minutes later, cpu data older than five minutes is kept only for processes with an error.
    let policy = RetentionPolicy { max_age: TimeDelta::days(1), cpu_max_age: Some(TimeDelta::minutes(5)), ..Default::default() };
    let report = apply_retention(lake.engine(), &policy, t0() + TimeDelta::minutes(10)).await.unwrap();
    assert_eq!(
        report,
        RetentionReport { cpu_blocks_sampled_out: 1, partitions_retired: 1, files_deleted: 2, ..Default::default() }
    );
    let after = files(&lake);
    let gone: Vec<_> = before.iter().filter(|f| !after.contains(f)).collect();
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(gone.contains(&&q_blob));
    assert!(gone.iter().any(|f| f.starts_with(&format!("views/thread_spans/{Q_CPU}/"))));
    assert_eq!(count(&lake, "SELECT count(*) FROM blocks").await, 6);
    assert_eq!(lake.rows(&format!("SELECT count(*) AS n FROM view_instance('thread_spans', '{CPU}')"), None).await[0]["n"], 3);
    assert_eq!(lake.rows(&format!("SELECT count(*) AS n FROM view_instance('thread_spans', '{Q_CPU}')"), None).await[0]["n"], 0);
    lake.engine().idle().await;

    // Two days later P's error is outside the window, so its cpu blocks are sampled out first; the
    // rest is past the one-day age: blocks, payloads, streams, processes, partitions.
    let report = apply_retention(lake.engine(), &policy, t0() + TimeDelta::days(2)).await.unwrap();
    assert_eq!(
        (report.cpu_blocks_sampled_out, report.blocks_expired, report.streams_deleted, report.processes_deleted),
        (2, 4, 4, 2)
    );
    assert_eq!(count(&lake, "SELECT count(*) FROM blocks").await + count(&lake, "SELECT count(*) FROM processes").await, 0);
    assert_eq!(count(&lake, "SELECT count(*) FROM lakehouse_partitions").await, 0);
    // Every payload (including the packed object) and every partition file is gone.
    assert_eq!(files(&lake), Vec::<String>::new());
}
