// Issue 23, the gateway's part: every hostile input gets its 4xx over real HTTP against a real
// PostgreSQL, one bad row never costs the good rows of its pack, a block must belong to its
// stream's process, and the doors are closed (no auth off a loopback address, a global cap on
// buffered bodies). After each probe: the server still answers and acknowledged blocks are intact.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { createGateway, defaultConfig, readBlockPayload, silentLogger, type Gateway } from '../src/index.js';
import { encodeCbor, type Encodable } from '../src/cbor.js';
import { blockBody, definite, processBody, streamBody } from './fixtures.js';
import { freshDatabase, getServices, request, tempDir, type Res, type Services } from './helpers.js';

let services: Services;
let gw: Gateway;
let port: number;
const pid = randomUUID();
const sid = randomUUID();
/** Every block acknowledged so far, checked after each probe. */
const acked: { blockId: string; payload: Buffer }[] = [];
/** Block ids the server refused: none may have a row. */
const refusedIds: string[] = [];
/** A value the validator accepts but this test database refuses (see before()). */
const EVIL_OFFSET = 666;

before(async () => {
  services = await getServices();
  const pgUrl = await freshDatabase(services.env.MICROMEGAS_TEST_PG_URL);
  // Packs wait 300 ms so the blocks posted together below share one pack (one INSERT).
  gw = await createGateway(defaultConfig({ pgUrl, objectStoreUri: `file://${tempDir()}`, disableAuth: true, packMaxDelayMs: 300 }), { log: silentLogger });
  port = await gw.listen();
  // A row PostgreSQL refuses that no gateway check can foresee: a CHECK constraint of this database.
  await gw.metadata.db.query(`ALTER TABLE blocks ADD CONSTRAINT test_no_evil_offset CHECK (object_offset <> ${EVIL_OFFSET})`);
  assert.equal((await post('insert_process', processBody('rust', pid))).status, 200);
  assert.equal((await post('insert_stream', streamBody('rust', pid, sid))).status, 200);
  await goodBlocks(3);
});

after(async () => {
  await gw?.close();
  await services?.stop();
});

const post = (route: string, body: Buffer): Promise<Res> => request(port, `/ingestion/${route}`, body);

async function goodBlocks(n: number, stream = sid, process = pid): Promise<void> {
  const blocks = Array.from({ length: n }, () => blockBody('rust', process, stream));
  const replies = await Promise.all(blocks.map((b) => post('insert_block', b.body)));
  assert.deepEqual(replies.map((r) => r.status), blocks.map(() => 200), replies.map((r) => r.body).join('; '));
  for (const b of blocks) acked.push({ blockId: b.blockId, payload: b.expectedPayload });
}

/** The server answers, every acknowledged block reads back unchanged, no refused block has a row. */
async function intact(): Promise<void> {
  assert.equal((await request(port, '/health')).status, 200);
  for (const a of acked) {
    const row = await gw.metadata.getBlock(a.blockId);
    assert.ok(row, `acknowledged block ${a.blockId} has its row`);
    assert.ok((await readBlockPayload(gw.objects, row)).equals(a.payload), `block ${a.blockId} reads back unchanged`);
  }
  const stored = await gw.metadata.db.query<{ block_id: string }>('SELECT block_id::text FROM blocks WHERE block_id = ANY($1::uuid[])', [refusedIds]);
  assert.deepEqual(stored, [], 'no refused block has a row');
}

async function refused(route: string, body: Buffer, message: RegExp, blockId?: string): Promise<void> {
  const r = await post(route, body);
  assert.equal(r.status, 400, `${route}: ${r.status} ${r.body}`);
  assert.match(r.body, message);
  if (blockId) refusedIds.push(blockId);
  await intact();
}

const badBlock = (over: Record<string, Encodable>) => blockBody('rust', pid, sid, { over });

