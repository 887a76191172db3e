//! Real cancellation and fairness against a real engine: a query past its timeout or dropped by
//! its reader stops using CPU, a heavy query never makes `SELECT 1` wait, and beyond the running
//! and queued caps queries are refused as overloaded. One test, in its own binary: it measures
//! the process's CPU time, which other tests running alongside would disturb.

mod common;

use common::lake::{test_pg_url, TestLake};
use futures::FutureExt;
use micromegas_analytics::engine::{Engine, EngineConfig, QueryOptions, ResultFormat, ResultStream};
use micromegas_analytics::sql::{QueryError, QueryErrorKind};
use std::time::{Duration, Instant};

/// 10^10 rows: never finishes in a test's time. The join filter keeps the optimizer from
/// answering `count(*)` from the inputs' exact row counts (it did, now and then, without it).
const HEAVY: &str = "SELECT count(*) FROM (SELECT * FROM unnest(range(100000))) a(x), (SELECT * FROM unnest(range(100000))) b(y) WHERE x + y >= 0";

/// This process's CPU time (user + system) so far, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// CPU the process burns over `window`: near zero once every query has stopped.
async fn cpu_over(window: Duration) -> Duration {
    let before = cpu_time();
    tokio::time::sleep(window).await;
    cpu_time() - before
}

async fn assert_idle(what: &str) {
    // A moment for aborted operators to unwind, then a quiet process.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let used = cpu_over(Duration::from_millis(1500)).await;
    assert!(used < Duration::from_millis(300), "{what}: the process still burned {used:?} of CPU in 1.5 s");
}

async fn select_1(engine: &Engine) -> Duration {
    let start = Instant::now();
    let r = engine.query("SELECT 1", &QueryOptions::default()).await.unwrap();
    assert_eq!(r.batches[0].num_rows(), 1);
    start.elapsed()
}

/// Starts `sql` and waits until it holds a slot (or is queued, when `queued`).
async fn start(engine: &Engine, sql: &str, running: usize, waiting: usize) -> ResultStream {
    let stream = engine.query_stream(sql, &QueryOptions::default(), ResultFormat::Json);
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.queries_running() < running || engine.queries_waiting() < waiting {
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_disconnects_stop_queries_and_heavy_ones_never_block_others() {
    let lake = TestLake::create(&test_pg_url()).await;
    let config = |timeout_ms: u64, running: usize, queued: usize| EngineConfig {
        query_timeout: Some(Duration::from_millis(timeout_ms)),
        max_concurrent_queries: Some(running),
        max_queued_queries: Some(queued),
        ..lake.config()
    };

    // A timed-out query answers as such and its work stops.
    let engine = Engine::open(config(1000, 4, 4)).await.unwrap();
    let started = Instant::now();
    let e = QueryError::of(&engine.query(HEAVY, &QueryOptions::default()).await.err().expect("the cross join can't finish"));
    assert_eq!(e.kind, QueryErrorKind::Timeout, "{}", e.message);
    assert!(e.message.contains("timed out after 1000 ms"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout fired after {:?}", started.elapsed());
    assert_idle("after a timeout").await;
    // The same through a result stream (the HTTP path).
    let mut stream = engine.query_stream(HEAVY, &QueryOptions::default(), ResultFormat::Json);
    let first = stream.next_chunk().await;
    let e = first.as_ref().err().cloned().unwrap_or_else(|| panic!("times out, got {:?}", first.map(|c| c.map(|b| String::from_utf8_lossy(&b).to_string()))));
    assert_eq!(e.kind, QueryErrorKind::Timeout, "{}", e.message);
    assert_idle("after a streamed timeout").await;
    select_1(&engine).await;

    // A heavy query running does not make SELECT 1 wait for it; dropping it (the client went
    // away) stops it.
    let engine = Engine::open(config(60_000, 4, 4)).await.unwrap();
    let mut heavy = start(&engine, HEAVY, 1, 0).await;
    let mut heavy2 = start(&engine, HEAVY, 2, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        select_1(&engine).await;
    }
    assert!(heavy.next_chunk().now_or_never().is_none(), "the heavy query finished: it can't, so SELECT 1 did not run beside it");
    assert!(heavy2.next_chunk().now_or_never().is_none());
    let abort = heavy2.abort_handle().unwrap();
    drop(heavy);
    abort.abort(); // the napi `cancel()`
    let e = heavy2.next_chunk().await.err().expect("cancelled");
    assert_eq!(e.kind, QueryErrorKind::Cancelled, "{}", e.message);
    drop(heavy2);
    assert_idle("after the heavy queries were dropped and cancelled").await;
    assert_eq!((engine.queries_running(), engine.queries_waiting()), (0, 0), "slots are freed");

    // Beyond the running and queued caps: refused as overloaded, at once.
    let engine = Engine::open(config(60_000, 1, 1)).await.unwrap();
    let running = start(&engine, HEAVY, 1, 0).await;
    let queued = start(&engine, "SELECT 1", 1, 1).await;
    let refused_at = Instant::now();
    let e = QueryError::of(&engine.query("SELECT 1", &QueryOptions::default()).await.err().expect("overloaded"));
    assert_eq!(e.kind, QueryErrorKind::Overloaded, "{}", e.message);
    assert!(e.message.contains("server busy: 1 queries running and 1 waiting"), "{}", e.message);
    assert!(refused_at.elapsed() < Duration::from_secs(1));
    drop(running);
    // The queued query gets the freed slot.
    let mut queued = queued;
    assert_eq!(queued.next_chunk().await.unwrap().unwrap(), br#"[{"Int64(1)":1}"#.to_vec());
    drop(queued);
    select_1(&engine).await;
    assert_idle("after the overload").await;
}
