//! Property-based fuzzing of untrusted blocks (issue 23): the transit decoder, the LZ4 path and
//! the views that read blocks are fed mutated real blocks (golden vectors and the hand-made
//! fixtures), forged stream metadata and random bytes. Every case must return `Ok` or `Err`:
//! a panic anywhere (even one a view contains and turns into a skipped block) fails the test,
//! and so does any single allocation over [`MAX_ALLOCATION`] (the process aborts with a message,
//! before the allocation is made).
//!
//! A seeded generator, so a failure repeats: `MICROMEGAS_FUZZ_CASES` sets the number of cases per
//! property (default 2,000, a few seconds), `MICROMEGAS_FUZZ_SEED` the seed.

mod common;

use common::scenario::{cpu_blocks, log_blocks, metrics_block};
use micromegas_analytics::decode::{
    lz4_output_limit, try_decode_events, try_decode_payload, try_lz4_frame_decompress, try_payload_of_block_envelope, Kind,
    StreamTypes, Udt, UdtTable,
};
use micromegas_analytics::views::rows_of_one_block;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The largest single allocation a hostile block may cause: the LZ4 cap per frame, and room.
const MAX_ALLOCATION: usize = micromegas_analytics::decode::LZ4_MAX_OUTPUT + (32 << 20);

struct Capped;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// An allocator must not unwind or allocate: an oversized request is written out raw, then the
/// process aborts (the test harness reports the test binary as failed).
fn check(size: usize) {
    LARGEST.fetch_max(size, Relaxed);
    if size > MAX_ALLOCATION {
        let msg = b"fuzz_decode: a decoded block asked for an allocation over MAX_ALLOCATION\n";
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn cases() -> usize {
    std::env::var("MICROMEGAS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

fn seed() -> u64 {
    std::env::var("MICROMEGAS_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x23_2026)
}

/// Panics seen by any thread since the hook was installed, caught or not.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Relaxed);
            previous(info);
        }));
        // The hook must see a panic that is caught, as the views catch one per block.
        let before = PANICS.load(Relaxed);
        let _ = std::panic::catch_unwind(|| panic!("fuzz_decode: checking that caught panics are counted"));
        assert!(PANICS.load(Relaxed) > before, "the panic hook missed a caught panic");
    });
}

/// A real block: its stream's types and its stored payload.
#[derive(Clone)]
struct Seed {
    name: String,
    types: StreamTypes,
    payload: Vec<u8>,
    /// The StreamInfo envelope its types came from (golden vectors), to mutate as bytes.
    stream_info: Option<Vec<u8>>,
}

fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../unreal-plugin-protocol/vectors");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("golden vectors manifest")).unwrap();
    for v in manifest["vectors"].as_array().unwrap().iter().filter(|v| v["route"] == "insert_block") {
        let read = |k: &str| std::fs::read(dir.join(v[k].as_str().unwrap())).unwrap();
        let stream_info = read("stream_info");
        let Ok(types) = StreamTypes::try_from_stream_info(&stream_info) else { continue };
        let body = read("body");
        // Envelopes that do not parse are still bytes to mutate as payloads.
        let payload = try_payload_of_block_envelope(&body).unwrap_or(body);
        out.push(Seed { name: v["name"].as_str().unwrap().to_string(), types, payload, stream_info: Some(stream_info) });
    }
    let fixture = |name: &str, (d, o): (Vec<u8>, Vec<u8>), payload: Vec<u8>| Seed {
        name: name.into(),
        types: StreamTypes::try_from_cbor(&d, &o).unwrap(),
        payload,
        stream_info: None,
    };
    let (l1, l2) = log_blocks();
    out.push(fixture("fixture-log-1", common::rust_log_metadata(), l1));
    out.push(fixture("fixture-log-2", common::rust_log_metadata(), l2));
    out.push(fixture("fixture-metrics", common::rust_metrics_metadata(), metrics_block()));
    let (c1, c2) = cpu_blocks();
    out.push(fixture("fixture-cpu-1", common::rust_cpu_metadata(), c1));
    out.push(fixture("fixture-cpu-2", common::rust_cpu_metadata(), c2));
    assert!(out.len() >= 20, "expected the golden vectors and fixtures, found {} seeds", out.len());
    out
}

