/**
 * Test-only decoder of what the SDK sent: CBOR envelopes and payloads (cbor-x), LZ4 frames (own
 * decoder, below) and transit records read generically from the UDT metadata of insert_stream
 * (PROTOCOL.md §5-§7). It reads what a real receiver reads, so the tests check the wire, not the
 * SDK. Sources: the gateway's storage (helpers/gateway.ts) or the directory sink (readCapture).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decode as cborDecode } from 'cbor-x';

export interface Member { name: string; type_name: string; offset: number; size: number; is_reference: boolean }
export interface Udt { name: string; size: number; members: Member[]; is_reference: boolean }
export interface Stream {
  stream_id: string;
  tags: string[];
  properties: Record<string, string>;
  dependencies_metadata: Udt[];
  objects_metadata: Udt[];
}
/** One decoded object: its type name, its stream and its members by name. */
export type Event = { type: string; stream: Stream; [member: string]: unknown };
export interface Capture {
  process: Record<string, unknown> | undefined;
  streams: Map<string, Stream>;
  events: Event[];
  /** What arrived: request files (directory sink) or stored block ids (gateway). */
  files: string[];
}

// ---- LZ4 frame -------------------------------------------------------------------------------

export function lz4FrameDecode(src: Uint8Array): Uint8Array {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (dv.getUint32(0, true) !== 0x184d2204) throw new Error('lz4: bad magic');
  const flg = src[4];
  let p = 7 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
  const blockChecksum = (flg & 0x10) !== 0;
  let out = new Uint8Array(Math.max(256, src.length * 4));
  let n = 0;
  const ensure = (extra: number): void => {
    if (n + extra <= out.length) return;
    let size = out.length * 2;
    while (size < n + extra) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(out.subarray(0, n));
    out = bigger;
  };
  for (;;) {
    const word = dv.getUint32(p, true);
    p += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    const block = src.subarray(p, p + size);
    p += size + (blockChecksum ? 4 : 0);
    if (word & 0x80000000) {
      ensure(size);
      out.set(block, n);
      n += size;
      continue;
    }
    let i = 0;
    while (i < block.length) {
      const token = block[i++];
      let lit = token >> 4;
      if (lit === 15) for (let b = 255; b === 255; lit += b) b = block[i++];
      ensure(lit);
      out.set(block.subarray(i, i + lit), n);
      n += lit;
      i += lit;
      if (i >= block.length) break;
      const offset = block[i] | (block[i + 1] << 8);
      i += 2;
      let len = token & 15;
      if (len === 15) for (let b = 255; b === 255; len += b) b = block[i++];
      len += 4;
      ensure(len);
      for (let k = 0; k < len; ++k, ++n) out[n] = out[n - offset];
    }
  }
  return out.subarray(0, n);
}

// ---- transit ---------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8');
const utf16 = new TextDecoder('utf-16le');

