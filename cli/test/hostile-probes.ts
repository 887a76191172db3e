// Plumbing for the hostile-client suite (hostile.test.ts): good blocks with real events (the golden
// vectors re-issued under fresh ids, moved to yesterday), bad blocks crafted from them, LZ4 frames
// built by hand, raw-socket uploads that stall, and what /proc says about the server process.
import { randomUUID, createHash } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The gateway's own CBOR codec and xxHash32 (not part of its public index, but the same bytes its
// reader accepts): the suite crafts bodies with them instead of forking a codec.
import { decodeCbor, encodeCbor, xxh32, type CborValue, type Encodable } from '@micromegas/gateway';

export const VECTORS = fileURLToPath(new URL('../../../unreal-plugin-protocol/vectors/', import.meta.url));

type Fields = { [key: string]: CborValue };

function load(path: string): Fields {
  return decodeCbor(readFileSync(join(VECTORS, path))) as Fields;
}

function encodable(v: CborValue): Encodable {
  if (v === undefined) return null;
  if (Buffer.isBuffer(v) || v === null || typeof v !== 'object') return v as Encodable;
  if (Array.isArray(v)) return v.map(encodable);
  return { entries: Object.entries(v).map(([k, x]) => [k, encodable(x)]) };
}

/** A definite-length CBOR map body with the fields of `base`, `over` replacing or adding fields. */
export function cborBody(base: Fields, over: Record<string, Encodable> = {}): Buffer {
  const entries: [string, Encodable][] = Object.entries(base).map(([k, v]) => [k, k in over ? over[k] : encodable(v)]);
  for (const [k, v] of Object.entries(over)) if (!(k in base)) entries.push([k, v]);
  return Buffer.concat(encodeCbor({ entries }));
}

// ---- time: the vectors' 2026-01-01 moved to yesterday by whole days ----

const DAY_MS = 86_400_000;
/** Whole days that move the vectors' times (2026-01-01) to yesterday: a shift by whole days keeps
 * every offset valid and every event time consistent with its ticks. */
export const SHIFT_DAYS = Math.floor((Date.now() - Date.UTC(2026, 0, 1)) / DAY_MS) - 1;

/** An RFC 3339 time moved by `days` (its offset and time of day untouched). */
export function shiftTime(t: string, days = SHIFT_DAYS): string {
  const d = new Date(Date.UTC(Number(t.slice(0, 4)), Number(t.slice(5, 7)) - 1, Number(t.slice(8, 10)) + days));
  return d.toISOString().slice(0, 10) + t.slice(10);
}

/** A range holding every shifted vector time and everything posted during the run. */
export function vectorRange(): { begin: string; end: string } {
  return { begin: new Date(Date.UTC(2026, 0, 1) + (SHIFT_DAYS - 1) * DAY_MS).toISOString(), end: new Date(Date.now() + DAY_MS).toISOString() };
}

// ---- good processes, streams and blocks from the golden vectors ----

export type Producer = 'rust' | 'unreal';
export type StreamKind = 'log' | 'metrics' | 'cpu';

export interface Ingest {
  route: 'insert_process' | 'insert_stream' | 'insert_block';
  body: Buffer;
}

/** One producer's process from the vectors under a fresh process id, its streams under fresh ids. */
export class VectorProcess {
  readonly processId = randomUUID();
  readonly streamIds = new Map<StreamKind, string>();

  constructor(readonly producer: Producer) {}

  process(): Ingest {
    const p = load(`${this.producer}/process.cbor`);
    return { route: 'insert_process', body: cborBody(p, { process_id: this.processId, start_time: shiftTime(String(p.start_time)) }) };
  }

  stream(kind: StreamKind): Ingest {
    const id = this.streamIds.get(kind) ?? randomUUID();
    this.streamIds.set(kind, id);
    return { route: 'insert_stream', body: cborBody(load(`${this.producer}/${kind}/stream.cbor`), { stream_id: id, process_id: this.processId }) };
  }

