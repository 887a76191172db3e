// Against a real PostgreSQL and a real S3-compatible server (moto): row contents,
// ranged reads from pack objects, packing ratios, API keys, worker threads, SIGTERM drain.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createGateway, defaultConfig, readBlockPayload, silentLogger, type Gateway } from '../src/index.js';
import { parseStream } from '../src/envelope.js';
import { blockBody, processBody, streamBody } from './fixtures.js';
import { freshDatabase, gatewayBin, getServices, loadGenerator, request, spawnGateway, until, useS3Env, type Services } from './helpers.js';

let services: Services;
let pgUrl: string;
let s3Uri: string;
let gw: Gateway;
let port: number;
const pid = randomUUID();
const sid = randomUUID();

before(async () => {
  services = await getServices();
  useS3Env(services.env);
  pgUrl = await freshDatabase(services.env.MICROMEGAS_TEST_PG_URL);
  s3Uri = `s3://${services.env.MICROMEGAS_TEST_S3_BUCKET}/${randomUUID()}`;
  gw = await createGateway(defaultConfig({ pgUrl, objectStoreUri: s3Uri, disableAuth: true, packMaxDelayMs: 100 }), { log: silentLogger });
  port = await gw.listen();
});

after(async () => {
  await gw?.close();
  await services?.stop();
});

test('rows carry upstream columns and values; payloads come back by ranged GET from the pack', async () => {
  const proc = processBody('unreal', pid.toUpperCase());
  assert.equal((await request(port, '/ingestion/insert_process', proc)).status, 200);
  const stream = streamBody('rust', pid, sid);
  assert.equal((await request(port, '/ingestion/insert_stream', stream)).status, 200);
  const blocks = ['unreal', 'rust', 'rust-legacy'].map((s) => blockBody(s as 'rust', pid, sid, { size: 70_000 }));
  const replies = await Promise.all(blocks.map((b) => request(port, '/ingestion/insert_block', b.body)));
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200]);

  const [p] = await gw.metadata.db.query<Record<string, unknown>>(
    'SELECT process_id::text, realname, tsc_frequency::text, start_ticks::text, parent_process_id, properties::text, insert_time IS NOT NULL AS stamped FROM processes WHERE process_id = $1',
    [pid],
  );
  assert.deepEqual(p, { process_id: pid, realname: 'ana', tsc_frequency: '2400000000', start_ticks: '123456789012', parent_process_id: null, properties: '{"(build-version,1.2.3)"}', stamped: true });
  const [s] = await gw.metadata.db.query<Record<string, unknown>>('SELECT dependencies_metadata, objects_metadata, tags, properties::text, format FROM streams WHERE stream_id = $1', [sid]);
  const parsed = parseStream(stream);
  assert.ok((s.dependencies_metadata as Buffer).equals(parsed.dependencies_metadata));
  assert.ok((s.objects_metadata as Buffer).equals(parsed.objects_metadata));
  assert.deepEqual([s.tags, s.properties, s.format], [['log'], '{"(thread-name,main)"}', 'micromegas-transit']);

  const cols = await gw.metadata.db.query<{ column_name: string }>("SELECT column_name FROM information_schema.columns WHERE table_name = 'blocks' ORDER BY ordinal_position");
  assert.deepEqual(cols.map((c) => c.column_name), [
    'block_id', 'stream_id', 'process_id', 'begin_time', 'begin_ticks', 'end_time', 'end_ticks', 'nb_objects',
    'object_offset', 'payload_size', 'insert_time', 'payload_object', 'payload_offset',
  ]);
  const rows = await Promise.all(blocks.map((b) => gw.metadata.getBlock(b.blockId)));
  // Sent together, they share one pack object at distinct offsets.
  assert.equal(new Set(rows.map((r) => r!.payload_object)).size, 1);
  for (const [i, b] of blocks.entries()) assert.ok((await readBlockPayload(gw.objects, rows[i]!)).equals(b.expectedPayload));
});

test('under concurrent load, blocks are packed: <= 1/32 objects per block and many rows per INSERT', async () => {
  const objects0 = gw.objects.writes;
  const inserts0 = gw.metadata.blockInserts;
  const load = loadGenerator(() => port, pid, sid, 200, 1024);
  const t0 = Date.now();
  await until('2000 acknowledged blocks', () => load.acked.length >= 2000, 60000);
  await load.stop();
  const secs = (Date.now() - t0) / 1000;
  const blocks = load.acked.length;
  const objects = gw.objects.writes - objects0;
  const inserts = gw.metadata.blockInserts - inserts0;
  process.stdout.write(`# packing: ${blocks} blocks in ${secs.toFixed(1)} s (${Math.round(blocks / secs)} blocks/s), ${objects} objects (${(objects / blocks).toFixed(4)} per block), ${(blocks / inserts).toFixed(1)} rows per INSERT\n`);
  assert.ok(objects / blocks <= 1 / 32, `objects per block ${objects / blocks}`);
  assert.ok(blocks / inserts >= 32, `rows per INSERT ${blocks / inserts}`);
  for (const a of load.acked.slice(0, 50)) {
    const row = await gw.metadata.getBlock(a.blockId);
    assert.ok((await readBlockPayload(gw.objects, row!)).equals(a.payload));
  }
});