class Reader {
  dv: DataView;
  constructor(public buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(o: number): number { return this.dv.getUint8(o); }
  u32(o: number): number { return this.dv.getUint32(o, true); }
  u64(o: number): bigint { return this.dv.getBigUint64(o, true); }
  i64(o: number): bigint { return this.dv.getBigInt64(o, true); }
  f64(o: number): number { return this.dv.getFloat64(o, true); }
  text(codec: number, o: number, len: number): string {
    const bytes = this.buf.subarray(o, o + len);
    return codec === 1 ? utf16.decode(bytes) : utf8.decode(bytes);
  }
  /** codec u8, len u32, bytes: returns [string, bytes consumed]. */
  dynString(o: number): [string, number] {
    const codec = this.u8(o), len = this.u32(o + 1);
    return [this.text(codec, o + 5, len), 5 + len];
  }
}

type Deps = Map<bigint, unknown>;

function byName(table: Udt[], name: string): Udt | undefined {
  return table.find((u) => u.name === name);
}

/** §5.5: reads one fixed-size instance by its metadata. */
function reflect(r: Reader, base: number, udt: Udt, table: Udt[], deps: Deps): Record<string, unknown> | unknown {
  const obj: Record<string, unknown> = {};
  for (const m of udt.members) {
    const o = base + m.offset;
    if (m.is_reference) {
      const id = r.u64(o);
      if (!deps.has(id)) throw new Error(`${udt.name}.${m.name}: unknown dependency id ${id}`);
      obj[m.name] = deps.get(id);
      continue;
    }
    switch (m.type_name) {
      case 'u8': case 'uint8': obj[m.name] = r.u8(o); break;
      case 'u32': case 'uint32': obj[m.name] = r.u32(o); break;
      case 'u64': case 'uint64': case 'usize': obj[m.name] = r.u64(o); break;
      case 'i64': case 'int64': obj[m.name] = r.i64(o); break;
      case 'f64': obj[m.name] = r.f64(o); break;
      default: {
        const nested = byName(table, m.type_name);
        if (!nested) throw new Error(`${udt.name}.${m.name}: unknown type ${m.type_name}`);
        obj[m.name] = reflect(r, o, nested, table, deps);
      }
    }
  }
  return udt.is_reference ? obj.id : obj;
}

function stringRef(r: Reader, o: number, deps: Deps): unknown {
  return deps.get(r.u64(o));
}

function readDependencies(buf: Uint8Array, table: Udt[]): Deps {
  const r = new Reader(buf);
  const deps: Deps = new Map();
  let p = 0;
  while (p < buf.length) {
    const udt = table[r.u8(p++)];
    if (!udt) throw new Error(`dependency type index out of range at ${p - 1}`);
    if (udt.size > 0) {
      const v = reflect(r, p, udt, table, deps) as Record<string, unknown>;
      deps.set(r.u64(p + udt.members.find((m) => m.name === 'id')!.offset), { type: udt.name, ...v });
      p += udt.size;
      continue;
    }
    const size = r.u32(p);
    const b = p + 4;
    p = b + size;
    const id = r.u64(b);
    switch (udt.name) {
      case 'StaticString': deps.set(id, r.text(2, b + 8, size - 8)); break;
      case 'StaticStringDependency': deps.set(id, r.dynString(b + 8)[0]); break;
      case 'PropertySetDependency': {
        const prop = byName(table, 'Property')!;
        const count = r.u32(b + 8);
        const set: Record<string, unknown> = {};
        for (let i = 0; i < count; ++i) {
          const v = reflect(r, b + 12 + i * prop.size, prop, table, deps) as Record<string, unknown>;
          set[String(v.name)] = v.value;
        }
        deps.set(id, set);
        break;
      }
      default: throw new Error(`unknown variable-size dependency ${udt.name}`);
    }
  }
  return deps;
}

function readObjects(buf: Uint8Array, table: Udt[], deps: Deps, stream: Stream, out: Event[]): void {
  const r = new Reader(buf);
  let p = 0;
  while (p < buf.length) {
    const udt = table[r.u8(p++)];
    if (!udt) throw new Error(`object type index out of range at ${p - 1}`);
    if (udt.size > 0) {
      out.push({ type: udt.name, stream, ...(reflect(r, p, udt, table, deps) as object) });
      p += udt.size;
      continue;
    }
    const size = r.u32(p);
    const b = p + 4;
    p = b + size;
    const ref = byName(table, 'StaticStringRef')?.size ?? 16;
    switch (udt.name) {
      case 'LogStringEventV2':
        out.push({ type: udt.name, stream, desc: deps.get(r.u64(b)), time: r.i64(b + 8), msg: r.dynString(b + 16)[0] });
        break;
      case 'TaggedLogString':
        out.push({
          type: udt.name, stream, desc: deps.get(r.u64(b)), properties: deps.get(r.u64(b + 8)),
          time: r.i64(b + 16), msg: r.dynString(b + 24)[0],
        });
        break;
      case 'LogStringInteropEventV3':
        out.push({
          type: udt.name, stream, time: r.i64(b), level: r.u8(b + 8), target: stringRef(r, b + 9, deps),
          msg: r.dynString(b + 9 + ref)[0],
        });
        break;
      default:
        out.push({ type: udt.name, stream, unknown: true });
    }
  }
}

function toBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  throw new Error('payload entry is neither bytes nor an array');
}

