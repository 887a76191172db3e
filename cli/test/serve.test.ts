// The all-in-one server end to end: a simulated game and an instrumented Node
// service post to it, then SQL over HTTP on the same port sees what they sent.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@micromegas/gateway';
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
});

test('bad SQL gets 400 with the engine message, and the server keeps answering', async () => {
  const res = await fetch(`${server.url}/api/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELEC nonsense' }) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /SQL|parse|Expected/i);
  assert.equal((await query(server.url, 'SELECT 1 AS one'))[0].one, 1);
});
