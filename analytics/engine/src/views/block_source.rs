//! Loads the blocks a block view needs: metadata, stream types, tick converter and payloads.

use super::{Instance, RowFilter, Stats, View, ViewContext, ViewSource};
use crate::decode::{Block, EventRef, StreamTypes, Taken};
use crate::metadata::{BlockFilter, BlockRow, ProcessRow, StreamRow};
use crate::store::{fetch_block_payload, FetchError};
use crate::time::TickConverter;
use anyhow::{bail, Context, Result};
use datafusion::arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Arc;

/// Object-store reads in flight per query.
const FETCH_CONCURRENCY: usize = 32;

/// One stream's blocks (ordered by `begin_ticks`) with everything needed to decode them.
pub struct StreamBlocks {
    pub process: Arc<ProcessRow>,
    pub stream: Arc<StreamRow>,
    pub types: Arc<StreamTypes>,
    pub converter: TickConverter,
    pub blocks: Vec<(BlockRow, bytes::Bytes)>,
    /// Where blocks found corrupt while decoding are counted.
    pub stats: Arc<Stats>,
}

/// Events a stored block is trusted to hold, per byte of its payload, when room is reserved for
/// them ahead: `nb_objects` comes from the client. A transit event is at least 2 bytes and
/// blocks compress about 5-10x (17-byte events: ~0.3 per byte), so a real block is under this;
/// one with more events only grows its columns as it goes.
const EVENTS_PER_PAYLOAD_BYTE: usize = 2;

/// The events a view may reserve room for, for one block: its `nb_objects`, but no more than its
/// payload's bytes can plausibly hold (`nb_objects = 2^31-1` on a tiny block reserves nothing big).
pub fn events_hint(block: &BlockRow, payload: &[u8]) -> usize {
    (block.nb_objects.max(0) as usize).min(payload.len().saturating_mul(EVENTS_PER_PAYLOAD_BYTE))
}

/// [`events_hint`] summed over blocks.
pub fn events_hint_of(blocks: &[(BlockRow, bytes::Bytes)]) -> usize {
    blocks.iter().map(|(b, p)| events_hint(b, p)).sum()
}

/// Lists the matching blocks, groups them by stream and fetches their payloads.
/// Rows of a view decoded from blocks: the streams with its tag, for one process or,
/// when the view has a global instance, for all of them.
pub async fn batches_from_blocks<V: View + ?Sized>(
    view: &V,
    ctx: &ViewContext,
    instance: &Instance,
    range: Option<crate::time::TimeRange>,
) -> Result<Vec<RecordBatch>> {
    let ViewSource::Blocks { tag } = view.source() else {
        bail!("{} is not read from blocks", view.name());
    };
    let process_id = match instance {
        Instance::Process(p) => Some(p.clone()),
        Instance::Global if view.has_global_instance() => None,
        _ => bail!("{} instances are processes", view.name()),
    };
    let filter = BlockFilter { process_id, tag: Some(tag.into()), range, ..Default::default() };
    let streams = load_stream_blocks(ctx, &filter).await?;
    build_rows(view, &streams, range, &RowFilter::NONE)
}

/// A view's rows from `streams`. Views whose rows come one per event are built on every core:
/// the blocks are dealt in contiguous chunks, one per core, and come back in block order.
pub fn build_rows<V: View + ?Sized>(view: &V, streams: &[StreamBlocks], range: Option<crate::time::TimeRange>, filter: &RowFilter) -> Result<Vec<RecordBatch>> {
    let total: usize = streams.iter().map(|s| s.blocks.len()).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !view.rows_per_event() || cores < 2 || total < 2 {
        return Ok(vec![view.rows_from_blocks(streams, range, filter)?]);
    }
    let per_chunk = total.div_ceil(cores.min(total));
    let mut chunks: Vec<Vec<StreamBlocks>> = Vec::new();
    let (mut chunk, mut in_chunk) = (Vec::new(), 0);
    for s in streams {
        let mut rest = &s.blocks[..];
        while !rest.is_empty() {
            let take = (per_chunk - in_chunk).min(rest.len());
            let blocks = rest[..take].to_vec();
            chunk.push(StreamBlocks {
                process: s.process.clone(),
                stream: s.stream.clone(),
                types: s.types.clone(),
                converter: s.converter,
                blocks,
                stats: s.stats.clone(),
            });
            rest = &rest[take..];
            in_chunk += take;
            if in_chunk == per_chunk {
                chunks.push(std::mem::take(&mut chunk));
                in_chunk = 0;
            }
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks.iter().map(|c| scope.spawn(move || view.rows_from_blocks(c, range, filter))).collect();
        workers.into_iter().map(|w| w.join().map_err(|_| anyhow::anyhow!("a row-building thread panicked"))?).collect()
    })
}

