// Golden vectors: POST every vector of unreal-plugin-protocol/vectors/manifest.json to a
// live gateway (embedded default); accepted blocks must read back byte for byte, rejected
// ones must carry the manifest's status and reason. Vectors built here from the wire
// reference run too. A missing manifest is a failure, not a quieter run.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { readBlockPayload, type Gateway } from '../src/index.js';
import { decodeCbor, encodeCbor, type CborMap, type CborValue } from '../src/cbor.js';
import { blockBody, definite, lz4Frame, processBody, streamBody } from './fixtures.js';
import { embeddedGateway, repoRoot, request } from './helpers.js';

interface Vector {
  name: string;
  route: 'insert_process' | 'insert_stream' | 'insert_block';
  body: Buffer;
  processInfo?: Buffer;
  streamInfo?: Buffer;
  expect: { status: number; reason?: string };
}

const dir = join(repoRoot, 'unreal-plugin-protocol', 'vectors');
const manifestPath = join(dir, 'manifest.json');

function fromManifest(): Vector[] {
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    vectors: { name: string; route: Vector['route']; body: string; stream_info?: string; process_info?: string; expect: { gateway: Vector['expect'] } }[];
  };
  const load = (p?: string) => (p ? readFileSync(join(dir, p)) : undefined);
  return m.vectors.map((v) => ({
    name: v.name,
    route: v.route,
    body: load(v.body)!,
    processInfo: load(v.process_info),
    streamInfo: load(v.stream_info),
    expect: v.expect.gateway,
  }));
}

function builtIn(): Vector[] {
  const pid = randomUUID();
  const sid = randomUUID();
  const proc = processBody('unreal', pid);
  const stream = streamBody('unreal', pid, sid);
  const ok = (name: string, route: Vector['route'], body: Buffer): Vector => ({ name, route, body, processInfo: proc, streamInfo: stream, expect: { status: 200 } });
  const bad = (name: string, body: Buffer, reason: string): Vector => ({ name, route: 'insert_block', body, expect: { status: 400, reason } });
  const frame = lz4Frame(Buffer.from('x'));
  const truncated = frame.subarray(0, frame.length - 2);
  return [
    ok('builtin-unreal-process', 'insert_process', proc),
    ok('builtin-rust-process', 'insert_process', processBody('rust')),
    ok('builtin-unreal-stream', 'insert_stream', stream),
    ok('builtin-rust-stream', 'insert_stream', streamBody('rust', pid)),
    ok('builtin-unreal-block', 'insert_block', blockBody('unreal', pid, sid).body),
    ok('builtin-rust-block', 'insert_block', blockBody('rust', pid, sid).body),
    ok('builtin-rust-legacy-block', 'insert_block', blockBody('rust-legacy', pid, sid).body),
    ok('builtin-rust-block-large', 'insert_block', blockBody('rust', pid, sid, { size: 300_000 }).body),
    bad('builtin-corrupt-truncated-cbor', blockBody('rust', pid, sid).body.subarray(0, 50), 'truncated'),
    bad('builtin-corrupt-bad-uuid', blockBody('rust', pid, sid, { over: { stream_id: 'not-a-uuid' } }).body, 'not a valid uuid'),
    bad('builtin-corrupt-bad-time', blockBody('rust', pid, sid, { over: { begin_time: 'yesterday' } }).body, 'RFC 3339'),
    bad('builtin-corrupt-lz4', blockBody('rust', pid, sid, { over: { payload: { entries: [['dependencies', frame], ['objects', truncated]] } } }).body, 'lz4'),
    bad('builtin-corrupt-not-map', definite(['block']), 'not a CBOR map'),
  ];
}

test('the golden vector manifest is present and lists vectors', () => {
  assert.ok(existsSync(manifestPath), `${manifestPath} is missing: the golden vectors did not run`);
  assert.ok(manifest.length > 0, 'the manifest lists no vectors');
});

const manifest = existsSync(manifestPath) ? fromManifest() : [];
const vectors = [...manifest.map((v) => ({ ...v, source: 'manifest' })), ...builtIn().map((v) => ({ ...v, source: 'built-in' }))];
let gw: Gateway;
let port: number;

before(async () => {
  ({ gw, port } = await embeddedGateway());
});
after(async () => gw.close());

/** The object upstream stores: the payload map re-encoded with byte strings (§2.8). */
function expectedPayload(body: Buffer): Buffer {
  const p = (decodeCbor(body) as CborMap).payload as CborMap;
  const bytes = (v: CborValue) => (Buffer.isBuffer(v) ? v : Buffer.from(v as number[]));
  return Buffer.concat(encodeCbor({ entries: [['dependencies', bytes(p.dependencies)], ['objects', bytes(p.objects)]] }));
}

for (const v of vectors) {
  test(`${v.source} vector ${v.name}: ${v.route} -> ${v.expect.status}`, async () => {
    if (v.processInfo) assert.equal((await request(port, '/ingestion/insert_process', v.processInfo)).status, 200);
    if (v.streamInfo) assert.equal((await request(port, '/ingestion/insert_stream', v.streamInfo)).status, 200);
    const r = await request(port, `/ingestion/${v.route}`, v.body);
    assert.equal(r.status, v.expect.status, r.body);
    if (v.expect.reason) assert.ok(r.body.includes(v.expect.reason), `reason '${r.body}' lacks '${v.expect.reason}'`);
    if (r.status !== 200) return;
    const doc = decodeCbor(v.body) as CborMap;
    if (v.route === 'insert_block') {
      const row = await gw.metadata.getBlock(String(doc.block_id).toLowerCase());
      assert.ok(row, 'block row exists');
      assert.ok((await readBlockPayload(gw.objects, row)).equals(expectedPayload(v.body)), 'payload reads back byte for byte');
    } else {
      const [table, key] = v.route === 'insert_process' ? ['processes', 'process_id'] : ['streams', 'stream_id'];
      const rows = await gw.metadata.db.query(`SELECT 1 FROM ${table} WHERE ${key} = $1`, [String(doc[key]).toLowerCase()]);
      assert.equal(rows.length, 1);
    }
  });
}