const INTERESTING_U32: [u32; 9] = [0, 1, 7, 8, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF];

/// One random change to `b`: flipped bits, an interesting little-endian u32 (a length or count),
/// a cut, bytes inserted, a chunk duplicated or removed.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    let len = b.len();
    match rng.below(7) {
        0 if len > 0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 if len >= 4 => {
            let i = rng.below(len - 3);
            let v = if rng.below(4) == 0 { (len as u32).wrapping_add(rng.below(3) as u32).wrapping_sub(1) } else { *rng.pick(&INTERESTING_U32) };
            b[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        2 => b.truncate(rng.below(len + 1)),
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let extra = rng.bytes(n);
            b.splice(at..at, extra);
        }
        4 if len > 0 => {
            let (from, n) = (rng.below(len), 1 + rng.below(64));
            let chunk = b[from..(from + n).min(len)].to_vec();
            let at = rng.below(len + 1);
            b.splice(at..at, chunk);
        }
        5 if len > 0 => {
            let from = rng.below(len);
            let to = (from + 1 + rng.below(32)).min(len);
            b.drain(from..to);
        }
        _ if len > 0 => {
            let i = rng.below(len);
            b[i] = *rng.pick(&[0u8, 0x7F, 0x80, 0xFF]);
        }
        _ => b.extend(rng.bytes(8)),
    }
}

const SIZES: [usize; 10] = [0, 1, 4, 7, 8, 9, 16, 0x7FFF_FFFF, 1 << 40, usize::MAX];

/// One forged change to a stream's types: sizes, offsets and kinds no producer would send.
fn mutate_types(rng: &mut Rng, types: &StreamTypes) -> StreamTypes {
    let mut out = types.clone();
    let table = if rng.below(2) == 0 { &mut out.objects } else { &mut out.dependencies };
    let mut udts: Vec<Udt> = table.udts.clone();
    if udts.is_empty() {
        return out;
    }
    for _ in 0..1 + rng.below(3) {
        let u = rng.below(udts.len());
        let udt = &mut udts[u];
        match rng.below(5) {
            0 => udt.size = *rng.pick(&SIZES),
            1 => udt.is_reference = !udt.is_reference,
            _ if !udt.members.is_empty() => {
                let i = rng.below(udt.members.len());
                let m = &mut udt.members[i];
                match rng.below(4) {
                    0 => m.offset = *rng.pick(&SIZES),
                    1 => m.size = *rng.pick(&SIZES),
                    2 => m.is_reference = !m.is_reference,
                    _ => m.type_name = rng.pick(&["u8", "u32", "u64", "i64", "f64", "StaticStringRef", "StringId", "Property", "nope"]).to_string(),
                }
            }
            _ => udt.name = rng.pick(&["StaticString", "PropertySetDependency", "LogStringEvent", "ImageEvent", "TaggedLogInteropEvent"]).to_string().into(),
        }
    }
    // Kinds are resolved from type names when the table is built.
    for m in udts.iter_mut().flat_map(|u| u.members.iter_mut()) {
        m.kind = Kind::Unknown;
    }
    *table = UdtTable::new(udts);
    out
}

const VIEWS: [&str; 5] = ["log_entries", "log_stats", "measures", "thread_spans", "async_events"];

/// Decodes a payload every way a query can: events to JSON, and rows of every block view (with a
/// claimed event count that may be absurd). Any outcome but a panic or a huge allocation is fine.
fn decode_every_way(rng: &mut Rng, types: &StreamTypes, payload: &[u8]) {
    if let Ok(events) = try_decode_events(payload, types) {
        for e in &events {
            let _ = e.to_json();
        }
    }
    let any = rng.next() as i32;
    let nb_objects = *rng.pick(&[0, 1, 3, i32::MAX, -1, any]);
    let view = rng.pick(&VIEWS);
    let _ = rows_of_one_block(view, types.clone(), payload, nb_objects, 1);
}