/// The blocks `filter` lists, grouped by stream, with their payloads.
///
/// Rows are untrusted: a block whose stream or process row is missing, that names a stream of
/// another process, whose stream's metadata does not parse or whose payload is not where its row
/// says is left out, counted in [`Stats::blocks_skipped`] and logged with its id, and the query
/// goes on with the others. Only a failing PostgreSQL or object store fails it.
pub async fn load_stream_blocks(ctx: &ViewContext, filter: &BlockFilter) -> Result<Vec<StreamBlocks>> {
    Ok(load_listed_blocks(ctx, filter).await?.0)
}

/// What the metadata listed for a filter, skipped blocks included: `(blocks, sum of nb_objects)`,
/// the freshness of a partition built from them (a skipped block stays skipped: rebuilding the
/// partition would not bring it back).
pub type Listed = (i64, i64);

/// [`load_stream_blocks`], and what was listed.
pub async fn load_listed_blocks(ctx: &ViewContext, filter: &BlockFilter) -> Result<(Vec<StreamBlocks>, Listed)> {
    let blocks = ctx.metadata.blocks(filter).await?;
    let listed = (blocks.len() as i64, blocks.iter().map(|b| b.nb_objects as i64).sum());
    let mut processes: HashMap<String, Option<Arc<ProcessRow>>> = HashMap::new();
    let mut groups: Vec<(Arc<ProcessRow>, Arc<StreamRow>, Arc<StreamTypes>, Vec<BlockRow>)> = Vec::new();
    // Listed by stream: one group per run of a stream's blocks.
    for run in blocks.chunk_by(|a, b| a.stream_id == b.stream_id) {
        if let Some(group) = make_group(ctx, &mut processes, run).await? {
            groups.push(group);
        }
    }
    let mut out: Vec<StreamBlocks> = Vec::new();
    for (process, stream, types, blocks) in groups {
        ctx.stats.blocks_read.fetch_add(blocks.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let store = ctx.store.clone();
        let fetched: Vec<Option<(BlockRow, bytes::Bytes)>> = futures::stream::iter(blocks.into_iter().map(|b| {
            let store = store.clone();
            async move {
                match fetch_block_payload(store.as_ref(), &b).await {
                    Ok(payload) => Ok(Some((b, payload))),
                    Err(FetchError::Corrupt(e)) => {
                        skip_block(&ctx.stats, &b, "unreadable payload", &e);
                        Ok(None)
                    }
                    Err(FetchError::Unavailable(e)) => Err(e),
                }
            }
        }))
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
        let converter = TickConverter::new(
            process.start_time,
            process.start_ticks,
            process.tsc_frequency,
            process.last_block_end_time.zip(process.last_block_end_ticks),
        );
        let blocks: Vec<_> = fetched.into_iter().flatten().collect();
        if !blocks.is_empty() {
            out.push(StreamBlocks { process, stream, types, converter, blocks, stats: ctx.stats.clone() });
        }
    }
    Ok((out, listed))
}

/// One stream's run of blocks with what decoding them takes; `None` when none of them can be read
/// (each skipped and counted).
async fn make_group(
    ctx: &ViewContext,
    processes: &mut HashMap<String, Option<Arc<ProcessRow>>>,
    blocks: &[BlockRow],
) -> Result<Option<(Arc<ProcessRow>, Arc<StreamRow>, Arc<StreamTypes>, Vec<BlockRow>)>> {
    let first = &blocks[0];
    let skip_all = |why: &str, e: &anyhow::Error| {
        for b in blocks {
            skip_block(&ctx.stats, b, why, e);
        }
    };
    let Some(stream) = ctx.metadata.stream(&first.stream_id).await? else {
        skip_all("unknown stream", &anyhow::anyhow!("no stream row {}", first.stream_id));
        return Ok(None);
    };
    let process = match processes.get(&stream.process_id) {
        Some(p) => p.clone(),
        None => {
            let p = ctx.metadata.process(&stream.process_id).await?.map(Arc::new);
            processes.insert(stream.process_id.clone(), p.clone());
            p
        }
    };
    let Some(process) = process else {
        skip_all("unknown process", &anyhow::anyhow!("stream {} names process {}, which has no row", stream.stream_id, stream.process_id));
        return Ok(None);
    };
    let types = match StreamTypes::try_from_cbor(&stream.dependencies_metadata, &stream.objects_metadata) {
        Ok(t) => t,
        Err(e) => {
            skip_all("unreadable stream metadata", &e.context(format!("metadata of stream {}", stream.stream_id)));
            return Ok(None);
        }
    };
    // A block is read as its stream's process: one naming another process is foreign.
    let (own, foreign): (Vec<&BlockRow>, Vec<&BlockRow>) = blocks.iter().partition(|b| b.process_id == stream.process_id);
    for b in foreign {
        let e = anyhow::anyhow!("block names process {}, its stream {} belongs to {}", b.process_id, stream.stream_id, stream.process_id);
        skip_block(&ctx.stats, b, "foreign block", &e);
    }
    if own.is_empty() {
        return Ok(None);
    }
    Ok(Some((process, Arc::new(stream), Arc::new(types), own.into_iter().cloned().collect())))
}

/// Counts a block left out of a query and says why on stderr, naming it.
fn skip_block(stats: &Stats, block: &BlockRow, why: &str, e: &anyhow::Error) {
    stats.blocks_skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    eprintln!("micromegas-analytics: skipping block {} of stream {} ({why}): {e:#}", block.block_id, block.stream_id);
}

/// Calls `f(block, index_in_block, event)` for each event of each block, in order.
///
/// A block that fails to decode is skipped with a message naming it: one corrupt block from one
/// client must not make a whole view unreadable. The message goes to stderr.
pub fn decode_stream_blocks(sb: &StreamBlocks, mut f: impl FnMut(&BlockRow, usize, &EventRef)) {
    for (block, payload) in &sb.blocks {
        // Check the whole block before emitting, so a block corrupt in its middle contributes no
        // rows: a second walk is cheaper than keeping its events.
        let decoded = contain_panic(|| {
            Block::try_decode(payload, &sb.types).and_then(|b| b.try_for_each_event(&sb.types, |_, _| Ok(())).map(|()| b))
        });
        match decoded {
            // Cannot fail: the same bytes were just read without error.
            Ok(b) => drop(b.try_for_each_event(&sb.types, |i, e| {
                f(block, i, e);
                Ok(())
            })),
            Err(e) => skip_corrupt(sb, block, &e),
        }
    }
}

/// Runs one block's decode, turning a panic into that block's error: whatever a block holds, a
/// bug it finds costs that block, not the process or the query. One landing pad per block.
fn contain_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
        Err(anyhow::anyhow!("decoding panicked: {}", msg.as_deref().unwrap_or("(no message)")))
    })
}

