// The gateway over real sockets with the embedded default (PGlite + local directory).

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { createGateway, readBlockPayload, silentLogger, type Gateway } from '../src/index.js';
import { blockBody, processBody, streamBody } from './fixtures.js';
import { embeddedGateway, request } from './helpers.js';

let gw: Gateway;
let port: number;
let dataDir: string;
const pid = randomUUID();
const sid = randomUUID();

before(async () => {
  const g = await embeddedGateway({ maxBodyBytes: 1 << 20, bodyTimeoutMs: 1500 });
  gw = g.gw;
  port = g.port;
  dataDir = g.config.dataDir;
  assert.equal((await request(port, '/ingestion/insert_process', processBody('unreal', pid))).status, 200);
  assert.equal((await request(port, '/ingestion/insert_stream', streamBody('unreal', pid, sid))).status, 200);
});

after(async () => {
  await gw.close();
});

async function assertStored(blockId: string, expected: Buffer) {
  const row = await gw.metadata.getBlock(blockId);
  assert.ok(row, `block ${blockId} has a row`);
  assert.equal(row.payload_size, expected.length);
  assert.ok((await readBlockPayload(gw.objects, row)).equals(expected), 'payload reads back byte for byte');
}

test('blocks from every producer style are acknowledged only once stored, and read back byte for byte', async () => {
  for (const style of ['unreal', 'rust', 'rust-legacy'] as const) {
    const b = blockBody(style, pid, sid, { size: 5000 });
    const r = await request(port, '/ingestion/insert_block', b.body, style === 'unreal' ? { 'content-type': 'application/octet-stream' } : {});
    assert.equal(r.status, 200, r.body);
    await assertStored(b.blockId, b.expectedPayload);
  }
});

test("the Unreal plugin's {BaseUrl}insert_* paths and a doubled slash reach the same routes", async () => {
  for (const path of ['/insert_block', '//ingestion/insert_block']) {
    const b = blockBody('unreal', pid, sid);
    assert.equal((await request(port, path, b.body)).status, 200);
    await assertStored(b.blockId, b.expectedPayload);
  }
});

test('a retried block is harmless and concurrent duplicates converge to one row', async () => {
  const b = blockBody('rust', pid, sid);
  assert.equal((await request(port, '/ingestion/insert_block', b.body)).status, 200);
  assert.equal((await request(port, '/ingestion/insert_block', b.body)).status, 200);
  const c = blockBody('rust', pid, sid);
  const replies = await Promise.all(Array.from({ length: 20 }, () => request(port, '/ingestion/insert_block', c.body)));
  assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([200]));
  const rows = await gw.metadata.db.query<{ n: number }>('SELECT count(*)::int AS n FROM blocks WHERE block_id = ANY($1::uuid[])', [`{${b.blockId},${c.blockId}}`]);
  assert.equal(rows[0].n, 2);
  await assertStored(c.blockId, c.expectedPayload);
});

test('bodies of 0 and 1 bytes get 400 with a reason; nothing is stored', async () => {
  const before = await gw.metadata.db.query<{ n: number }>('SELECT count(*)::int AS n FROM blocks');
  const empty = await request(port, '/ingestion/insert_block', Buffer.alloc(0));
  assert.equal(empty.status, 400);
  assert.match(empty.body, /empty body/);
  const one = await request(port, '/ingestion/insert_block', Buffer.from([0x18]));
  assert.equal(one.status, 400);
  assert.match(one.body, /truncated/);
  const after = await gw.metadata.db.query<{ n: number }>('SELECT count(*)::int AS n FROM blocks');
  assert.equal(after[0].n, before[0].n);
});