fn repack(rng: &mut Rng, payload: &[u8]) -> Option<Vec<u8>> {
    let buffers = try_decode_payload(payload).ok()?;
    let (mut deps, mut objs) = (buffers.dependencies.to_vec(), buffers.objects.to_vec());
    let target = if rng.below(3) == 0 { &mut deps } else { &mut objs };
    for _ in 0..1 + rng.below(3) {
        mutate(rng, target);
    }
    Some(common::payload(&deps, &objs))
}

#[test]
fn mutated_real_blocks_and_forged_metadata_never_panic() {
    count_panics();
    let seeds = seeds();
    let mut rng = Rng(seed());
    let mut by_strategy = [0usize; 4];
    for case in 0..cases() {
        let s = rng.pick(&seeds).clone();
        let strategy = rng.below(4);
        by_strategy[strategy] += 1;
        let before = PANICS.load(Relaxed);
        let (types, payload) = match strategy {
            // Stored bytes: CBOR envelope and LZ4 frames.
            0 => {
                let mut p = s.payload.clone();
                for _ in 0..1 + rng.below(3) {
                    mutate(&mut rng, &mut p);
                }
                (s.types.clone(), p)
            }
            // Transit records, compressed again so they get past the LZ4 layer.
            1 => (s.types.clone(), repack(&mut rng, &s.payload).unwrap_or_else(|| s.payload.clone())),
            // Forged stream metadata over a real block: as bytes (the StreamInfo CBOR) or as
            // values no CBOR check catches (sizes, offsets, kinds).
            2 => match &s.stream_info {
                Some(info) if rng.below(2) == 0 => {
                    let mut info = info.clone();
                    for _ in 0..1 + rng.below(3) {
                        mutate(&mut rng, &mut info);
                    }
                    match StreamTypes::try_from_stream_info(&info) {
                        Ok(types) => (types, s.payload.clone()),
                        Err(_) => continue,
                    }
                }
                _ => (mutate_types(&mut rng, &s.types), s.payload.clone()),
            },
            // Both.
            _ => {
                let p = repack(&mut rng, &s.payload).unwrap_or_else(|| s.payload.clone());
                (mutate_types(&mut rng, &s.types), p)
            }
        };
        decode_every_way(&mut rng, &types, &payload);
        assert_eq!(PANICS.load(Relaxed), before, "case {case} (seed {}, strategy {strategy}, block {}) panicked", seed(), s.name);
    }
    eprintln!("{} cases per strategy {by_strategy:?}; largest allocation {} bytes", cases(), LARGEST.load(Relaxed));
}

/// A CBOR payload map whose two entries are `(key, header, bytes)`.
fn cbor_payload(entries: &[(&str, &[u8], &[u8])]) -> Vec<u8> {
    let mut p = vec![0xa0 | entries.len() as u8];
    for (key, header, bytes) in entries {
        p.push(0x60 | key.len() as u8);
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(header);
        p.extend_from_slice(bytes);
    }
    p
}

