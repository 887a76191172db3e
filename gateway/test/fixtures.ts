// Request bodies built from the wire reference (upstream-wire-protocol.md §2), in both
// producer styles: Rust (definite lengths, lowercase ids, +00:00 nanosecond times) and
// Unreal (indefinite lengths, uppercase block_id, Z millisecond times).

import { randomUUID } from 'node:crypto';
import { encodeCbor, type Encodable } from '../src/cbor.js';
import { xxh32 } from '../src/lz4-frame.js';

/** Indefinite-length CBOR as jsoncons writes it (maps 0xbf..0xff, arrays 0x9f..0xff). */
export function encodeIndefinite(v: Encodable): Buffer {
  const out: Buffer[] = [];
  const walk = (x: Encodable) => {
    if (Array.isArray(x)) {
      out.push(Buffer.from([0x9f]));
      x.forEach(walk);
      out.push(Buffer.from([0xff]));
    } else if (x !== null && typeof x === 'object' && !Buffer.isBuffer(x)) {
      out.push(Buffer.from([0xbf]));
      for (const [k, y] of x.entries) {
        walk(k);
        walk(y);
      }
      out.push(Buffer.from([0xff]));
    } else encodeCbor(x, out);
  };
  walk(v);
  return Buffer.concat(out);
}

export const definite = (v: Encodable) => Buffer.concat(encodeCbor(v));
const map = (o: Record<string, Encodable>): Encodable => ({ entries: Object.entries(o) });

/**
 * A valid LZ4 frame holding `content` in uncompressed blocks (legal per the frame
 * format, decodable by any LZ4 frame reader). `flg` picks the producer's flags.
 */
export function lz4Frame(content: Buffer, flg = 0x64): Buffer {
  const desc = Buffer.from([flg, 0x40]);
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18]), desc, Buffer.from([(xxh32(desc, 0) >>> 8) & 0xff])];
  for (let off = 0; off < content.length; off += 65536) {
    const chunk = content.subarray(off, off + 65536);
    const size = Buffer.alloc(4);
    size.writeUInt32LE((chunk.length | 0x80000000) >>> 0);
    parts.push(size, chunk);
    if (flg & 0x10) parts.push(u32(xxh32(chunk, 0)));
  }
  parts.push(Buffer.alloc(4));
  if (flg & 0x04) parts.push(u32(xxh32(content, 0)));
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export type Style = 'rust' | 'unreal';

export function processBody(style: Style, id: string = randomUUID(), extra: Record<string, Encodable> = {}): Buffer {
  const fields = {
    process_id: id,
    exe: '/usr/bin/game',
    username: 'ana',
    realname: style === 'rust' ? 'Ana Example' : 'ana',
    computer: 'box-1',
    distro: 'Linux 6.1',
    cpu_brand: 'Example CPU',
    tsc_frequency: 2_400_000_000,
    start_time: style === 'rust' ? '2026-08-21T16:53:43.123456789Z' : '2026-08-21T16:53:43.123Z',
    start_ticks: 123456789012,
    parent_process_id: style === 'rust' ? null : '',
    properties: map({ 'build-version': '1.2.3', 'micromegas.audience': 'spoofed' }),
    ...extra,
  };
  return style === 'rust' ? definite(map(fields)) : encodeIndefinite(map(fields));
}

const member = (name: string, type_name: string, offset: number, size: number) =>
  map({ name, type_name, offset, size, is_reference: false });

export function streamBody(style: Style, processId: string, streamId: string = randomUUID()): Buffer {
  const udt = map({
    name: 'LogStringEvent',
    size: 0,
    members: [member('time', style === 'rust' ? 'i64' : 'uint64', 0, 8)],
    is_reference: false,
  });
  const fields = {
    process_id: processId,
    stream_id: streamId,
    dependencies_metadata: [map({ name: 'StaticString', size: 0, members: [], is_reference: true })],
    objects_metadata: [udt],
    tags: ['log'],
    properties: map({ 'thread-name': 'main' }),
  };
  return style === 'rust' ? definite(map(fields)) : encodeIndefinite(map(fields));
}

export interface BlockFixture {
  body: Buffer;
  blockId: string; // lowercase
  /** What the gateway must store: CBOR {"dependencies": bytes, "objects": bytes}. */
  expectedPayload: Buffer;
}

export function blockBody(
  style: Style | 'rust-legacy',
  processId: string,
  streamId: string,
  opts: { size?: number; blockId?: string; over?: Record<string, Encodable> } = {},
): BlockFixture {
  const blockId = opts.blockId ?? randomUUID();
  const content = Buffer.alloc(opts.size ?? 1024);
  for (let i = 0; i < content.length; i++) content[i] = (i * 31 + blockId.charCodeAt(i % 36)) & 0xff;
  const deps = lz4Frame(Buffer.from('deps:' + blockId), style === 'unreal' ? 0x60 : 0x44);
  const objs = lz4Frame(content, style === 'unreal' ? 0x60 : 0x44);
  const asBytes = (b: Buffer): Encodable => (style === 'rust-legacy' ? [...b] : b);
  const fields = {
    block_id: style === 'unreal' ? blockId.toUpperCase() : blockId,
    stream_id: streamId,
    process_id: processId,
    begin_time: style === 'unreal' ? '2026-08-21T16:53:44.000Z' : '2026-08-21T16:53:44.000000001+00:00',
    begin_ticks: 1000,
    end_time: style === 'unreal' ? '2026-08-21T16:53:45.500Z' : '2026-08-21T18:53:45.123456789+02:00',
    end_ticks: 2000,
    payload: map({ dependencies: asBytes(deps), objects: asBytes(objs) }),
    object_offset: 0,
    nb_objects: 42,
    ...opts.over,
  };
  const body = style === 'unreal' ? encodeIndefinite(map(fields)) : definite(map(fields));
  const expectedPayload = definite(map({ dependencies: deps, objects: objs }));
  return { body, blockId: blockId.toLowerCase(), expectedPayload };
}