test('times PostgreSQL cannot hold get 400, and a good block of the same window 200', async () => {
  for (const [field, value, why] of [
    ['begin_time', '0000-01-01T00:00:00Z', /'begin_time' has year 0000/],
    ['end_time', '0000-12-31T23:59:59.999999999+15:00', /'end_time' has year 0000/],
    ['begin_time', '2026-08-21T16:53:44.000000001-23:59', /'begin_time' has a UTC offset beyond ±15:59/],
    ['end_time', '2026-08-21T16:53:45+16:00', /'end_time' has a UTC offset beyond ±15:59/],
  ] as const) {
    const b = badBlock({ [field]: value });
    await refused('insert_block', b.body, why, b.blockId);
  }
  // The extremes PostgreSQL does take.
  const edge = blockBody('rust', pid, sid, { over: { begin_time: '0001-01-01T00:00:00+15:59', end_time: '9999-12-31T23:59:59.999999999-15:59' } });
  assert.equal((await post('insert_block', edge.body)).status, 200);
  acked.push({ blockId: edge.blockId, payload: edge.expectedPayload });
  const [row] = await gw.metadata.db.query<{ ok: boolean }>(
    "SELECT begin_time = '0001-01-01T00:00:00+15:59'::timestamptz AND end_time = '9999-12-31T23:59:59.999999999-15:59'::timestamptz AS ok FROM blocks WHERE block_id = $1",
    [edge.blockId],
  );
  assert.equal(row.ok, true);
  await goodBlocks(1);
  await intact();
});

test('numbers beyond int4/int8, NUL in text, invalid UTF-8 and over-long names get 400', async () => {
  for (const [over, why] of [
    [{ nb_objects: 2 ** 31 }, /'nb_objects' out of i32 range/],
    [{ nb_objects: -(2 ** 31) - 1 }, /'nb_objects' out of i32 range/],
    [{ begin_ticks: 2n ** 63n }, /'begin_ticks' out of i64 range/],
    [{ object_offset: -(2n ** 63n) - 1n }, /'object_offset' out of i64 range/],
    [{ end_ticks: 1.5 }, /'end_ticks' must be an integer/],
  ] as [Record<string, Encodable>, RegExp][]) {
    const b = badBlock(over);
    await refused('insert_block', b.body, why, b.blockId);
  }
  const newPid = () => randomUUID();
  await refused('insert_process', processBody('rust', newPid(), { exe: 'game\u0000.exe' }), /'exe' contains a NUL character/);
  await refused('insert_process', processBody('rust', newPid(), { computer: 'é'.repeat(256) }), /'computer' is longer than 255 characters/);
  await refused('insert_process', processBody('rust', newPid(), { properties: { entries: [['k', 'v\u0000']] } }), /property 'k': value contains a NUL/);
  await refused('insert_process', processBody('rust', newPid(), { properties: { entries: [['k\u0000', 'v']] } }), /key contains a NUL/);
  await refused('insert_process', processBody('rust', newPid(), { tsc_frequency: 2n ** 63n }), /'tsc_frequency' out of i64 range/);
  await refused('insert_process', processBody('rust', newPid(), { start_time: '0000-01-01T00:00:00Z' }), /year 0000/);
  // 255 characters, 510 bytes of UTF-8: what VARCHAR(255) takes.
  assert.equal((await post('insert_process', processBody('rust', newPid(), { computer: 'é'.repeat(255) }))).status, 200);
  // A text string whose bytes are not UTF-8: "box-1" with its last two bytes 0xff 0xfe.
  const good = processBody('rust', newPid());
  const at = good.indexOf(Buffer.concat(encodeCbor('box-1')));
  const invalid = Buffer.from(good);
  invalid[at + 4] = 0xff;
  invalid[at + 5] = 0xfe;
  await refused('insert_process', invalid, /invalid UTF-8/);
  const stream = definite({
    entries: [['process_id', pid], ['stream_id', randomUUID()], ['dependencies_metadata', []], ['objects_metadata', []], ['tags', ['log\u0000']], ['properties', { entries: [] }]],
  });
  await refused('insert_stream', stream, /a tag contains a NUL character/);
});

test('a pack holding a row PostgreSQL refuses: only that block gets 400, the good ones 200 and readable', async () => {
  const statements0 = gw.metadata.blockInserts;
  const good = Array.from({ length: 6 }, () => blockBody('rust', pid, sid));
  const bad = badBlock({ object_offset: EVIL_OFFSET });
  const all = [...good.slice(0, 3), bad, ...good.slice(3)];
  const replies = await Promise.all(all.map((b) => post('insert_block', b.body)));
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 400, 200, 200, 200], replies.map((r) => r.body).join('; '));
  assert.match(replies[3].body, /^insert_block: PostgreSQL refused the block: .*test_no_evil_offset/);
  // They shared one pack: one INSERT refused, then halves until the bad row stood alone.
  assert.ok(gw.metadata.blockInserts - statements0 <= 1 + 2 * Math.ceil(Math.log2(all.length)), `${gw.metadata.blockInserts - statements0} statements`);
  for (const b of good) acked.push({ blockId: b.blockId, payload: b.expectedPayload });
  refusedIds.push(bad.blockId);
  await intact();
});

