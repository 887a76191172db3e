// A throwaway lake for the TypeScript tests: a fresh database on MICROMEGAS_TEST_PG_URL with the
// ingestion schema, a temporary file:// object store, and blocks encoded here with a minimal
// CBOR writer and store-only LZ4 frames (uncompressed blocks are valid LZ4 frame content), or
// really compressed LZ4 frames when asked, as producers send them.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { compressSync } from 'lz4-napi';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

type Cbor = string | number | boolean | Uint8Array | Cbor[] | { [k: string]: Cbor };

function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 0x100) return [(major << 5) | 24, n];
  if (n < 0x10000) return [(major << 5) | 25, n >> 8, n & 0xff];
  return [(major << 5) | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

export function cbor(v: Cbor): Buffer {
  if (typeof v === 'number') return Buffer.from(head(0, v));
  if (typeof v === 'boolean') return Buffer.from([v ? 0xf5 : 0xf4]);
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([Buffer.from(head(3, b.length)), b]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([Buffer.from(head(2, v.length)), v]);
  if (Array.isArray(v)) return Buffer.concat([Buffer.from(head(4, v.length)), ...v.map(cbor)]);
  const entries = Object.entries(v);
  return Buffer.concat([Buffer.from(head(5, entries.length)), ...entries.flatMap(([k, x]) => [cbor(k), cbor(x)])]);
}

/**
 * LZ4 frame (FLG 0x60: independent blocks, no checksum; BD 0x40: 64 KiB blocks; header checksum
 * 0x82) whose blocks are stored uncompressed, or compressed when `compressBlock` is given (a
 * block that would not shrink is stored, as LZ4F does).
 */
export function lz4StoreOnly(data: Buffer, compressBlock?: (chunk: Buffer) => Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82])];
  for (let i = 0; i < data.length; i += 65536) {
    const chunk = data.subarray(i, i + 65536);
    const packed = compressBlock?.(chunk);
    const size = Buffer.alloc(4);
    if (packed && packed.length < chunk.length) {
      size.writeUInt32LE(packed.length);
      parts.push(size, packed);
    } else {
      size.writeUInt32LE((chunk.length | 0x80000000) >>> 0);
      parts.push(size, chunk);
    }
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

/**
 * A compressed LZ4 frame laid out as producers write it: the Unreal plugin (LZ4F_compressFrame,
 * default preferences) and our native SDK both use 64 KiB blocks. Each block is compressed by
 * lz4-napi (lz4_flex's block compressor; `compressSync` prepends the 4-byte original size, which
 * a frame block does not carry). lz4-napi's own `compressFrameSync` picks the block size from
 * the input (1-4 MiB blocks for our buffers), which no producer does.
 */
export function lz4Compressed(data: Buffer): Buffer {
  return lz4StoreOnly(data, (chunk) => compressSync(chunk).subarray(4));
}

/** The stored block payload; `compress` uses real LZ4 frames instead of store-only ones. */
export function payload(deps: Buffer, objs: Buffer, compress = false): Buffer {
  const frame = compress ? lz4Compressed : lz4StoreOnly;
  return cbor({ dependencies: frame(deps), objects: frame(objs) });
}

export const m = (name: string, type_name: string, offset: number, size: number, is_reference: boolean) => ({ name, type_name, offset, size, is_reference });
export const udt = (name: string, size: number, is_reference: boolean, members: ReturnType<typeof m>[] = []) => ({ name, size, members, is_reference });

/** Rust log tables (reference §4.2), as the CBOR stored in `streams`. */
export const RUST_LOG_DEPS = cbor([
  udt('StaticString', 0, false),
  udt('StaticStringDependency', 0, false),
  udt('LogMetadataRecord', 48, false, [
    m('id', 'u64', 0, 8, false), m('fmt_str', '* const u8', 8, 8, true), m('target', '* const u8', 16, 8, true),
    m('module_path', '* const u8', 24, 8, true), m('file', '* const u8', 32, 8, true), m('line', 'u32', 40, 4, false), m('level', 'u32', 44, 4, false),
  ]),
]);
export const RUST_LOG_OBJS = cbor([
  udt('LogStaticStrEvent', 16, false, [m('desc', '&LogMetadata', 0, 8, true), m('time', 'i64', 8, 8, false)]),
  udt('LogStringEventV2', 0, false),
]);

export const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
export const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
export const rec = (index: number, body: Buffer, variable: boolean) =>
  Buffer.concat([Buffer.from([index]), variable ? u32(body.length) : Buffer.alloc(0), body]);
export const str = (id: bigint, s: string) => rec(0, Buffer.concat([u64(id), Buffer.from(s)]), true);

/** A log block: one static-string event per (message, level, time in ns since process start). */
export function logBlock(events: { msg: string; level: number; ns: bigint }[]): Buffer {
  const deps: Buffer[] = [str(1n, 'app'), str(2n, 'main.rs')];
  const objs: Buffer[] = [];
  events.forEach((e, i) => {
    const s = 100n + BigInt(i);
    const d = 1000n + BigInt(i);
    deps.push(str(s, e.msg));
    deps.push(rec(2, Buffer.concat([u64(d), u64(s), u64(1n), u64(1n), u64(2n), u32(1), u32(e.level)]), false));
    objs.push(rec(0, Buffer.concat([u64(d), u64(e.ns)]), false));
  });
  return payload(Buffer.concat(deps), Buffer.concat(objs));
}

/** Rust thread-stream tables (reference §4.2), reduced to plain begin/end span events. */
export const CPU_DEPS = cbor([
  udt('SpanRecord', 48, false, [m('id', 'u64', 0, 8, false), m('name', '*', 8, 8, true), m('target', '*', 16, 8, true),
    m('module_path', '*', 24, 8, true), m('file', '*', 32, 8, true), m('line', 'u32', 40, 4, false), m('lod', 'u32', 44, 4, false)]),
  udt('StaticString', 0, false),
]);
export const CPU_OBJS = cbor([
  udt('BeginThreadSpanEvent', 16, false, [m('thread_span_desc', '&', 0, 8, true), m('time', 'i64', 8, 8, false)]),
  udt('EndThreadSpanEvent', 16, false, [m('thread_span_desc', '&', 0, 8, true), m('time', 'i64', 8, 8, false)]),
]);

/** A cpu block of sequential spans (name, begin and end in ns since process start). */
export function threadSpanBlock(spans: { name: string; begin: bigint; end: bigint }[]): Buffer {
  const deps: Buffer[] = [rec(1, Buffer.concat([u64(1n), Buffer.from('game')]), true), rec(1, Buffer.concat([u64(2n), Buffer.from('g.rs')]), true)];
  const objs: Buffer[] = [];
  spans.forEach((s, i) => {
    const nameId = 10n + BigInt(i);
    const desc = 100n + BigInt(i);
    deps.push(rec(1, Buffer.concat([u64(nameId), Buffer.from(s.name)]), true));
    deps.push(rec(0, Buffer.concat([u64(desc), u64(nameId), u64(1n), u64(1n), u64(2n), u32(i + 1), u32(1)]), false));
    objs.push(rec(0, Buffer.concat([u64(desc), u64(s.begin)]), false), rec(1, Buffer.concat([u64(desc), u64(s.end)]), false));
  });
  return payload(Buffer.concat(deps), Buffer.concat(objs));
}

export const T0 = new Date('2026-11-24T12:00:00Z');

/** Where a process started and how its ticks run (reference §5); defaults: T0, ticks = ns. */
export interface ProcessClock {
  startTime?: Date;
  startTicks?: number;
  tscFrequency?: number;
}

/** One block for `addBlocks`: times are absolute, ticks relative to process start. */
export interface BlockRow {
  processId: string;
  streamId: string;
  body: Buffer;
  nbObjects: number;
  objectOffset: number;
  beginTime: Date;
  beginTicks: number;
  endTime: Date;
  endTicks: number;
  /** When the gateway recorded it; a live process's blocks arrive shortly after `endTime`. */
  insertTime: Date;
}

export class TestLake {
  private constructor(readonly client: pg.Client, readonly url: string, readonly storeDir: string) {}

  static async create(baseUrl: string): Promise<TestLake> {
    const db = `mm_analytics_ts_${randomUUID().replace(/-/g, '')}`;
    const admin = new pg.Client({ connectionString: baseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    const url = new URL(baseUrl);
    url.pathname = `/${db}`;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    const here = dirname(fileURLToPath(import.meta.url));
    await client.query(readFileSync(join(here, '../../engine/tests/fixtures/ingestion_schema.sql'), 'utf8'));
    return new TestLake(client, url.toString(), mkdtempSync(join(tmpdir(), `${db}-`)));
  }

  get objectStoreUri(): string {
    return `file://${this.storeDir}`;
  }

  async addProcess(processId: string, exe: string, clock: ProcessClock = {}): Promise<void> {
    const start = clock.startTime ?? T0;
    await this.client.query(
      `INSERT INTO processes VALUES ($1, $2, 'bob', 'Bob', 'host-2', 'linux', 'cpu', $4, $3, $5, $3, NULL, '{}')`,
      [processId, exe, start, clock.tscFrequency ?? 1000000000, clock.startTicks ?? 0],
    );
  }

  async addLogStream(streamId: string, processId: string): Promise<void> {
    await this.addStream(streamId, processId, RUST_LOG_DEPS, RUST_LOG_OBJS, 'log');
  }

  async addStream(streamId: string, processId: string, deps: Buffer, objs: Buffer, tag: string, insertTime: Date = T0): Promise<void> {
    await this.client.query(`INSERT INTO streams VALUES ($1, $2, $3, $4, ARRAY[$6::text], '{}', $5)`, [streamId, processId, deps, objs, insertTime, tag]);
  }

  /** Stores the payload in upstream's layout and records the block (times in seconds after T0). */
  async addBlock(processId: string, streamId: string, body: Buffer, nbObjects: number, beginS: number, endS: number, objectOffset = 0): Promise<void> {
    const blockId = randomUUID();
    const path = join(this.storeDir, 'blobs', processId, streamId, blockId);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, body);
    const at = (s: number) => new Date(T0.getTime() + s * 1000);
    await this.client.query(
      `INSERT INTO blocks VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $11, $9, $10, NULL, NULL)`,
      [blockId, streamId, processId, at(beginS), Math.round(beginS * 1e9), at(endS), Math.round(endS * 1e9), nbObjects, body.length, at(endS), objectOffset],
    );
  }

  /**
   * Stores many payloads (upstream's layout, one file each) and records them with one
   * multi-row INSERT per call: the way to load hours of blocks without a round trip per block.
   */
  async addBlocks(rows: BlockRow[]): Promise<void> {
    if (rows.length === 0) return;
    const dirs = new Set<string>();
    const params: unknown[] = [];
    const values: string[] = [];
    for (const r of rows) {
      const blockId = randomUUID();
      const dir = join(this.storeDir, 'blobs', r.processId, r.streamId);
      if (!dirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        dirs.add(dir);
      }
      writeFileSync(join(dir, blockId), r.body);
      const p = params.length;
      values.push(`(${Array.from({ length: 11 }, (_, i) => `$${p + i + 1}`).join(', ')}, NULL, NULL)`);
      params.push(blockId, r.streamId, r.processId, r.beginTime, r.beginTicks, r.endTime, r.endTicks, r.nbObjects, r.objectOffset, r.body.length, r.insertTime);
    }
    await this.client.query(
      `INSERT INTO blocks(block_id, stream_id, process_id, begin_time, begin_ticks, end_time, end_ticks, nb_objects, object_offset, payload_size, insert_time, payload_object, payload_offset) VALUES ${values.join(', ')}`,
      params,
    );
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