/// Rows a view collects while it walks blocks, which can be cut back to an earlier length.
pub trait Rollback {
    fn len(&self) -> usize;
    fn truncate(&mut self, len: usize);
}

impl<T> Rollback for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
}

/// [`decode_stream_blocks`] for one block of the stream, for a view whose rows can roll back: one
/// walk, and a block that turns out corrupt midway has what it added taken back. Views call it
/// block by block and reset their per-block state in between (descriptor ids are only unique
/// within a block, and a block's first record is not always an event a view sees).
pub fn decode_block_into<R: Rollback>(
    sb: &StreamBlocks,
    block: &(BlockRow, bytes::Bytes),
    out: &mut R,
    f: impl FnMut(usize, &EventRef, &mut R),
) {
    decode_block_with(sb, block, out, f, |_, _, _| Taken::default());
}

/// [`decode_block_into`] with the view's fast path `run` (see [`crate::decode::try_for_each_object_with`]):
/// it reads runs of events straight from the objects buffer into `out`.
pub fn decode_block_with<R: Rollback>(
    sb: &StreamBlocks,
    (block, payload): &(BlockRow, bytes::Bytes),
    out: &mut R,
    mut f: impl FnMut(usize, &EventRef, &mut R),
    run: impl FnMut(usize, &[u8], &mut R) -> Taken,
) {
    let mark = out.len();
    let walked = contain_panic(|| {
        Block::try_decode(payload, &sb.types).and_then(|b| {
            b.try_for_each_event_with(&sb.types, &mut *out, #[inline(always)] |i, e, out| {
                f(i, e, out);
                Ok(())
            }, run)
        })
    });
    if let Err(e) = walked {
        out.truncate(mark);
        skip_corrupt(sb, block, &e);
    }
}

