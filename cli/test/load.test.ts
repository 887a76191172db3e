// Load: 100 simulated game processes (one OS process each) post to one `micromegas serve`
// (child process, embedded PGlite) for 60 s. Then every process is in `processes`, and its
// log_entries and measures counts are exactly what it says it recorded, none dropped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  cleanup, countBy, freePort, OWN_MEASURES, parseSim, query, startServe, startSim, stop, tempDir, threadSpans, wholeRun,
} from './e2e-helpers.js';

after(cleanup);

const PROCESSES = 100;
const SECONDS = 60;
const log = (line: string) => console.log(`[load] ${line}`);

test(`${PROCESSES} simulated game processes for ${SECONDS} s: all of them and every log and measure they sent are in SQL`, async () => {
  const started = Date.now();
  const server = await startServe(await freePort(), tempDir('mm-load-'));
  const url = server.url;
  log(`server on ${url} after ${Date.now() - started} ms`);
  // Modest per process (2 cores for everything): 10 fps, 20 spans a frame, default retry settings.
  // All 100 flush at once at the end, on a box shared with other jobs: the shutdown deadline is
  // generous (60 s), so that it measures nothing; what must hold is that nothing is lost.
  const sim = startSim(url, ['--seconds', String(SECONDS), '--processes', String(PROCESSES), '--fps', '10', '--spans-per-frame', '20', '--shutdown-ms', '60000']);
  const simStarted = Date.now();
  // Progress every 10 s (at most one report in flight).
  let report: Promise<void> = Promise.resolve();
  let reporting = false;
  const ticker = setInterval(() => {
    if (reporting) return;
    reporting = true;
    const at = Math.round((Date.now() - simStarted) / 1000);
    report = (async () => {
      try {
        const t0 = Date.now();
        const [p] = await query(url, 'SELECT count(*) AS n FROM processes', wholeRun(started));
        const [l] = await query(url, 'SELECT count(*) AS n FROM log_entries', wholeRun(started));
        log(`${at}/${SECONDS} s: ${p.n} processes, ${l.n} log entries so far (queries took ${Date.now() - t0} ms)`);
      } catch (e) {
        log(`${at}/${SECONDS} s: query failed: ${(e as Error).message}`);
      } finally {
        reporting = false;
      }
    })();
  }, 10_000);
  try {
    const exit = await sim.exited;
    clearInterval(ticker);
    await report;
    log(`simulator exited ${exit} after ${Math.round((Date.now() - simStarted) / 1000)} s`);
    // Exit 0: no process dropped a block or hit its shutdown deadline (which would leave what was
    // in flight unaccounted for).
    const trouble = sim.text().split('\n').filter((l) => /deadline|dropped after|blocks dropped [1-9]|events dropped [1-9]|error|fail|fork/i.test(l));
    assert.equal(exit, 0, `${trouble.length} lines of trouble, the first ones:\n${trouble.slice(0, 20).join('\n')}`);
    const games = parseSim(sim.text());
    assert.equal(games.length, PROCESSES, 'one MM_SIM_TOTALS line per process');
    assert.equal(new Set(games.map((g) => g.processId)).size, PROCESSES, 'distinct process ids');

    const range = wholeRun(started);
    const processes = new Set((await query(url, 'SELECT process_id FROM processes', range)).map((r) => String(r.process_id)));
    assert.equal(processes.size, PROCESSES);
    for (const g of games) assert.ok(processes.has(g.processId), `process ${g.index} (${g.processId}) missing from processes`);

    const logs = await countBy(url, 'log_entries', range);
    const measures = await countBy(url, 'measures', range, OWN_MEASURES);
    const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0);
    const sentLogs = sum(games.map((g) => g.logs));
    const sentMetrics = sum(games.map((g) => g.metrics));
    log(`log_entries ${sum(logs.values())}/${sentLogs}, measures ${sum(measures.values())}/${sentMetrics}, spans recorded ${sum(games.map((g) => g.spans))}`);
    assert.equal(sum(logs.values()), sentLogs, 'total log_entries');
    assert.equal(sum(measures.values()), sentMetrics, 'total measures');
    for (const g of games) {
      assert.equal(logs.get(g.processId), g.logs, `log_entries of process ${g.index}`);
      assert.equal(measures.get(g.processId), g.metrics, `measures of process ${g.index}`);
    }
    // Spans of two processes (a view_instance per cpu stream each; all 200 would be slow here).
    for (const g of [games[0], games[games.length - 1]]) assert.equal(await threadSpans(url, g.processId, range), g.spans, `thread_spans of process ${g.index}`);
    log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    clearInterval(ticker);
    sim.kill('SIGKILL');
    await Promise.all([sim.exited, report, stop(server)]);
  }
});
