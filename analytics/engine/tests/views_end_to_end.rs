//! From stored blocks and PostgreSQL metadata to SQL rows, through every view: exact rows,
//! time-range pruning, property_get, packed payloads, corrupt blocks and bad SQL.

mod common;
use common::scenario::*;
use serde_json::json;

/// A block that turns out corrupt after some valid events gives no row: the rows built from its
/// first events are taken back (each block is walked once).
#[test]
fn a_block_corrupt_midway_gives_no_row() {
    use common::{rust_log_metadata, rust_metrics_metadata};
    use micromegas_analytics::decode::StreamTypes;
    use micromegas_analytics::views::rows_of_one_block;
    let rows = |view: &str, (dm, om): (Vec<u8>, Vec<u8>), payload: &[u8]| {
        // Each block declares 3 events, as the full ones hold.
        rows_of_one_block(view, StreamTypes::try_from_cbor(&dm, &om).unwrap(), payload, 3, 1).unwrap()
    };
    assert_eq!(rows("measures", rust_metrics_metadata(), &metrics_block()), 3);
    assert_eq!(rows("measures", rust_metrics_metadata(), &metrics_block_corrupt_midway()), 0);
    assert_eq!(rows("log_entries", rust_log_metadata(), &log_blocks().0), 3);
    assert_eq!(rows("log_entries", rust_log_metadata(), &log_block_corrupt_midway()), 0);
}

#[tokio::test]
async fn every_view_answers_with_the_exact_rows_from_partitions() {
    let lake = populated_lake(true).await;
    check_every_view(&lake).await;
}

#[tokio::test]
async fn every_view_answers_with_the_exact_rows_straight_from_blocks() {
    let lake = populated_lake(false).await;
    check_every_view(&lake).await;
}