#[test]
fn random_bytes_and_lying_cbor_headers_never_panic() {
    count_panics();
    let seeds = seeds();
    let mut rng = Rng(seed() ^ 0x5eed);
    for case in 0..cases() {
        let types = &rng.pick(&seeds).types.clone();
        let before = PANICS.load(Relaxed);
        let payload = match rng.below(3) {
            0 => {
                let n = rng.below(4096);
                rng.bytes(n)
            }
            // Byte strings and arrays that claim far more than the payload holds.
            1 => {
                const CLAIMS: [&[u8]; 6] = [
                    &[0x5b, 0, 0, 1, 0, 0, 0, 0, 0],
                    &[0x5a, 0xff, 0xff, 0xff, 0xff],
                    &[0x9b, 0, 0, 0, 1, 0, 0, 0, 0],
                    &[0x9a, 0x7f, 0xff, 0xff, 0xff],
                    &[0x5f],
                    &[0x9f],
                ];
                let claim: &[u8] = *rng.pick(&CLAIMS);
                let n = rng.below(64);
                let tail = rng.bytes(n);
                cbor_payload(&[("dependencies", claim, &tail), ("objects", claim, &tail)])
            }
            // Well-formed envelope, random frames.
            _ => {
                let (na, nb) = (rng.below(256), rng.below(256));
                let (a, b) = (rng.bytes(na), rng.bytes(nb));
                let mut frame = |body: &[u8]| {
                    let mut f = vec![0x04, 0x22, 0x4d, 0x18, 0x40 | (rng.next() as u8 & 0x3c), 0x40 | (rng.next() as u8 & 0x70)];
                    f.extend_from_slice(body);
                    f
                };
                let (fa, fb) = (frame(&a), frame(&b));
                cbor_payload(&[("dependencies", &[0x59, (fa.len() >> 8) as u8, fa.len() as u8], &fa), ("objects", &[0x59, (fb.len() >> 8) as u8, fb.len() as u8], &fb)])
            }
        };
        decode_every_way(&mut rng, types, &payload);
        assert_eq!(PANICS.load(Relaxed), before, "case {case} (seed {}) panicked", seed());
    }
}

/// A valid frame header (flags and block size code as given, checksum computed).
fn frame_header(flg: u8, bd: u8, content_size: Option<u64>) -> Vec<u8> {
    let mut d = vec![flg | if content_size.is_some() { 0x08 } else { 0 }, bd];
    if let Some(n) = content_size {
        d.extend_from_slice(&n.to_le_bytes());
    }
    let hc = (twox_hash::XxHash32::oneshot(0, &d) >> 8) as u8;
    let mut f = vec![0x04, 0x22, 0x4d, 0x18];
    f.extend_from_slice(&d);
    f.push(hc);
    f
}

#[test]
fn lz4_frames_inflate_within_their_limit_or_fail() {
    count_panics();
    let mut rng = Rng(seed() ^ 0x124);
    // Blocks that inflate a lot (runs of one byte) or not at all (random), as LZ4 encodes them.
    let zeros = lz4_flex::block::compress(&vec![0u8; 64 << 10]);
    let mut inflated = 0usize;
    for case in 0..cases() {
        let before = PANICS.load(Relaxed);
        let flg = 0x40 | (rng.next() as u8 & 0x34);
        let bd = if rng.below(8) == 0 { rng.next() as u8 } else { (4 + rng.below(4) as u8) << 4 };
        let declared = match rng.below(4) {
            0 => Some(rng.next() >> rng.below(64)),
            _ => None,
        };
        let mut f = frame_header(flg, bd, declared);
        for _ in 0..rng.below(40) {
            let block = match rng.below(4) {
                0 => {
                    let n = rng.below(300);
                    rng.bytes(n)
                }
                1 => {
                    let n = rng.below(3000);
                    lz4_flex::block::compress(&rng.bytes(n))
                }
                _ => zeros.clone(),
            };
            let mut size = block.len() as u32;
            if rng.below(10) == 0 {
                size = *rng.pick(&INTERESTING_U32);
            } else if rng.below(6) == 0 {
                size |= 0x8000_0000;
            }
            f.extend_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&block);
            if flg & 0x10 != 0 {
                f.extend_from_slice(&twox_hash::XxHash32::oneshot(0, &block).to_le_bytes());
            }
        }
        if rng.below(5) != 0 {
            f.extend_from_slice(&0u32.to_le_bytes());
        }
        if rng.below(4) == 0 {
            mutate(&mut rng, &mut f);
        }
        if let Ok(out) = try_lz4_frame_decompress(&f) {
            assert!(out.len() <= lz4_output_limit(f.len()), "case {case}: {} bytes out of a {}-byte frame", out.len(), f.len());
            inflated += 1;
        }
        assert_eq!(PANICS.load(Relaxed), before, "case {case} (seed {}) panicked", seed());
    }
    // The generator must reach the decoder's success path too, not only its first checks.
    assert!(inflated > cases() / 50, "only {inflated} of {} frames inflated", cases());
}