test('pack size 0 writes upstream layout blobs/<process>/<stream>/<block> with a NULL payload_object', async () => {
  const g = await createGateway(defaultConfig({ pgUrl, objectStoreUri: s3Uri, disableAuth: true, packMaxBytes: 0 }), { log: silentLogger });
  try {
    const b = blockBody('unreal', pid, sid);
    assert.equal((await g.handle({ method: 'POST', path: '/ingestion/insert_block', body: b.body })).status, 200);
    const row = await g.metadata.getBlock(b.blockId);
    assert.equal(row!.payload_object, null);
    assert.ok((await g.objects.get(`blobs/${pid}/${sid}/${b.blockId}`)).equals(b.expectedPayload));
  } finally {
    await g.close();
  }
});

test('API keys: env keys and minted keys are accepted, anything else is 401, revoked keys stop working', async () => {
  const base = ['--pg-url', pgUrl, '--object-store', s3Uri];
  const cli = (...a: string[]) => execFileSync(process.execPath, [gatewayBin, ...a, ...base], { env: process.env }).toString();
  const minted = JSON.parse(cli('keys', 'create', 'ci-writer')) as { key_id: string; key: string };
  assert.match(minted.key, /^mmk_[A-Za-z0-9_-]{43}$/);
  const listed = cli('keys', 'list');
  assert.ok(listed.includes(minted.key_id) && !listed.includes(minted.key), 'list shows ids, never secrets');
  const [stored] = await gw.metadata.db.query<{ key_hash: Buffer }>('SELECT key_hash FROM ingestion_api_keys WHERE key_id = $1', [minted.key_id]);
  assert.ok(stored.key_hash.equals(createHash('sha256').update(minted.key).digest()));

  const authed = await spawnGateway(base, { MICROMEGAS_API_KEYS: JSON.stringify([{ name: 'env', key: 'env-secret' }]) });
  try {
    const body = () => blockBody('rust', pid, sid).body;
    const post = (auth?: string) => request(authed.port, '/ingestion/insert_block', body(), auth ? { authorization: auth } : {});
    assert.equal((await post()).status, 401);
    assert.equal((await post('Bearer env-secre')).status, 401);
    assert.equal((await post('bearer env-secret')).status, 401);
    assert.equal((await post('Bearer env-secret')).status, 200);
    assert.equal((await post(`Bearer ${minted.key}`)).status, 200);
    const denied = await post('Bearer mmk_nope');
    assert.deepEqual([denied.status, denied.body], [401, 'invalid token']);
  } finally {
    authed.child.kill('SIGTERM');
    await authed.exited;
  }
  assert.match(cli('keys', 'revoke', 'ci-writer'), /"revoked":1/);
  const fresh = await spawnGateway(base, {});
  try {
    const r = await request(fresh.port, '/ingestion/insert_block', blockBody('rust', pid, sid).body, { authorization: `Bearer ${minted.key}` });
    assert.equal(r.status, 401);
  } finally {
    fresh.child.kill('SIGTERM');
    await fresh.exited;
  }
});

test('two worker threads share one port; SIGTERM drains in-flight requests before exit', async () => {
  const g = await spawnGateway(['--pg-url', pgUrl, '--object-store', s3Uri, '--disable-auth', '--workers', '2', '--pack-max-delay-ms', '400'], {});
  const listening = () => g.logs.join('').split('\n').filter((l) => l.includes('"msg":"listening"')).length;
  await until('two workers listening', () => listening() === 2);
  // Any worker answers /metrics with the sum over both threads.
  const warmup = Array.from({ length: 12 }, () => blockBody('rust', pid, sid));
  assert.deepEqual(new Set((await Promise.all(warmup.map((b) => request(g.port, '/ingestion/insert_block', b.body)))).map((r) => r.status)), new Set([200]));
  for (let i = 0; i < 4; i++) {
    assert.match((await request(g.port, '/metrics')).body, /^gateway_blocks_ingested_total 12$/m);
  }
  const blocks = Array.from({ length: 40 }, () => blockBody('rust', pid, sid));
  const inflight = blocks.map((b) => request(g.port, '/ingestion/insert_block', b.body));
  await new Promise((r) => setTimeout(r, 100)); // requests are now waiting on the 400 ms pack timer
  g.child.kill('SIGTERM');
  const replies = await Promise.all(inflight);
  assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([200]));
  assert.equal(await g.exited, 0);
  assert.match(g.logs.join(''), /drain completed/);
  for (const b of blocks) assert.ok(await gw.metadata.getBlock(b.blockId), 'drained block is stored');
});