fn skip_corrupt(sb: &StreamBlocks, block: &BlockRow, e: &anyhow::Error) {
    skip_block(&sb.stats, block, "corrupt", e);
}

/// One batch as zero-copy slices, one per core, so the plan above it (aggregates, filters) runs
/// on every core instead of one.
pub fn split_for_cores(batch: RecordBatch) -> Vec<RecordBatch> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = batch.num_rows();
    if cores < 2 || rows < 2 * 8192 {
        return vec![batch];
    }
    let per = rows.div_ceil(cores);
    (0..rows).step_by(per).map(|at| batch.slice(at, per.min(rows - at))).collect()
}

/// Rows `view` builds from one payload of `nb_objects` events of a stream with these types, on the
/// calling thread, with placeholder process, stream and block rows (the decode benchmark: block to
/// Arrow); built `times` times, one batch each, and the rows of all counted.
pub fn rows_of_one_block(view: &str, types: StreamTypes, payload: &[u8], nb_objects: i32, times: usize) -> Result<usize> {
    let payload = bytes::Bytes::copy_from_slice(payload);
    let view = super::all_views().into_iter().find(|v| v.name() == view).with_context(|| format!("no view named {view}"))?;
    let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let id = String::from("00000000-0000-0000-0000-000000000000");
    let process = ProcessRow {
        process_id: id.clone(), exe: "bench.exe".into(), username: "bench".into(), realname: "Bench".into(), computer: "bench-host".into(),
        distro: "linux".into(), cpu_brand: "cpu".into(), tsc_frequency: 1_000_000_000, start_time: t0, start_ticks: 0,
        insert_time: t0, parent_process_id: None, properties: "{}".into(), last_update_time: None,
        last_block_end_time: None, last_block_end_ticks: None,
    };
    let stream = StreamRow {
        stream_id: id.clone(), process_id: id.clone(), dependencies_metadata: Vec::new(), objects_metadata: Vec::new(),
        tags: Vec::new(), properties: "{}".into(), insert_time: t0, format: String::new(), last_update_time: None,
    };
    let block = BlockRow {
        block_id: id.clone(), stream_id: id.clone(), process_id: id, begin_time: t0, begin_ticks: 0, end_time: t0, end_ticks: 0,
        nb_objects, object_offset: 0, payload_size: payload.len() as i64, insert_time: t0, payload_object: None, payload_offset: None,
    };
    let streams = [StreamBlocks {
        converter: TickConverter::new(t0, 0, process.tsc_frequency, None),
        process: Arc::new(process),
        stream: Arc::new(stream),
        types: Arc::new(types),
        blocks: vec![(block, payload)],
        stats: Default::default(),
    }];
    let mut rows = 0;
    for _ in 0..times {
        rows += view.rows_from_blocks(&streams, None, &RowFilter::NONE)?.num_rows();
    }
    Ok(rows)
}
