// The all-in-one server end to end: a simulated game and an instrumented Node
// service post to it, then SQL over HTTP on the same port sees what they sent.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@micromegas/gateway';
import { ARROW_STREAM } from '@micromegas/analytics';
import { tableFromIPC } from 'apache-arrow';
import { PGlite } from '@electric-sql/pglite';
import { serve, type Server } from '../src/serve.js';
import { SIMULATOR, query } from '../src/demo.js';

let server: Server;
const dataDir = mkdtempSync(join(tmpdir(), 'mm-serve-'));

before(async () => {
  server = await serve(['--listen', '127.0.0.1:0', '--data-dir', dataDir], silentLogger);
});
after(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

// Asynchronous on purpose: the server runs in this process and must keep serving.
const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const range = () => ({ begin: new Date(Date.now() - 3600_000).toISOString(), end: new Date(Date.now() + 60_000).toISOString() });

test('a simulated game and a Node service land in SQL with the counts they report', async () => {
  const sim = await run(SIMULATOR, ['--url', server.url, '--seconds', '2', '--spans-per-frame', '50', '--fps', '30']);
  const totals = /MM_SIM_TOTALS spans=(\d+) logs=(\d+) metrics=(\d+)/.exec(sim.stdout);
  assert.ok(totals, sim.stdout);
  await run(process.execPath, [fileURLToPath(new URL('../src/demo-app.js', import.meta.url))], {
    env: { ...process.env, MICROMEGAS_TELEMETRY_URL: server.url, DEMO_SECONDS: '1' },
  });

  const processes = await query(server.url, 'SELECT process_id, exe FROM processes');
  assert.equal(processes.length, 2);
  const simProcess = processes.find((p) => String(p.exe).includes('mm-game-sim'));
  assert.ok(simProcess, JSON.stringify(processes));

  const [logs] = await query(server.url, `SELECT count(*) AS n FROM log_entries WHERE process_id = '${simProcess.process_id}'`, range());
  assert.equal(Number(logs.n), Number(totals[2]));
  const [metrics] = await query(server.url, `SELECT count(*) AS n FROM measures WHERE process_id = '${simProcess.process_id}'`, range());
  assert.equal(Number(metrics.n), Number(totals[3]));
  const [served] = await query(server.url, "SELECT count(*) AS n FROM log_entries WHERE target = 'demo.api'", range());
  assert.ok(Number(served.n) > 0);

  // The same numbers through the command line, and the game's frames as a Perfetto trace.
  const cli = (...args: string[]) => run(process.execPath, [MAIN, ...args, '--url', server.url]);
  const csv = await cli('query', `SELECT count(*) AS n FROM measures WHERE process_id = '${simProcess.process_id}'`, '--begin', '1h', '--format', 'csv');
  assert.equal(csv.stdout, `n\n${totals[3]}\n`);
  const trace = join(dataDir, 'game.pftrace');
  await cli('perfetto', String(simProcess.process_id), '-o', trace, '--begin', '1h');
  const bytes = readFileSync(trace);
  assert.ok(bytes.includes(Buffer.from('mm-game-sim')), 'the process track is named after the exe');
  const json = join(dataDir, 'game.json');
  await cli('perfetto', String(simProcess.process_id), '-o', json, '--begin', '1h');
  const slices = JSON.parse(readFileSync(json, 'utf8')).traceEvents.filter((e: { ph: string }) => e.ph === 'X');
  assert.equal(slices.length, Number(totals[1]), 'every span the game recorded is in the trace');
});

test('bad SQL gets 400 with the engine message, and the server keeps answering', async () => {
  const res = await fetch(`${server.url}/api/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELEC nonsense' }) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /SQL|parse|Expected/i);
  assert.equal((await query(server.url, 'SELECT 1 AS one'))[0].one, 1);
});

test('a large result streams through the gateway port, in JSON and Arrow', async () => {
  const sql = 'SELECT v FROM unnest(range(0, 250000)) AS t(v) ORDER BY v';
  const res = await fetch(`${server.url}/api/query`, { method: 'POST', body: JSON.stringify({ sql }) });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('transfer-encoding'), 'chunked');
  const rows = await res.json();
  assert.equal(rows.length, 250000);
  assert.deepEqual(rows[249999], { v: 249999 });
  const arrow = await fetch(`${server.url}/api/query`, { method: 'POST', headers: { accept: ARROW_STREAM }, body: JSON.stringify({ sql }) });
  assert.equal(tableFromIPC(new Uint8Array(await arrow.arrayBuffer())).numRows, 250000);
});

test('query timeout answers 504 and the memory limit 507, then the server answers again', async () => {
  const limited = await serve(['--listen', '127.0.0.1:0', '--data-dir', mkdtempSync(join(tmpdir(), 'mm-limits-')), '--role', 'analytics', '--query-timeout-seconds', '0.2', '--query-memory-mb', '1'], silentLogger);
  try {
    const ask = (sql: string) => fetch(`${limited.url}/api/query`, { method: 'POST', body: JSON.stringify({ sql }) });
    const slow = await ask('SELECT count(*) AS n FROM unnest(range(0, 100000000)) a(x), unnest(range(0, 1000)) b(y)');
    assert.equal(slow.status, 504);
    assert.match((await slow.json()).error, /timed out after 200 ms/);
    const big = await ask('SELECT x FROM unnest(range(0, 3000000)) a(x) ORDER BY x DESC');
    assert.equal(big.status, 507, await big.clone().text());
    assert.match((await big.json()).error, /Resources exhausted/);
    assert.deepEqual(await (await ask('SELECT 1 AS one')).json(), [{ one: 1 }]);
  } finally {
    await limited.close();
  }
});

test('close() lets the partitions a query started writing finish before the database closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-close-'));
  const own = await serve(['--listen', '127.0.0.1:0', '--data-dir', dir], silentLogger);
  let serving = true;
  let db: PGlite | undefined;
  try {
    await run(SIMULATOR, ['--url', own.url, '--seconds', '1', '--fps', '30']);
    const [p] = await query(own.url, 'SELECT process_id FROM processes');
    // Cold: answered from the blocks; the partition is written after the answer, in the background.
    const [cold] = await query(own.url, `SELECT count(*) AS n FROM view_instance('log_entries', '${p.process_id}')`, range());
    assert.ok(Number(cold.n) > 0);
    await own.close();
    serving = false;
    db = await PGlite.create(join(dir, 'pglite'));
    const { rows } = await db.query<{ n: number; total: number }>(
      "SELECT count(*)::int AS n, coalesce(sum(num_rows), 0)::int AS total FROM lakehouse_partitions WHERE view_set_name = 'log_entries' AND view_instance_id = $1",
      [p.process_id],
    );
    assert.ok(rows[0].n > 0, 'the partition the cold query started is recorded');
    assert.equal(rows[0].total, Number(cold.n), 'and it holds every row the query counted');
  } finally {
    if (serving) await own.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