test('the packer keeps the good rows when PostgreSQL refuses one it was handed directly', async () => {
  const { parseBlock } = await import('../src/envelope.js');
  const good = blockBody('rust', pid, sid);
  const bad = parseBlock(blockBody('rust', pid, sid).body);
  bad.row.begin_time = '0000-01-01T00:00:00+00:00'; // past validation, as a future field could be
  const httpGood = post('insert_block', good.body);
  const outcome = await gw.packer.add(bad);
  assert.match(outcome?.get(bad.row.block_id) ?? '', /PostgreSQL refused the block: .*out of range/);
  assert.equal((await httpGood).status, 200);
  acked.push({ blockId: good.blockId, payload: good.expectedPayload });
  refusedIds.push(bad.row.block_id);
  await intact();
});

test('a sustained hostile client does not stop a good one: 30 of 30 good blocks acknowledged', async () => {
  let running = true;
  const hostile: number[] = [];
  const hostileLoops = Array.from({ length: 4 }, async (_, i) => {
    while (running) {
      const b = i % 2 ? badBlock({ object_offset: EVIL_OFFSET }) : badBlock({ begin_time: '0000-01-01T00:00:00Z' });
      hostile.push((await post('insert_block', b.body)).status);
      refusedIds.push(b.blockId);
    }
  });
  const statuses: number[] = [];
  for (let i = 0; i < 30; i += 3) {
    const blocks = Array.from({ length: 3 }, () => blockBody('rust', pid, sid));
    const replies = await Promise.all(blocks.map((b) => post('insert_block', b.body)));
    for (const [j, r] of replies.entries()) {
      statuses.push(r.status);
      if (r.status === 200) acked.push({ blockId: blocks[j].blockId, payload: blocks[j].expectedPayload });
    }
  }
  running = false;
  await Promise.all(hostileLoops);
  assert.deepEqual(statuses, Array(30).fill(200));
  assert.ok(hostile.length >= 8 && hostile.every((s) => s === 400), `hostile answers: ${hostile.join(',')}`);
  await intact();
});

test("a block naming another process's stream gets 400; an unknown stream is accepted as upstream does", async () => {
  const other = randomUUID();
  const foreign = blockBody('rust', other, sid);
  await refused('insert_block', foreign.body, new RegExp(`^insert_block: stream ${sid} belongs to process ${pid}$`), foreign.blockId);
  // In a pack with good blocks, only the foreign one is refused.
  const good = blockBody('rust', pid, sid);
  const foreign2 = blockBody('rust', other, sid);
  const [g, f] = await Promise.all([post('insert_block', good.body), post('insert_block', foreign2.body)]);
  assert.deepEqual([g.status, f.status], [200, 400]);
  acked.push({ blockId: good.blockId, payload: good.expectedPayload });
  refusedIds.push(foreign2.blockId);
  // A block may precede its stream (clients queue them independently).
  const early = randomUUID();
  await goodBlocks(1, early, other);
  assert.equal((await post('insert_stream', streamBody('rust', other, early))).status, 200);
  // Re-sending a stream is idempotent; claiming it for another process is not.
  assert.equal((await post('insert_stream', streamBody('rust', pid, sid))).status, 200);
  await refused('insert_stream', streamBody('rust', other, sid), new RegExp(`^insert_stream: stream ${sid} belongs to process ${pid}$`));
  const [s] = await gw.metadata.db.query<{ process_id: string }>('SELECT process_id::text FROM streams WHERE stream_id = $1', [sid]);
  assert.equal(s.process_id, pid);
  // Blocks that came before their stream claim it for their process: another process cannot take it.
  const orphan = randomUUID();
  await goodBlocks(1, orphan, pid);
  await refused('insert_stream', streamBody('rust', other, orphan), new RegExp(`^insert_stream: stream ${orphan} belongs to process ${pid}$`));
  assert.deepEqual(await gw.metadata.db.query('SELECT 1 FROM streams WHERE stream_id = $1', [orphan]), []);
  assert.equal((await post('insert_stream', streamBody('rust', pid, orphan))).status, 200);
  await goodBlocks(1, orphan, pid);
});