async fn check_every_view(lake: &common::lake::TestLake) {

    // The third block, corrupt after its first event, gives no row; the other two give four.
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
            json!({"msg": "hello", "level": 4, "target": "app", "map": null, "v": "1.2"}),
            json!({"msg": "x=1", "level": 4, "target": "app", "map": null, "v": "1.2"}),
            json!({"msg": "boom", "level": 2, "target": "app", "map": null, "v": "1.2"}),
            json!({"msg": "tagged", "level": 3, "target": "app", "map": "dust", "v": "1.2"}),
        ]
    );
    // log_stats: the same entries counted per minute, process, level and target.
    assert_eq!(
        lake.rows("SELECT CAST(time_bin AS VARCHAR) AS bin, process_id, level, target, count FROM log_stats ORDER BY level", None).await,
        vec![
            json!({"bin": "2026-11-24T12:00:00Z", "process_id": P, "level": 2, "target": "app", "count": 1}),
            json!({"bin": "2026-11-24T12:00:00Z", "process_id": P, "level": 3, "target": "app", "count": 1}),
            json!({"bin": "2026-11-24T12:00:00Z", "process_id": P, "level": 4, "target": "app", "count": 2}),
        ]
    );
    let refused = lake.query(&format!("SELECT * FROM view_instance('log_stats', '{P}')"), None).await.err().expect("log_stats has no process instance");
    assert!(refused.to_string().contains("only a global instance"), "{refused}");
    // Event time is start_time + (ticks - start_ticks) / frequency.
    assert_eq!(
        lake.rows("SELECT CAST(time AS VARCHAR) AS t, exe, computer FROM log_entries WHERE msg = 'boom'", None).await,
        vec![json!({"t": "2026-11-24T12:00:00.900Z", "exe": "game.exe", "computer": "host-1"})]
    );

    // Filters tested while decoding (the first queries over measures read its blocks): an integer
    // in ticks is reported in seconds, and found under that unit.
    assert_eq!(
        lake.rows("SELECT name, value FROM measures WHERE unit = 'seconds'", None).await,
        vec![json!({"name": "wait", "value": 2.0})]
    );
    assert_eq!(
        lake.rows("SELECT value FROM measures WHERE name IN ('frame_time', 'nope') AND unit = 'ms' AND target <> 'x' ORDER BY time", None).await,
        vec![json!({"value": 16.5}), json!({"value": 33.25})]
    );
    assert_eq!(
        lake.rows("SELECT msg FROM log_entries WHERE level < 3 AND target = 'app'", None).await,
        vec![json!({"msg": "boom"})]
    );
    assert_eq!(
        lake.rows("SELECT name, unit, value, property_get(properties, 'gpu') AS gpu FROM measures ORDER BY time", None).await,
        vec![
            json!({"name": "frame_time", "unit": "ms", "value": 16.5, "gpu": null}),
            json!({"name": "wait", "unit": "seconds", "value": 2.0, "gpu": null}),
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
        vec![json!({"exe": "game.exe", "v": "1.2", "last": "2026-11-24T12:00:03Z"})]
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
    let lake = populated_lake(true).await;
    assert_eq!(
        lake.rows("SELECT msg FROM log_entries ORDER BY time", Some((0.15, 1.0))).await,
        vec![json!({"msg": "x=1"}), json!({"msg": "boom"})]
    );
    // Only the second cpu block overlaps: A (0.1-1.2 s) ends before the range, C is kept.
    assert_eq!(
        lake.rows(&format!("SELECT name FROM view_instance('thread_spans', '{CPU}')"), Some((1.4, 1.6))).await,
        vec![json!({"name": "C"})]
    );
    // No column read at all: the rows are still counted.
    assert_eq!(lake.rows(&format!("SELECT count(*) AS n FROM view_instance('thread_spans', '{CPU}')"), Some((1.4, 1.6))).await, vec![json!({"n": 1})]);
    // A range inside A reads only the second block: A's end closes a span that began before it,
    // clipped to the block's begin (1.0 s), with an id of its own (its begin was not read).
    assert_eq!(
        lake.rows(&format!("SELECT name, depth, parent, duration, id < 0 AS synthetic FROM view_instance('thread_spans', '{CPU}')"), Some((1.1, 1.3))).await,
        vec![json!({"name": "A", "depth": 0, "parent": -1, "duration": 200_000_000, "synthetic": true})]
    );
    assert_eq!(lake.rows("SELECT count(*) AS n FROM blocks", Some((1.4, 1.6))).await, vec![json!({"n": 3})]);
}

#[tokio::test]
async fn bad_sql_and_bad_instances_give_the_engines_message_and_do_not_break_later_queries() {
    let lake = populated_lake(true).await;
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

/// Descriptor ids are only unique within a block. A block whose first record is of a type the
/// walk skips (a variable-size type this reader does not know) must still start with no
/// descriptor remembered from the block before: here both blocks use id 0x10 for different calls.
#[tokio::test]
async fn descriptors_do_not_leak_into_a_block_that_starts_with_a_skipped_record() {
    use common::*;
    let (mut lake, future) = lake_with_a_log_stream_of_a_newer_producer().await;
    let block = |msg: &str, level: u32, skipped_first: bool, secs: f64| {
        let mut d = Queue::default();
        d.static_string(0, 1, msg).static_string(0, 2, "app").static_string(0, 3, "main.rs");
        d.pod(2, &Pod::default().u64(0x10).u64(1).u64(2).u64(2).u64(3).u32(7).u32(level).done());
        let mut o = Queue::default();
        if skipped_first {
            o.var(future, b"from a newer producer");
        }
        o.pod(0, &Pod::default().u64(0x10).u64(tick(secs)).done());
        payload(&d.0, &o.0)
    };
    // Pairs of blocks, so that each core's share of them (rows are built on every core) holds
    // at least one block followed by one that starts with a skipped record.
    let pairs = std::thread::available_parallelism().map_or(1, |n| n.get()) as u8;
    let b = |n: u8| format!("6f0b2b1e-0000-4000-8000-0000000001{n:02x}");
    let mut expected = Vec::new();
    for i in 0..2 * pairs {
        let (msg, level, skipped_first) = if i % 2 == 0 { ("first", 4, false) } else { ("second", 2, true) };
        let t = i as f64;
        let payload = block(msg, level, skipped_first, t + 0.5);
        lake.insert_block((&b(i), LOG, P), (t, rel(t)), (t + 1.0, rel(t + 1.0)), 1 + skipped_first as i32, i as i64 * 2, &payload, None).await;
        expected.push(json!({"msg": msg, "level": level}));
    }
    for jit in [false, true] {
        lake.open(jit).await;
        assert_eq!(lake.rows("SELECT msg, level FROM log_entries ORDER BY time", None).await, expected, "jit {jit}");
    }
}

/// Long runs of fixed-size events are read by each view's fast path, straight from the objects
/// buffer; the first event of each descriptor, variable-size events and skipped records go through
/// the walk. Rows must be the walk's: 300 descriptors whose ids share the 64 cache slots (some
/// with messages of several chunks), runs cut
/// by other records, level and time filters, and a block that names a missing descriptor late is
/// dropped whole.
#[tokio::test]
async fn fast_path_rows_match_the_events_exactly() {
    use common::*;
    let (mut lake, future) = lake_with_a_log_stream_of_a_newer_producer().await;
    // Descriptor ids are addresses 8 apart, as a producer's statics are.
    let desc_id = |i: u64| 0x7f00_0000_1000u64 + 8 * i;
    let (level_of, target_of) = (|i: u64| 1 + (i % 6) as u32, |i: u64| format!("t{}", i % 3));
    // Some messages span several 16-byte chunks.
    let msg_of = |i: u64| if i.is_multiple_of(7) { format!("m{i}: a message longer than two chunks") } else { format!("m{i}") };
    let mut d = Queue::default();
    for t in 0..3 {
        d.static_string(0, 100 + t, &format!("t{t}"));
    }
    d.static_string(0, 3, "main.rs");
    for i in 0..300 {
        d.static_string(0, 1000 + i, &msg_of(i));
        d.pod(2, &Pod::default().u64(desc_id(i)).u64(1000 + i).u64(100 + i % 3).u64(3).u64(3).u32(7).u32(level_of(i)).done());
    }
    let secs = |n: usize| 0.25 + n as f64 * 1e-4;
    let mut o = Queue::default();
    let mut expected = Vec::new();
    for n in 0..3000usize {
        let i = (n as u64 * 7919) % 300;
        if n == 1500 {
            o.var(1, &Pod::default().u64(desc_id(i)).u64(tick(secs(n))).bytes(&dyn_string(2, "dynamic")).done());
            expected.push(json!({"msg": "dynamic", "level": level_of(i), "target": target_of(i)}));
            continue;
        }
        if n == 2000 {
            o.var(future, b"from a newer producer");
        }
        o.pod(0, &Pod::default().u64(desc_id(i)).u64(tick(secs(n))).done());
        expected.push(json!({"msg": msg_of(i), "level": level_of(i), "target": target_of(i)}));
    }
    let events = o.0.len() / 17;
    lake.insert_block(("6f0b2b1e-0000-4000-8000-000000000301", LOG, P), (0.0, 0), (1.0, rel(1.0)), events as i32 + 1, 0, &payload(&d.0, &o.0), None).await;
    // A second block: a long valid run, then an event whose descriptor is not in the block.
    let mut late = Queue::default();
    for n in 0..500 {
        late.pod(0, &Pod::default().u64(desc_id(n % 300)).u64(tick(1.1 + n as f64 * 1e-4)).done());
    }
    late.pod(0, &Pod::default().u64(0xdead).u64(tick(1.2)).done());
    lake.insert_block(("6f0b2b1e-0000-4000-8000-000000000302", LOG, P), (1.0, rel(1.0)), (2.0, rel(2.0)), 501, events as i64 + 1, &payload(&d.0, &late.0), None).await;
    let in_range: Vec<_> = (0..3000).filter(|&n| (0.4..=0.5).contains(&secs(n))).map(|n| expected[n].clone()).collect();
    let errors: Vec<_> = expected.iter().filter(|r| r["level"].as_u64().unwrap() <= 2).cloned().collect();
    for jit in [false, true] {
        lake.open(jit).await;
        assert_eq!(lake.rows("SELECT msg, level, target FROM log_entries ORDER BY time", None).await, expected, "jit {jit}");
        assert_eq!(lake.rows("SELECT msg, level, target FROM log_entries WHERE level <= 2 ORDER BY time", None).await, errors, "jit {jit}");
        assert_eq!(lake.rows("SELECT msg, level, target FROM log_entries ORDER BY time", Some((0.4, 0.5))).await, in_range, "jit {jit}");
    }
}

/// `thread_spans`' fast path: begin and end events of 100 descriptors whose ids share the cache
/// slots, nested two deep, a named span (read by the walk) in the middle; a later block that names
/// a missing descriptor is dropped whole, and the spans still open end with the last block read.
#[tokio::test]
async fn fast_path_spans_match_the_events_exactly() {
    use common::*;
    let mut lake = lake_with_one_stream(CPU, rust_cpu_metadata(), "cpu").await;
    let desc_id = |i: u64| 0x7f00_0000_1000u64 + 8 * i;
    let mut d = Queue::default();
    d.static_string(2, 2, "engine").static_string(2, 3, "a.rs").static_string(2, 4, "named");
    for i in 0..100 {
        d.static_string(2, 1000 + i, &format!("s{i}"));
        d.pod(0, &Pod::default().u64(desc_id(i)).u64(1000 + i).u64(2).u64(2).u64(3).u32(i as u32).u32(1).done());
    }
    d.pod(1, &Pod::default().u64(0x99).u64(2).u64(2).u64(3).u32(500).u32(1).done());
    let mut o = Queue::default();
    let mut expected = Vec::new();
    // Pair n: an outer span 100 µs long holding an inner one from +20 to +60 µs.
    let t = |n: u64, us: u64| 0.1 + (n * 100 + us) as f64 * 1e-6;
    for n in 0..1000u64 {
        let (a, b) = ((n * 37) % 100, (n * 61 + 7) % 100);
        o.pod(0, &Pod::default().u64(desc_id(a)).u64(tick(t(n, 0))).done());
        if n == 500 {
            o.pod(2, &Pod::default().u64(0x99).u64(4).u32(7).pad(4).u64(tick(t(n, 20))).done());
            o.pod(3, &Pod::default().u64(0x99).u64(4).u32(7).pad(4).u64(tick(t(n, 60))).done());
            expected.push(json!({"name": format!("s{a}"), "depth": 0, "line": a, "duration": 100_000}));
            expected.push(json!({"name": "named", "depth": 1, "line": 500, "duration": 40_000}));
        } else {
            o.pod(0, &Pod::default().u64(desc_id(b)).u64(tick(t(n, 20))).done());
            o.pod(1, &Pod::default().u64(desc_id(b)).u64(tick(t(n, 60))).done());
            expected.push(json!({"name": format!("s{a}"), "depth": 0, "line": a, "duration": 100_000}));
            expected.push(json!({"name": format!("s{b}"), "depth": 1, "line": b, "duration": 40_000}));
        }
        o.pod(1, &Pod::default().u64(desc_id(a)).u64(tick(t(n, 100))).done());
    }
    lake.insert_block(("6f0b2b1e-0000-4000-8000-000000000401", CPU, P), (0.0, 0), (0.5, rel(0.5)), 4000, 0, &payload(&d.0, &o.0), None).await;
    let mut late = Queue::default();
    for n in 0..200 {
        late.pod(0, &Pod::default().u64(desc_id(n % 100)).u64(tick(0.6 + n as f64 * 1e-6)).done());
    }
    late.pod(1, &Pod::default().u64(0xdead).u64(tick(0.7)).done());
    lake.insert_block(("6f0b2b1e-0000-4000-8000-000000000402", CPU, P), (0.5, rel(0.5)), (1.0, rel(1.0)), 201, 4000, &payload(&d.0, &late.0), None).await;
    for jit in [false, true] {
        lake.open(jit).await;
        let sql = format!("SELECT name, depth, line, duration FROM view_instance('thread_spans', '{CPU}') ORDER BY begin, depth");
        assert_eq!(lake.rows(&sql, None).await, expected, "jit {jit}");
    }
}

/// Spans are rebuilt in parts (consecutive blocks, each on its own thread, with its own call
/// stack) and stitched in order. Spans nested up to 7 deep across 40 blocks, a corrupt block in the
/// middle of a part (its ends close spans of the block before: all taken back), read whole and for
/// a time range that starts inside open spans: the rows are those of one call stack run through
/// the events of the blocks read, from a model written here.
#[tokio::test]
async fn spans_rebuilt_in_parts_match_one_call_stack() {
    use common::*;
    let mut lake = lake_with_one_stream(CPU, rust_cpu_metadata(), "cpu").await;
    let mut d = Queue::default();
    d.static_string(2, 2, "engine").static_string(2, 3, "a.rs");
    for i in 0..5 {
        d.static_string(2, 1000 + i, &format!("s{i}"));
        d.pod(0, &Pod::default().u64(0x500 + i).u64(1000 + i).u64(2).u64(2).u64(3).u32(i as u32).u32(1).done());
    }
    #[derive(Clone, Copy)]
    struct Ev {
        object: i64,
        ns: i64,
        begin: bool,
        name: u64,
    }
    const PER_BLOCK: usize = 60;
    const CORRUPT: usize = 17;
    let ns = |n: usize| 1_000_000 + n as i64 * 10_000;
    let (mut seed, mut open) = (12345u64, Vec::new());
    let mut blocks: Vec<(i64, i64, Vec<Ev>)> = Vec::new();
    let mut object = 0;
    for b in 0..40 {
        let mut o = Queue::default();
        let mut events = Vec::new();
        for n in b * PER_BLOCK..(b + 1) * PER_BLOCK {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let begin = open.is_empty() || (open.len() < 7 && (seed >> 33) % 2 == 0);
            let name = if begin { (seed >> 40) % 5 } else { open.pop().unwrap() };
            if begin {
                open.push(name);
            }
            o.pod(!begin as u8, &Pod::default().u64(0x500 + name).u64(tick(ns(n) as f64 * 1e-9)).done());
            events.push(Ev { object, ns: ns(n), begin, name });
            object += 1;
        }
        if b == CORRUPT {
            o.pod(1, &Pod::default().u64(0xdead).u64(tick(ns((b + 1) * PER_BLOCK - 1) as f64 * 1e-9)).done());
            object += 1;
        }
        let (begin, end) = (ns(b * PER_BLOCK) - 2_000, ns((b + 1) * PER_BLOCK - 1) + 2_000);
        let count = (o.0.len() / 17) as i32;
        let id = format!("6f0b2b1e-0000-4000-8000-0000000005{b:02x}");
        let secs = |ns: i64| ns as f64 * 1e-9;
        lake.insert_block((&id, CPU, P), (secs(begin), begin), (secs(end), end), count, object - count as i64, &payload(&d.0, &o.0), None).await;
        blocks.push((begin, end, if b == CORRUPT { Vec::new() } else { events }));
    }
    // The model: one call stack through the events read. k end events find it empty: k spans
    // were open when the first block read began, clipped to its begin, outermost first.
    let model = |read: &[(i64, i64, Vec<Ev>)], range: Option<(i64, i64)>| {
        let events: Vec<Ev> = read.iter().flat_map(|b| b.2.iter().copied()).collect();
        let mut depth = 0usize;
        let orphans: Vec<Ev> = events.iter().filter(|e| if e.begin { depth += 1; false } else if depth == 0 { true } else { depth -= 1; false }).copied().collect();
        let (start, last_end) = (read[0].0, read[read.len() - 1].1);
        let mut rows: Vec<(i64, i64, usize, i64, i64, u64)> = Vec::new(); // id, parent, depth, begin, end, name
        let mut stack: Vec<usize> = Vec::new();
        for o in orphans.iter().rev() {
            rows.push((-2 - o.object, stack.last().map_or(-1, |&r| rows[r].0), stack.len(), start.min(o.ns), o.ns, o.name));
            stack.push(rows.len() - 1);
        }
        for e in &events {
            if e.begin {
                rows.push((e.object, stack.last().map_or(-1, |&r| rows[r].0), stack.len(), e.ns, i64::MIN, e.name));
                stack.push(rows.len() - 1);
            } else {
                rows[stack.pop().unwrap()].4 = e.ns;
            }
        }
        for r in stack {
            rows[r].4 = last_end.max(rows[r].3);
        }
        rows.sort();
        rows.into_iter()
            .filter(|r| range.is_none_or(|(b, e)| r.3 <= e && r.4 >= b))
            .map(|(id, parent, depth, b, e, name)| json!({"id": id, "parent": parent, "depth": depth, "duration": e - b, "name": format!("s{name}")}))
            .collect::<Vec<_>>()
    };
    let whole = model(&blocks, None);
    let range = (ns(10 * PER_BLOCK + 30) + 5_000, ns(30 * PER_BLOCK + 30) + 5_000);
    let in_range = model(&blocks[10..=30], Some(range));
    assert!(whole.len() > 1000 && whole.iter().any(|r| r["depth"] == 6), "nested spans across blocks");
    assert!(in_range.iter().any(|r| r["id"].as_i64().unwrap() < -1 && r["depth"].as_u64().unwrap() > 0), "clipped spans inside clipped spans");
    let sql = format!("SELECT id, parent, depth, duration, name FROM view_instance('thread_spans', '{CPU}') ORDER BY id");
    for jit in [false, true] {
        lake.open(jit).await;
        assert_eq!(lake.rows(&sql, None).await, whole, "jit {jit}");
        assert_eq!(lake.rows(&sql, Some((range.0 as f64 * 1e-9, range.1 as f64 * 1e-9))).await, in_range, "jit {jit}");
    }
}

/// `measures`' fast path: integer and float events of 200 descriptors whose ids share the cache
/// slots, in one run (both 24 bytes), some in ticks (integer values become seconds, float ones
/// keep `ticks`), a tagged event (read by the walk) cutting the run; name, unit and time filters;
/// a later block that names a missing descriptor is dropped whole.
#[tokio::test]
async fn fast_path_measures_match_the_events_exactly() {
    use common::*;
    let mut lake = lake_with_one_stream(MET, rust_metrics_metadata(), "metrics").await;
    let desc_id = |i: u64| 0x7f00_0000_1000u64 + 8 * i;
    let unit_of = |i: u64| ["ms", "ticks", "bytes"][(i % 3) as usize];
    let mut d = Queue::default();
    d.static_string(0, 1, "game").static_string(0, 2, "f.rs").static_string(0, 3, "gpu").static_string(0, 4, "rtx");
    d.static_string(0, 10, "ms").static_string(0, 11, "ticks").static_string(0, 12, "bytes");
    for i in 0..200 {
        d.static_string(0, 1000 + i, &format!("metric{i}"));
        d.pod(2, &Pod::default().u64(desc_id(i)).u64(1000 + i).u64(10 + i % 3).u64(1).u64(2).u32(1).u32(2).done());
    }
    let sref = |id: u64| Pod::default().u64(id).u32(0).u8(2).pad(3).done();
    d.var(3, &Pod::default().u64(0x40).u32(1).bytes(&sref(3)).bytes(&sref(4)).done());
    let secs = |n: u64| 0.25 + n as f64 * 1e-4;
    let mut o = Queue::default();
    let mut expected = Vec::new();
    for n in 0..3000u64 {
        let i = (n * 7919) % 200;
        let (name, unit) = (format!("metric{i}"), unit_of(i));
        if n == 1500 {
            o.pod(2, &Pod::default().u64(desc_id(i)).u64(0x40).f64(0.5).u64(tick(secs(n))).done());
            expected.push(json!({"name": name, "unit": unit, "value": 0.5}));
        } else if n % 2 == 0 {
            // Integer values: in ticks (1 GHz here), they come out in seconds.
            o.pod(0, &Pod::default().u64(desc_id(i)).u64(n * 1_000_000).u64(tick(secs(n))).done());
            let (unit, value) = if unit == "ticks" { ("seconds", (n * 1_000_000) as f64 / 1e9) } else { (unit, (n * 1_000_000) as f64) };
            expected.push(json!({"name": name, "unit": unit, "value": value}));
        } else {
            o.pod(1, &Pod::default().u64(desc_id(i)).f64(n as f64 + 0.25).u64(tick(secs(n))).done());
            expected.push(json!({"name": name, "unit": unit, "value": n as f64 + 0.25}));
        }
    }
    lake.insert_block(("6f0b2b1e-0000-4000-8000-000000000601", MET, P), (0.0, 0), (1.0, rel(1.0)), 3000, 0, &payload(&d.0, &o.0), None).await;
    let mut late = Queue::default();
    for n in 0..300 {
        late.pod(1, &Pod::default().u64(desc_id(n % 200)).f64(1.0).u64(tick(1.1 + n as f64 * 1e-4)).done());
    }
    late.pod(1, &Pod::default().u64(0xdead).f64(1.0).u64(tick(1.2)).done());
    lake.insert_block(("6f0b2b1e-0000-4000-8000-000000000602", MET, P), (1.0, rel(1.0)), (2.0, rel(2.0)), 301, 3000, &payload(&d.0, &late.0), None).await;
    let of = |pick: &dyn Fn(u64, &serde_json::Value) -> bool| -> Vec<serde_json::Value> {
        expected.iter().enumerate().filter(|(n, r)| pick(*n as u64, r)).map(|(_, r)| r.clone()).collect()
    };
    let seconds = of(&|_, r| r["unit"] == "seconds");
    let in_ticks = of(&|_, r| r["unit"] == "ticks");
    let in_range = of(&|n, _| (0.4..=0.5).contains(&secs(n)));
    assert!(seconds.len() > 400 && in_ticks.len() > 400);
    let sql = |filter: &str| format!("SELECT name, unit, value FROM measures {filter} ORDER BY time");
    for jit in [false, true] {
        lake.open(jit).await;
        assert_eq!(lake.rows(&sql(""), None).await, expected, "jit {jit}");
        assert_eq!(lake.rows(&sql("WHERE unit = 'seconds'"), None).await, seconds, "jit {jit}");
        assert_eq!(lake.rows(&sql("WHERE unit = 'ticks' AND name <> 'x'"), None).await, in_ticks, "jit {jit}");
        assert_eq!(lake.rows(&sql(""), Some((0.4, 0.5))).await, in_range, "jit {jit}");
    }
}

/// A lake with process `P` and one stream of it, with these type tables and tag.
async fn lake_with_one_stream(stream: &str, (dm, om): (Vec<u8>, Vec<u8>), tag: &str) -> common::lake::TestLake {
    use common::lake::{test_pg_url, TestLake};
    let lake = TestLake::create(&test_pg_url()).await;
    lake.insert_process(P, "game.exe", 1_000_000_000, START_TICKS, &[]).await;
    lake.insert_stream(stream, P, &dm, &om, &[tag], &[]).await;
    lake
}

/// A lake with process `P` and log stream `LOG`, whose objects metadata ends with a variable-size
/// type this reader does not know (its index is returned): the walk skips its records.
async fn lake_with_a_log_stream_of_a_newer_producer() -> (common::lake::TestLake, u8) {
    use common::*;
    let (dm, om) = rust_log_metadata();
    let mut objects: ciborium::value::Value = ciborium::de::from_reader(&om[..]).unwrap();
    let future = objects.as_array().unwrap().len() as u8;
    objects.as_array_mut().unwrap().push(udt("SomeFutureEvent", 0, false, &[]));
    (lake_with_one_stream(LOG, (dm, cbor_bytes(&objects)), "log").await, future)
}
