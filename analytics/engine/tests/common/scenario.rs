//! The shared end-to-end scenario: one process with a log, a metrics and a cpu stream, blocks in
//! both payload layouts, and one corrupt block.

use super::lake::{test_pg_url, TestLake};
use super::*;

pub const P: &str = "6f0b2b1e-0000-4000-8000-000000000001";
pub const LOG: &str = "6f0b2b1e-0000-4000-8000-0000000000a1";
pub const MET: &str = "6f0b2b1e-0000-4000-8000-0000000000a2";
pub const CPU: &str = "6f0b2b1e-0000-4000-8000-0000000000a3";
pub const START_TICKS: i64 = 1000;

/// Absolute ticks of `t0 + secs` with a 1 GHz clock.
pub fn tick(secs: f64) -> u64 {
    (START_TICKS as f64 + secs * 1e9).round() as u64
}

pub fn rel(secs: f64) -> i64 {
    (secs * 1e9) as i64
}

pub fn log_blocks() -> (Vec<u8>, Vec<u8>) {
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

/// A log block corrupt midway: one valid static event, then a record of an unknown type. Views
/// must take back the row they built from its first event.
pub fn log_block_corrupt_midway() -> Vec<u8> {
    let mut d = Queue::default();
    d.static_string(0, 1, "lost").static_string(0, 2, "app").static_string(0, 3, "main.rs");
    d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(4).done());
    let mut o = Queue::default();
    o.pod(0, &Pod::default().u64(0x10).u64(tick(2.5)).done());
    o.pod(200, &[0; 8]);
    payload(&d.0, &o.0)
}

pub fn metrics_block() -> Vec<u8> {
    metrics_payload(false)
}

/// [`metrics_block`] with a record of an unknown type after its events.
pub fn metrics_block_corrupt_midway() -> Vec<u8> {
    metrics_payload(true)
}

fn metrics_payload(corrupt_tail: bool) -> Vec<u8> {
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
    if corrupt_tail {
        o.pod(200, &[0; 8]);
    }
    payload(&d.0, &o.0)
}

pub fn cpu_blocks() -> (Vec<u8>, Vec<u8>) {
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

/// The scenario's lake; `jit` serves block views from Parquet partitions.
pub async fn populated_lake(jit: bool) -> TestLake {
    let mut lake = TestLake::create(&test_pg_url()).await;
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
    lake.insert_block((&b(3), LOG, P), (2.0, rel(2.0)), (3.0, rel(3.0)), 2, 4, &log_block_corrupt_midway(), None).await;
    lake.insert_block((&b(4), MET, P), (0.0, 0), (2.0, rel(2.0)), 3, 0, &metrics_block(), None).await;
    let (c1, c2) = cpu_blocks();
    lake.insert_block((&b(5), CPU, P), (0.0, 0), (1.0, rel(1.0)), 5, 0, &c1, None).await;
    lake.insert_block((&b(6), CPU, P), (1.0, rel(1.0)), (2.0, rel(2.0)), 2, 5, &c2, None).await;
    lake.open(jit).await;
    lake
}

