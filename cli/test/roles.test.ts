// Production layout: `serve` split into gateway, analytics and maintenance roles over a real
// PostgreSQL and a real S3-compatible server (started by the root test runner), with auth on.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { silentLogger, type Logger } from '@micromegas/gateway';
import { serve, type Server } from '../src/serve.js';
import { SIMULATOR } from '../src/demo.js';
import { MAIN } from './e2e-helpers.js';

const PG = process.env.MICROMEGAS_TEST_PG_URL;
const S3 = process.env.MICROMEGAS_TEST_S3_ENDPOINT;
const skip = (!PG || !S3) && 'MICROMEGAS_TEST_PG_URL / MICROMEGAS_TEST_S3_ENDPOINT not set (the root test runner provides them)';
const KEY = 'roles-test-key-0123456789';
const run = promisify(execFile);

let gateway: Server;
let analytics: Server;
let storage: string[];

before(async () => {
  if (skip) return;
  process.env.AWS_ENDPOINT_URL = S3;
  process.env.MICROMEGAS_API_KEYS = JSON.stringify([{ name: 'roles-test', key: KEY }]);
  const pg = (await import('pg')).default;
  const name = 'roles_' + Math.random().toString(36).slice(2, 10);
  const c = new pg.Client({ connectionString: PG });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(PG!);
  url.pathname = '/' + name;
  storage = ['--pg-url', url.toString(), '--object-store', `s3://${process.env.MICROMEGAS_TEST_S3_BUCKET}/${name}`];
  gateway = await serve(['--role', 'gateway', '--listen', '127.0.0.1:0', ...storage], silentLogger);
  analytics = await serve(['--role', 'analytics', '--listen', '127.0.0.1:0', ...storage], silentLogger);
});
after(async () => {
  await gateway?.close();
  await analytics?.close();
});

async function sql(query: string, key: string | null = KEY): Promise<{ status: number; rows: Record<string, unknown>[] }> {
  const res = await fetch(`${analytics.url}/api/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ sql: query, begin: new Date(Date.now() - 3600_000).toISOString(), end: new Date(Date.now() + 60_000).toISOString() }),
  });
  const text = await res.text();
  return { status: res.status, rows: res.ok ? JSON.parse(text) : [] };
}

test('gateway, analytics and maintenance roles share PostgreSQL and S3', { skip }, async () => {
  // Each role serves only its routes.
  const noSql = await fetch(`${gateway.url}/api/query`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{"sql":"SELECT 1"}' });
  assert.equal(noSql.status, 404);
  const noIngest = await fetch(`${analytics.url}/ingestion/insert_process`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '' });
  assert.equal(noIngest.status, 404);

  const sim = await run(SIMULATOR, ['--url', gateway.url, '--seconds', '2', '--fps', '30', '--spans-per-frame', '20'], {
    env: { ...process.env, MICROMEGAS_INGESTION_API_KEY: KEY },
  });
  const totals = /MM_SIM_TOTALS spans=(\d+) logs=(\d+) metrics=(\d+)/.exec(sim.stdout);
  assert.ok(totals, sim.stdout);

  // The query API checks the same keys as ingestion.
  assert.equal((await sql('SELECT 1 AS one', null)).status, 401);
  assert.equal((await sql('SELECT 1 AS one', 'wrong-key')).status, 401);
  const [proc] = (await sql('SELECT process_id FROM processes')).rows as { process_id: string }[];
  assert.ok(proc, 'the game process reached PostgreSQL through the gateway');
  const count = async (q: string) => Number(((await sql(q)).rows as { n: number }[])[0].n);
  const logs = `SELECT count(*) AS n FROM log_entries`;
  const spans = `SELECT count(*) AS n FROM view_instance('thread_spans', s.stream_id)`;
  assert.equal(await count(logs), Number(totals[2]), 'log blocks read back from S3');
  const cpuStreams = ((await sql(`SELECT stream_id FROM streams WHERE array_has(tags, 'cpu')`)).rows as { stream_id: string }[]).map((r) => r.stream_id);
  const spanCount = async () => {
    let n = 0;
    for (const s of cpuStreams) n += await count(spans.replace('s.stream_id', `'${s}'`));
    return n;
  };
  assert.equal(await spanCount(), Number(totals[1]));

  // Maintenance with tail sampling that keeps no process: its cpu blocks go, logs stay.
  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  const log: Logger = { info: (msg, fields) => lines.push({ msg, fields }), error: (msg, fields) => lines.push({ msg, fields }) };
  const maintenance = await serve(
    ['--role', 'maintenance', '--listen', '127.0.0.1:0', ...storage, '--tail-sampling-hours', '0', '--tail-sampling-keep-sql', 'SELECT process_id FROM processes WHERE false'],
    log,
  );
  try {
    for (let i = 0; i < 600 && !lines.some((l) => l.msg.startsWith('maintenance')); i++) await new Promise((r) => setTimeout(r, 100));
    const pass = lines.find((l) => l.msg.startsWith('maintenance'));
    assert.equal(pass?.msg, 'maintenance', JSON.stringify(pass));
    assert.ok(Number((pass!.fields!.retention as { cpuBlocksSampledOut: number }).cpuBlocksSampledOut) > 0, JSON.stringify(pass));
    const noSqlHere = await fetch(`${maintenance.url}/api/query`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: '{"sql":"SELECT 1"}' });
    assert.equal(noSqlHere.status, 404);
  } finally {
    await maintenance.close();
  }
  assert.equal(await spanCount(), 0, 'cpu blocks sampled out');
  assert.equal(await count(logs), Number(totals[2]), 'logs untouched');
});

test('micromegas keys mints a key the servers accept, lists it and revokes it', { skip }, async () => {
  const pgUrl = storage[1];
  const keys = (...args: string[]) => run(process.execPath, [MAIN, 'keys', ...args, '--pg-url', pgUrl]);
  const minted = JSON.parse((await keys('create', 'roles-minted')).stdout) as { key_id: string; key: string };
  assert.match(minted.key, /^mmk_/);
  assert.equal((await sql('SELECT 1 AS one', minted.key)).status, 200);
  const listed = (await keys('list')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { key_id: string; name: string; revoked_at: string | null });
  assert.deepEqual(listed.filter((k) => k.key_id === minted.key_id).map((k) => [k.name, k.revoked_at]), [['roles-minted', null]]);
  assert.deepEqual(JSON.parse((await keys('revoke', 'roles-minted')).stdout), { revoked: 1 });
  const revoked = (await keys('list')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { key_id: string; revoked_at: string | null });
  assert.ok(revoked.find((k) => k.key_id === minted.key_id)?.revoked_at, 'revoked_at set');
  await assert.rejects(keys('bogus'), (e: { code: number; stderr: string }) => e.code === 2 && /usage: micromegas keys/.test(e.stderr));
  // Keys minted into the embedded database would never be asked for: refused with the way out.
  await assert.rejects(run(process.execPath, [MAIN, 'keys', 'list', '--data-dir', tmpdir()]), (e: { code: number; stderr: string }) => e.code === 2 && /--pg-url/.test(e.stderr));
});
