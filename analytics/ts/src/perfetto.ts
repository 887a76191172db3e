// Perfetto export: a process's thread spans (one track per cpu stream) and async spans over a time
// range, as a Perfetto protobuf trace (.pftrace) or a Chrome JSON trace; the Perfetto UI opens
// both. Spans come out of the engine as SQL results; this file only reshapes them.
import type { Engine, QueryOptions } from './engine.js';

/** One span on a track, times in nanoseconds since the Unix epoch. */
export interface TraceSpan {
  name: string;
  target: string;
  begin: bigint;
  end: bigint;
}

export interface TraceTrack {
  name: string;
  tid: number;
  /** Properly nested (a call tree): begin ascending, enclosing spans first. */
  spans: TraceSpan[];
}

/** What both file formats are written from. */
export interface TraceModel {
  processName: string;
  pid: number;
  threads: TraceTrack[];
  /** Async spans, laid out on lanes whose spans never overlap. */
  asyncLanes: TraceSpan[][];
}

export type TraceFormat = 'pftrace' | 'json';

/** The format a file name asks for: `.json` gives Chrome JSON, anything else protobuf. */
export function traceFormatOf(path: string): TraceFormat {
  return path.endsWith('.json') ? 'json' : 'pftrace';
}

const byBeginThenLongest = (a: TraceSpan, b: TraceSpan) => (a.begin === b.begin ? (b.end > a.end ? 1 : b.end < a.end ? -1 : 0) : a.begin < b.begin ? -1 : 1);

/** Reads the spans of `processId` (bounded by `options.begin`/`end`) from the engine. */
export async function collectTrace(engine: Engine, processId: string, options: QueryOptions = {}): Promise<TraceModel> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(processId)) throw new Error(`process id must be a UUID: ${processId}`);
  const [proc] = await engine.queryRows(`SELECT exe, property_get(properties, 'pid') AS pid FROM processes WHERE process_id = '${processId}'`);
  if (!proc) throw new Error(`process ${processId} not found`);
  const threads: TraceTrack[] = [];
  const streams = await engine.queryRows(
    `SELECT stream_id, property_get(properties, 'thread-name') AS name, property_get(properties, 'thread-id') AS tid
     FROM streams WHERE process_id = '${processId}' AND array_has(tags, 'cpu') ORDER BY insert_time`,
  );
  const usedTids = new Set<number>();
  for (const [i, s] of streams.entries()) {
    let tid = Number.parseInt(String(s.tid ?? ''), 10);
    if (!Number.isFinite(tid) || usedTids.has(tid)) tid = 1_000_000 + i;  // unique per track
    usedTids.add(tid);
    // Nanoseconds as text: BIGINT would lose precision through JSON numbers.
    const rows = await engine.queryRows(
      `SELECT name, target, CAST(CAST("begin" AS BIGINT) AS VARCHAR) AS b, CAST(CAST("end" AS BIGINT) AS VARCHAR) AS e
       FROM view_instance('thread_spans', '${s.stream_id}') ORDER BY "begin"`,
      options,
    );
    const spans = rows.map((r) => ({ name: String(r.name), target: String(r.target ?? ''), begin: BigInt(String(r.b)), end: BigInt(String(r.e)) }));
    threads.push({ name: `${s.name ?? 'thread'}-${tid}`, tid, spans: spans.sort(byBeginThenLongest) });
  }
  const events = await engine.queryRows(
    `SELECT event_type, span_id, name, target, CAST(CAST(time AS BIGINT) AS VARCHAR) AS t
     FROM view_instance('async_events', '${processId}') ORDER BY time`,
    options,
  );
  const open = new Map<string, TraceSpan>();
  const asyncSpans: TraceSpan[] = [];
  for (const e of events) {
    const id = String(e.span_id);
    if (e.event_type === 'begin') {
      open.set(id, { name: String(e.name), target: String(e.target ?? ''), begin: BigInt(String(e.t)), end: BigInt(String(e.t)) });
    } else {
      const span = open.get(id);
      if (!span) continue;  // its begin is outside the range
      open.delete(id);
      span.end = BigInt(String(e.t));
      asyncSpans.push(span);
    }
  }
  return { processName: String(proc.exe), pid: Number.parseInt(String(proc.pid ?? ''), 10) || 1, threads, asyncLanes: lanesOf(asyncSpans) };
}

/** Greedy interval partitioning: each span goes on the first lane free at its begin. */
function lanesOf(spans: TraceSpan[]): TraceSpan[][] {
  const lanes: TraceSpan[][] = [];
  const laneEnds: bigint[] = [];
  for (const s of spans.sort(byBeginThenLongest)) {
    let i = laneEnds.findIndex((end) => end <= s.begin);
    if (i < 0) {
      i = lanes.length;
      lanes.push([]);
      laneEnds.push(0n);
    }
    lanes[i].push(s);
    laneEnds[i] = s.end;
  }
  return lanes;
}

// --- Chrome JSON (trace event format): microseconds, complete events ---

