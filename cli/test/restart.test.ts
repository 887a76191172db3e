// The server restarts while clients stream: `micromegas serve` (child process, embedded PGlite
// and local objects) is stopped mid-stream, gracefully (SIGTERM) or not at all (SIGKILL: PGlite
// must recover its own data directory), and started again ~2 s later on the same port and data
// directory. Three simulated game processes and the Node demo app keep recording and retrying
// meanwhile. When they exit, every event each of them reports must be in SQL, exactly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  cleanup, countBy, freePort, OWN_MEASURES, parseApp, parseSim, probe, query, sleep, startDemoApp, startServe,
  startSim, stop, tempDir, threadSpans, wholeRun, type ServerChild,
} from './e2e-helpers.js';

after(cleanup);

const SECONDS = 20;
// Clients run with the default retry pacing and window (5 min): a restart of a few seconds must
// cost them nothing. Their shutdown deadlines (30 s) leave room for the retries after it.

const log = (line: string) => console.log(`[restart] ${line}`);

async function restartMidStream(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const started = Date.now();
  const port = await freePort();
  const dataDir = tempDir('mm-restart-');
  let server: ServerChild = await startServe(port, dataDir);
  const url = server.url;
  log(`${signal}: server on ${url} after ${Date.now() - started} ms`);
  const sim = startSim(url, ['--seconds', String(SECONDS), '--processes', '3', '--fps', '30', '--spans-per-frame', '60', '--shutdown-ms', '30000']);
  const app = startDemoApp(url, SECONDS, { DEMO_SHUTDOWN_MS: '30000' });
  try {
    // Mid-stream: every client has registered its process, and has been sending for 2 s more.
    const until = Date.now() + 60_000;
    while ((await query(url, 'SELECT process_id FROM processes', wholeRun(started))).length < 4) {
      assert.ok(Date.now() < until, 'the four clients did not all register within 60 s');
      await sleep(200);
    }
    await sleep(2000);

    const down = Date.now();
    server.kill(signal);
    const exit = await server.exited;
    if (signal === 'SIGTERM') {
      assert.equal(exit, 0, server.text());
      assert.match(server.text(), /drain completed/);
    } else {
      assert.equal(exit, 'SIGKILL');
    }
    // The outage is real: nothing listens on the port any more.
    assert.equal(await probe(url), 'ECONNREFUSED');
    await sleep(2000);
    server = await startServe(port, dataDir);
    log(`${signal}: server down for ${Date.now() - down} ms (${Math.round((down - started) / 1000)} s into the run), serving again`);

    const [simExit, appExit] = await Promise.all([sim.exited, app.exited]);
    log(`${signal}: clients done after ${Math.round((Date.now() - started) / 1000)} s`);
    // Exit 0: nothing dropped and everything delivered before the shutdown deadline.
    assert.equal(simExit, 0, sim.text());
    assert.equal(appExit, 0, app.text());
    const games = parseSim(sim.text());
    assert.equal(games.length, 3, sim.text());
    const node = parseApp(app.text());
    assert.ok(node, app.text());
    // Every client saw the outage: its uploads failed and were retried.
    for (const g of games) assert.ok(g.retries > 0, `simulated process ${g.index} never retried:\n${sim.text()}`);
    assert.ok(node.retries > 0, `the Node app never retried:\n${app.text()}`);

    const range = wholeRun(started);
    const processes = new Set((await query(url, 'SELECT process_id FROM processes', range)).map((r) => String(r.process_id)));
    assert.deepEqual(processes, new Set([...games.map((g) => g.processId), node.processId]));
    const logs = await countBy(url, 'log_entries', range);
    const measures = await countBy(url, 'measures', range, OWN_MEASURES);
    for (const g of games) {
      const spans = await threadSpans(url, g.processId, range);
      log(`${signal}: game ${g.index}: logs ${logs.get(g.processId)}/${g.logs} measures ${measures.get(g.processId)}/${g.metrics} spans ${spans}/${g.spans} (${g.retries} retries)`);
      assert.equal(logs.get(g.processId), g.logs, `log_entries of simulated process ${g.index}`);
      assert.equal(measures.get(g.processId), g.metrics, `measures of simulated process ${g.index}`);
      assert.equal(spans, g.spans, `thread_spans of simulated process ${g.index}`);
    }
    const [appLogs] = await query(url, `SELECT count(*) AS n FROM log_entries WHERE process_id = '${node.processId}' AND target = 'demo.api'`, range);
    const [appMeasures] = await query(url, `SELECT count(*) AS n FROM measures WHERE process_id = '${node.processId}' AND name IN ('http.latency', 'http.requests')`, range);
    const [appAsync] = await query(url, `SELECT count(*) AS n FROM view_instance('async_events', '${node.processId}')`, range);
    log(`${signal}: node app: ${node.requests} requests, logs ${appLogs.n}/${node.logs} measures ${appMeasures.n}/${node.metrics} async events ${appAsync.n}/${2 * node.asyncSpans} (${node.retries} retries)`);
    assert.equal(Number(appLogs.n), node.logs, 'log_entries of the Node app');
    assert.equal(Number(appMeasures.n), node.metrics, 'measures of the Node app');
    assert.equal(Number(appAsync.n), 2 * node.asyncSpans, 'async_events (begin and end) of the Node app');
  } finally {
    sim.kill('SIGKILL');
    app.kill('SIGKILL');
    await Promise.all([sim.exited, app.exited, stop(server)]);
  }
}

test('SIGTERM mid-stream: the server drains, restarts on the same data, and every event the clients sent is in SQL', () =>
  restartMidStream('SIGTERM'));

test('kill -9 mid-stream: embedded PGlite recovers, and every event the clients sent is in SQL', () => restartMidStream('SIGKILL'));