  /** The fields of a vector block of `kind`, re-issued in this process's stream under a fresh block id. */
  blockFields(kind: StreamKind, file = 'block'): Record<string, Encodable> {
    const b = load(`${this.producer}/${kind}/${file}.cbor`);
    return {
      block_id: randomUUID(),
      stream_id: this.streamIds.get(kind) ?? assertNever(`stream ${kind} not created`),
      process_id: this.processId,
      begin_time: shiftTime(String(b.begin_time)),
      end_time: shiftTime(String(b.end_time)),
    };
  }

  /** A vector block under a fresh id; `over` replaces fields (payload, nb_objects, times…). */
  block(kind: StreamKind, over: Record<string, Encodable> = {}, file = 'block'): Ingest {
    return { route: 'insert_block', body: cborBody(load(`${this.producer}/${kind}/${file}.cbor`), { ...this.blockFields(kind, file), ...over }) };
  }

  /** Events the vector block holds (what its view shows for it). */
  static events(producer: Producer, kind: StreamKind, file = 'block'): number {
    return (JSON.parse(readFileSync(join(VECTORS, producer, kind, `${file}.json`), 'utf8')) as { events: unknown[] }).events.length;
  }
}

function assertNever(message: string): never {
  throw new Error(message);
}

/** The LZ4 frames of a vector block's payload. */
export function vectorPayload(path: string): { dependencies: Buffer; objects: Buffer } {
  const p = load(path).payload as Fields;
  return { dependencies: p.dependencies as Buffer, objects: p.objects as Buffer };
}

export function payload(dependencies: Buffer, objects: Buffer): Encodable {
  return { entries: [['dependencies', dependencies], ['objects', objects]] };
}

export interface Answer {
  status: number;
  text: string;
  headers: Headers;
}