export interface TraceEvent {
  name: string;
  cat: string;
  ph: 'X' | 'M';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

// Exact to the nanosecond: epoch nanoseconds exceed a double's integer range.
const micros = (ns: bigint) => Number(ns / 1000n) + Number(ns % 1000n) / 1000;

export function toChromeJson(model: TraceModel): { traceEvents: TraceEvent[] } {
  const pid = model.pid;
  const events: TraceEvent[] = [{ name: 'process_name', cat: '', ph: 'M', ts: 0, pid, tid: 0, args: { name: model.processName } }];
  const track = (name: string, tid: number, spans: TraceSpan[]) => {
    events.push({ name: 'thread_name', cat: '', ph: 'M', ts: 0, pid, tid, args: { name } });
    for (const s of spans) events.push({ name: s.name, cat: s.target, ph: 'X', ts: micros(s.begin), dur: micros(s.end - s.begin), pid, tid });
  };
  for (const t of model.threads) track(t.name, t.tid, t.spans);
  model.asyncLanes.forEach((lane, i) => track(`async-${i}`, 2_000_000 + i, lane));
  return { traceEvents: events };
}

// --- Perfetto protobuf: a Trace of TracePackets with track descriptors and track events ---
// Field numbers from Perfetto's trace_packet.proto, track_descriptor.proto, track_event.proto.

const PACKET = 1;  // Trace.packet
const TP = { timestamp: 8, sequenceId: 10, trackEvent: 11, sequenceFlags: 13, trackDescriptor: 60 };
const TD = { uuid: 1, name: 2, process: 3, thread: 4, parentUuid: 5 };
const PROCESS = { pid: 1, name: 6 };
const THREAD = { pid: 1, tid: 2, name: 5 };
const TE = { type: 9, trackUuid: 11, categories: 22, name: 23 };
const SLICE_BEGIN = 1;
const SLICE_END = 2;
const SEQ_INCREMENTAL_STATE_CLEARED = 1;
const SEQUENCE_ID = 1;

/** Minimal protobuf writer: varints and length-delimited fields, built bottom-up. */
class Proto {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private push(b: Buffer) {
    this.parts.push(b);
    this.size += b.length;
  }
  private varint(v: bigint) {
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Buffer.from(out));
  }
  uint(field: number, v: number | bigint): this {
    this.varint(BigInt(field << 3));
    this.varint(BigInt.asUintN(64, BigInt(v)));
    return this;
  }
  bytes(field: number, b: Buffer): this {
    this.varint(BigInt((field << 3) | 2));
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }
  message(field: number, m: Proto): this {
    return this.bytes(field, m.finish());
  }
  finish(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

export function toPerfettoProto(model: TraceModel): Buffer {
  const trace = new Proto();
  const packet = (fill: (p: Proto) => Proto) => trace.message(PACKET, fill(new Proto().uint(TP.sequenceId, SEQUENCE_ID)));
  const processUuid = 1n;
  packet((p) =>
    p.uint(TP.sequenceFlags, SEQ_INCREMENTAL_STATE_CLEARED).message(
      TP.trackDescriptor,
      new Proto().uint(TD.uuid, processUuid).message(TD.process, new Proto().uint(PROCESS.pid, model.pid).string(PROCESS.name, model.processName)),
    ),
  );
  let nextUuid = 2n;
  const track = (descriptor: (d: Proto) => Proto, spans: TraceSpan[]) => {
    const uuid = nextUuid++;
    packet((p) => p.message(TP.trackDescriptor, descriptor(new Proto().uint(TD.uuid, uuid).uint(TD.parentUuid, processUuid))));
    // Spans are nested and sorted: a stack of open ends emits begin/end events in order.
    const ends: bigint[] = [];
    const end = (t: bigint) => packet((p) => p.uint(TP.timestamp, t).message(TP.trackEvent, new Proto().uint(TE.type, SLICE_END).uint(TE.trackUuid, uuid)));
    for (const s of spans) {
      while (ends.length && ends[ends.length - 1] <= s.begin) end(ends.pop()!);
      packet((p) =>
        p.uint(TP.timestamp, s.begin).message(
          TP.trackEvent,
          new Proto().uint(TE.type, SLICE_BEGIN).uint(TE.trackUuid, uuid).string(TE.categories, s.target).string(TE.name, s.name),
        ),
      );
      ends.push(s.end);
    }
    while (ends.length) end(ends.pop()!);
  };
  for (const t of model.threads) {
    track((d) => d.message(TD.thread, new Proto().uint(THREAD.pid, model.pid).uint(THREAD.tid, t.tid).string(THREAD.name, t.name)), t.spans);
  }
  model.asyncLanes.forEach((lane, i) => track((d) => d.string(TD.name, `async-${i}`), lane));
  return trace.finish();
}

/** The trace of a process as a file body in `format`. */
export async function exportPerfetto(engine: Engine, processId: string, options: QueryOptions & { format?: TraceFormat } = {}): Promise<Buffer> {
  const model = await collectTrace(engine, processId, options);
  return options.format === 'json' ? Buffer.from(JSON.stringify(toChromeJson(model))) : toPerfettoProto(model);
}

/** Chrome JSON trace of a process (kept for callers that want objects). */
export async function exportPerfettoTrace(engine: Engine, processId: string, options: QueryOptions = {}): Promise<{ traceEvents: TraceEvent[] }> {
  return toChromeJson(await collectTrace(engine, processId, options));
}