test('a body over the limit gets 413, whether declared up front or discovered while streaming', async () => {
  const big = Buffer.alloc((1 << 20) + 1);
  const declared = await request(port, '/ingestion/insert_block', big);
  assert.equal(declared.status, 413);
  // Chunked transfer: the size is only known as bytes arrive.
  const streamed = await rawExchange(
    `POST /ingestion/insert_block HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
    Array.from({ length: 20 }, () => Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000), Buffer.from('\r\n')])),
  );
  assert.match(streamed, /^HTTP\/1\.1 413[^]*exceeds the 1048576-byte limit/);
  assert.equal((await request(port, '/health')).status, 200);
});

test('a client sending one byte per second gets 408 while other clients are served', async () => {
  const b = blockBody('unreal', pid, sid);
  const slow = rawExchange(`POST /ingestion/insert_block HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.body.length}\r\n\r\n`, [...b.body.subarray(0, 5)].map((x) => Buffer.from([x])), 1000);
  const other = blockBody('unreal', pid, sid);
  assert.equal((await request(port, '/ingestion/insert_block', other.body)).status, 200);
  assert.match(await slow, /^HTTP\/1\.1 408/);
  assert.equal(await gw.metadata.getBlock(b.blockId), null);
});

test('health, readiness, metrics and unknown routes', async () => {
  assert.equal((await request(port, '/health')).status, 200);
  assert.equal((await request(port, '/ready')).status, 200);
  const m = await request(port, '/metrics');
  assert.match(m.body, /gateway_http_requests_total\{route="insert_block",status="200"\} \d+/);
  assert.match(m.body, /gateway_http_requests_total\{route="insert_block",status="413"\} [1-9]/);
  assert.match(m.body, /gateway_storage_duration_seconds_count\{kind="object_put"\} [1-9]/);
  assert.equal((await request(port, '/nope')).status, 404);
  assert.equal((await request(port, '/ingestion/insert_block')).status, 405);
});

test('acknowledged blocks survive closing and reopening the data directory', async () => {
  const b = blockBody('rust', pid, sid);
  assert.equal((await request(port, '/ingestion/insert_block', b.body)).status, 200);
  await gw.close();
  gw = await createGateway({ ...(await import('../src/config.js')).defaultConfig({ dataDir }) }, { log: silentLogger });
  port = await gw.listen();
  await assertStored(b.blockId, b.expectedPayload);
});

/** Writes `head`, then each chunk (optionally spaced), and returns whatever comes back. */
function rawExchange(head: string, chunks: Buffer[], gapMs = 0): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let timer: NodeJS.Timeout | undefined;
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => {});
    s.on('close', () => (clearTimeout(timer), resolve(got)));
    s.write(head);
    let i = 0;
    const next = () => {
      if (s.destroyed || i >= chunks.length) return;
      s.write(chunks[i++]);
      if (gapMs) timer = setTimeout(next, gapMs);
      else setImmediate(next);
    };
    next();
  });
}

test('a full write queue answers 503 with Retry-After; accepted blocks still complete', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const objects = new (class {
    writes = 0;
    async putCreateOnly() {
      await gate;
      this.writes++;
      return 'created' as const;
    }
    async getRange() {
      return Buffer.alloc(0);
    }
    async get() {
      return Buffer.alloc(0);
    }
    async ping() {}
    async close() {}
  })();
  const { defaultConfig } = await import('../src/config.js');
  const { tempDir } = await import('./helpers.js');
  const g = await createGateway(defaultConfig({ dataDir: tempDir(), packMaxBytes: 1, maxQueueBytes: 2000 }), { log: silentLogger, objects });
  try {
    const post = (body: Buffer) => g.handle({ method: 'POST', path: '/ingestion/insert_block', body });
    const first = post(blockBody('rust', pid, sid, { size: 1500 }).body);
    const refused = await post(blockBody('rust', pid, sid, { size: 1500 }).body);
    assert.equal(refused.status, 503);
    assert.match(refused.body!, /write queue full/);
    assert.match(refused.headers!['Retry-After'], /^[1-5]$/);
    open();
    assert.equal((await first).status, 200);
  } finally {
    await g.close();
  }
});