/** Opens a raw connection, sends headers declaring `length` bytes (-1: chunked) and `sent` of them, then stalls. */
function stalledUpload(length: number, sent: number): Promise<{ socket: net.Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const framing = length < 0 ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
      socket.write(`POST /ingestion/insert_block HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n`);
      socket.write(Buffer.alloc(sent, 1));
      resolve({ socket, answer });
    });
    let text = '';
    const answer = new Promise<string>((done) => {
      socket.on('data', (d) => (text += String(d)));
      socket.on('close', () => done(text));
      socket.on('error', () => {});
    });
    socket.once('error', reject);
  });
}

async function gauge(p: number, name: string): Promise<number> {
  const text = (await request(p, '/metrics')).body;
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

test('a global cap on buffered bodies: 503 + Retry-After beyond it, and 408/aborted uploads release theirs', async () => {
  const MiB = 1024 * 1024;
  const capped = await createGateway(
    defaultConfig({ dataDir: tempDir(), maxBufferedBodyBytes: 10 * MiB, bodyTimeoutMs: 1500 }),
    { log: silentLogger },
  );
  const p = await capped.listen();
  const old = port;
  port = p; // stalledUpload and post speak to this gateway
  try {
    const stalled = [await stalledUpload(4 * MiB, 1000), await stalledUpload(4 * MiB, 1000)];
    const aborted = await stalledUpload(1 * MiB, 1000);
    assert.equal(await gauge(p, 'gateway_buffered_body_bytes'), 9 * MiB);
    // Declared beyond what is left: refused before a byte is buffered.
    const over = await stalledUpload(4 * MiB, 0);
    assert.match(await over.answer, /^HTTP\/1\.1 503 [^]*Retry-After: \d[^]*request bodies in memory reached the 10485760-byte cap/);
    aborted.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await gauge(p, 'gateway_buffered_body_bytes'), 8 * MiB);
    // Without Content-Length (chunked), bytes are counted as they arrive: the third MiB is refused.
    const chunked = await stalledUpload(-1, 0);
    for (let i = 0; i < 3; i++) chunked.socket.write(`${(MiB).toString(16)}\r\n${'x'.repeat(MiB)}\r\n`);
    assert.match(await chunked.answer, /^HTTP\/1\.1 503 [^]*Retry-After: \d[^]*request bodies in memory reached/);
    assert.equal(await gauge(p, 'gateway_buffered_body_bytes'), 8 * MiB);
    const small = await request(p, '/ingestion/insert_block', Buffer.from([0xa0]));
    assert.equal(small.status, 400); // still served under the cap
    const answers = await Promise.all(stalled.map((s) => s.answer));
    for (const a of answers) assert.match(a, /^HTTP\/1\.1 408 /);
    assert.equal(await gauge(p, 'gateway_buffered_body_bytes'), 0);
    // Room again: a full-size body is taken.
    const b = blockBody('rust', pid, sid, { size: 6 * MiB });
    assert.equal((await request(p, '/ingestion/insert_block', b.body)).status, 200);
    assert.equal(await gauge(p, 'gateway_buffered_body_bytes'), 0);
  } finally {
    port = old;
    await capped.close();
  }
  await intact();
});

test('extra routes get a signal that aborts when the client disconnects (a query stops with it)', async () => {
  let aborted: () => void = () => {};
  const gone = new Promise<void>((r) => (aborted = r));
  let started: () => void = () => {};
  const running = new Promise<void>((r) => (started = r));
  const extra = await createGateway(defaultConfig({ dataDir: tempDir() }), {
    log: silentLogger,
    routes: async (req) => {
      if (req.path !== '/slow') return null;
      assert.ok(req.signal && !req.signal.aborted);
      req.signal.addEventListener('abort', aborted, { once: true });
      started();
      await gone;
      return { status: 200, body: 'late' };
    },
  });
  const p = await extra.listen();
  try {
    const socket = net.connect(p, '127.0.0.1', () => socket.write('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'));
    socket.on('error', () => {});
    await running;
    socket.destroy();
    await gone; // resolves only through the abort
    assert.equal((await request(p, '/health')).status, 200);
  } finally {
    await extra.close();
  }
});