/**
 * Decodes one stored block payload (CBOR {"dependencies": lz4 frame, "objects": lz4 frame}, what
 * the SDK sends and what the gateway stores) and appends its events; checks nb_objects.
 */
export function decodeBlock(stream: Stream, payload: Record<string, unknown>, nbObjects: number, label: string, out: Event[]): void {
  const deps = readDependencies(lz4FrameDecode(toBytes(payload.dependencies)), stream.dependencies_metadata);
  const before = out.length;
  readObjects(lz4FrameDecode(toBytes(payload.objects)), stream.objects_metadata, deps, stream, out);
  if (out.length - before !== nbObjects) throw new Error(`${label}: nb_objects ${nbObjects}, decoded ${out.length - before}`);
}

/** Reads every request body the directory sink wrote in dir, in the order written. */
export function readCapture(dir: string): Capture {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cbor')).sort() : [];
  const cap: Capture = { process: undefined, streams: new Map(), events: [], files };
  for (const f of files) {
    const body = cborDecode(fs.readFileSync(path.join(dir, f))) as Record<string, unknown>;
    if (f.endsWith('insert_process.cbor')) cap.process = body;
    else if (f.endsWith('insert_stream.cbor')) cap.streams.set(body.stream_id as string, body as unknown as Stream);
    else if (f.endsWith('insert_block.cbor')) {
      const stream = cap.streams.get(body.stream_id as string);
      if (!stream) throw new Error(`${f}: block before its stream`);
      decodeBlock(stream, body.payload as Record<string, unknown>, Number(body.nb_objects), f, cap.events);
    }
  }
  return cap;
}

// ---- conveniences for assertions ---------------------------------------------------------------

export interface LogEntry { level: number; target: string; msg: string; time: bigint; properties?: Record<string, unknown>; type: string }

/** Logs as analytics sees them (§8.5): level/target from the descriptor or the event. */
export function logs(cap: Capture): LogEntry[] {
  return cap.events.filter((e) => e.stream.tags.includes('log')).map((e) => {
    const desc = e.desc as Record<string, unknown> | undefined;
    const msg = e.type === 'LogStaticStrEvent' ? String(desc!.fmt_str) : String(e.msg);
    return {
      type: e.type,
      level: Number(desc ? desc.level : e.level),
      target: String(desc ? desc.target : e.target),
      msg,
      time: e.time as bigint,
      properties: e.properties as Record<string, unknown> | undefined,
    };
  });
}

export interface MeasureEntry { name: string; unit: string; target: string; value: number | bigint; time: bigint; type: string; properties?: Record<string, unknown> }

export function measures(cap: Capture): MeasureEntry[] {
  return cap.events.filter((e) => e.stream.tags.includes('metrics')).map((e) => {
    const desc = e.desc as Record<string, unknown>;
    return {
      type: e.type, name: String(desc.name), unit: String(desc.unit), target: String(desc.target),
      value: e.value as number | bigint, time: e.time as bigint, properties: e.properties as Record<string, unknown> | undefined,
    };
  });
}

export interface SpanEvent { type: string; name: string; thread: string; time: bigint; span_id?: bigint; parent_span_id?: bigint; depth?: number }

export function spanEvents(cap: Capture): SpanEvent[] {
  return cap.events.filter((e) => e.stream.tags.includes('cpu')).map((e) => {
    const desc = (e.thread_span_desc ?? e.span_desc) as Record<string, unknown>;
    return {
      type: e.type, name: String(desc?.name), thread: e.stream.properties['thread-id'], time: e.time as bigint,
      span_id: e.span_id as bigint | undefined, parent_span_id: e.parent_span_id as bigint | undefined,
      depth: e.depth as number | undefined,
    };
  });
}