export async function ingest(url: string, i: Ingest): Promise<Answer> {
  const res = await fetch(`${url}/ingestion/${i.route}`, { method: 'POST', body: new Uint8Array(i.body), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

// ---- LZ4 frames built by hand (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md) ----

const MAGIC = Buffer.from([0x04, 0x22, 0x4d, 0x18]);

function frameHeader(bd: number): Buffer {
  const desc = Buffer.from([0x60, bd]); // version 1, independent blocks, no checksums, no content size
  return Buffer.concat([MAGIC, desc, Buffer.from([(xxh32(desc, 0) >>> 8) & 0xff])]);
}

const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A valid frame holding `content` in stored (uncompressed) 64 KiB blocks. */
export function lz4Stored(content: Buffer): Buffer {
  const parts = [frameHeader(0x40)];
  for (let at = 0; at < content.length; at += 65536) {
    const chunk = content.subarray(at, at + 65536);
    parts.push(u32le(chunk.length | 0x80000000), chunk);
  }
  parts.push(u32le(0));
  return Buffer.concat(parts);
}

/** A valid frame of ~16 KiB compressed blocks, each inflating to 4 MiB of zeros: `totalBytes`
 * of output for ~totalBytes/255 of input. No declared content size. */
export function lz4Bomb(totalBytes: number): Buffer {
  const BLOCK = 4 << 20;
  // One sequence: a literal zero, then a match at offset 1 repeating it; the block ends with 5
  // literals as the format requires.
  const matchLength = BLOCK - 1 - 5;
  let rest = matchLength - 4 - 15;
  const ext: number[] = [];
  while (rest >= 255) (ext.push(255), (rest -= 255));
  ext.push(rest);
  const block = Buffer.from([0x1f, 0x00, 0x01, 0x00, ...ext, 0x50, 0, 0, 0, 0, 0]);
  const parts = [frameHeader(0x70)];
  for (let n = 0; n < totalBytes; n += BLOCK) parts.push(u32le(block.length), block);
  parts.push(u32le(0));
  return Buffer.concat(parts);
}

/** The content of an LZ4 frame (our own vectors only: trusted, so no bounds beyond the obvious). */
export function lz4Decompress(frame: Buffer): Buffer {
  if (!frame.subarray(0, 4).equals(MAGIC)) throw new Error('lz4: bad magic');
  const flg = frame[4];
  let pos = 4 + 2 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0) + 1;
  const out: number[] = [];
  for (;;) {
    const word = frame.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    const block = frame.subarray(pos, pos + size);
    pos += size + (flg & 0x10 ? 4 : 0);
    if (word & 0x80000000) {
      for (const b of block) out.push(b);
      continue;
    }
    for (let i = 0; i < block.length; ) {
      const token = block[i++];
      let lit = token >> 4;
      if (lit === 15) for (let b = 255; b === 255; ) (b = block[i++]), (lit += b);
      for (let k = 0; k < lit; k++) out.push(block[i++]);
      if (i >= block.length) break; // the last sequence has literals only
      const offset = block[i] | (block[i + 1] << 8);
      i += 2;
      let len = (token & 15) + 4;
      if ((token & 15) === 15) for (let b = 255; b === 255; ) (b = block[i++]), (len += b);
      for (let k = 0, from = out.length - offset; k < len; k++) out.push(out[from + k]);
    }
  }
  return Buffer.from(out);
}

// ---- raw HTTP: uploads that stall ----

export interface RawAnswer {
  /** The HTTP status; 0 when the server closed without one, -1 when nothing came within the wait. */
  status: number;
  /** What the server sent (status line and headers, at least). */
  head: string;
}

/** Sends the headers of a POST declaring `declared` body bytes and `send` of them, then stalls
 * until the server answers (or `waitMs` pass). With `headersFirstMs`, the body waits that long
 * after the headers, and is not sent if the server answers meanwhile: a refusal at the headers
 * then reaches the client (a server closing on unread bytes resets the connection, and the
 * client may lose the answer). */
export function stalledUpload(port: number, path: string, declared: number, send: number, waitMs: number, headersFirstMs = 0): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    const done = (status: number) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, head });
    };
    const timer = setTimeout(() => done(-1), waitMs);
    socket.on('data', (d) => {
      head += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})[^]*?\r\n\r\n/.exec(head);
      if (m) done(Number(m[1]));
    });
    socket.on('error', () => done(0));
    socket.on('close', () => done(0));
    let answered = false;
    socket.once('data', () => (answered = true));
    const sendBody = () => {
      if (answered) return;
      const chunk = Buffer.alloc(1 << 20, 0xa5);
      for (let sent = 0; sent < send; sent += chunk.length) socket.write(chunk.subarray(0, Math.min(chunk.length, send - sent)));
    };
    socket.on('connect', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/cbor\r\nContent-Length: ${declared}\r\n\r\n`);
      if (headersFirstMs > 0) setTimeout(sendBody, headersFirstMs);
      else sendBody();
    });
  });
}

// ---- the server process as /proc shows it ----

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds the process (all its threads) has used. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // utime, stime
}

/** Cores the process used over the next `ms`. */
export async function cpuShare(pid: number, ms: number): Promise<number> {
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, ms));
  return (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}

/** VmRSS and VmHWM (peak) of the process, in bytes. */
export function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Resets the process's VmHWM to its current RSS (Linux >= 4.0, same user): the next peak is the probe's. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** The sockets the process listens on: TCP ports, and Unix socket paths ('@…' is abstract). */
export function listeningSockets(pid: number): { tcp: number[]; unix: string[] } {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {} // closed meanwhile
  }
  const tcp: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) tcp.push(parseInt(f[1].split(':')[1], 16));
    }
  }
  const unix: string[] = [];
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Flags 00010000: listening (__SO_ACCEPTCON).
    if (f.length > 7 && inodes.has(f[6]) && (parseInt(f[3], 16) & 0x10000) !== 0) unix.push(f[7]);
  }
  return { tcp, unix };
}

/** Whether a Unix socket is closed to other users: no one else may write the socket, or no one
 * else may traverse a directory above it. */
export function ownerOnly(path: string): boolean {
  if ((statSync(path).mode & 0o022) === 0) return true;
  for (let p = dirname(path); p !== dirname(p); p = dirname(p)) if ((statSync(p).mode & 0o011) === 0) return true;
  return false;
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
