// The hostile-client suite (issue 23): a real `micromegas serve` on embedded defaults gets what a
// hostile or careless client would send, each probe with the answer it must get. After every probe
// the server must still answer `SELECT 1`, and everything acknowledged before (the baseline, and
// every good block a probe posted) must read back unchanged. A probe that kills the server fails,
// and the next one starts it again on the same data, so one crash does not hide the other answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import pg from 'pg';
import { freePort, sleep, startServe, stop, tempDir, type ServerChild } from './e2e-helpers.js';
import {
  VectorProcess, cpuShare, ingest, listeningSockets, resetPeak, lz4Bomb, lz4Decompress, lz4Stored, memory, ownerOnly, payload,
  sha256, shiftTime, stalledUpload, vectorPayload, vectorRange, type Answer, type Ingest, type Producer, type StreamKind,
} from './hostile-probes.js';

const QUERY_TIMEOUT_S = 4;
const BODY_TIMEOUT_MS = 2000;
// Maintenance off the clock: a pass during a CPU measurement would read as a query still running.
const SERVE_FLAGS = ['--query-timeout-seconds', String(QUERY_TIMEOUT_S), '--body-timeout-ms', String(BODY_TIMEOUT_MS), '--retention-days', '0', '--maintenance-interval-seconds', '3600'];
// Cores a stopped query may still show: the server idles well below it.
const IDLE_CORES = 0.3;
const MiB = 1 << 20;
// 10^12 rows, a count nothing can shortcut: runs until stopped.
const HEAVY = 'SELECT count(*) AS n FROM (SELECT * FROM unnest(range(0, 1000000)) AS a(x)) a, (SELECT * FROM unnest(range(0, 1000000)) AS b(y)) b WHERE x + y >= 0';

let port: number;
let dataDir: string;
let server: ServerChild;
const range = vectorRange();
const pid = () => server.child.pid!;

// ---- SQL over HTTP, answers kept whole (status, rows or error message) ----

interface SqlAnswer {
  status: number;
  rows: Record<string, unknown>[];
  error: string;
}

async function sql(text: string, opts: { limit?: number; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<SqlAnswer> {
  const body = JSON.stringify({ sql: text, ...range, ...(opts.limit === undefined ? {} : { limit: opts.limit }) });
  const res = await fetch(`${server.url}/api/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: opts.signal ?? AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const raw = await res.text();
  if (res.ok) return { status: res.status, rows: JSON.parse(raw), error: '' };
  let error = raw;
  try {
    error = String(JSON.parse(raw).error ?? raw);
  } catch {}
  return { status: res.status, rows: [], error };
}

async function rows(text: string): Promise<Record<string, unknown>[]> {
  const r = await sql(text);
  assert.equal(r.status, 200, `${text.slice(0, 200)}: ${r.error}`);
  return r.rows;
}

// ---- what was acknowledged, and the check after every probe ----

const baseline = { rust: new VectorProcess('rust'), unreal: new VectorProcess('unreal') };
const KINDS: StreamKind[] = ['log', 'metrics', 'cpu'];
let snapshot: { sql: string; rows: number; sha: string }[] = [];
/** Log rows of every good block a probe had acknowledged, by process. */
const acked = new Map<string, number>();

function snapshotQueries(): string[] {
  const list = (xs: string[]) => xs.map((x) => `'${x}'`).join(', ');
  const pids = list([baseline.rust.processId, baseline.unreal.processId]);
  const streams = list([...baseline.rust.streamIds.values(), ...baseline.unreal.streamIds.values()]);
  return [
    `SELECT process_id, exe, username, computer, start_time, start_ticks, tsc_frequency FROM processes WHERE process_id IN (${pids}) ORDER BY process_id`,
    `SELECT stream_id, process_id, tags FROM streams WHERE process_id IN (${pids}) ORDER BY stream_id`,
    `SELECT block_id, stream_id, process_id, begin_time, end_time, nb_objects FROM blocks WHERE stream_id IN (${streams}) ORDER BY block_id`,
    `SELECT process_id, time, level, target, msg FROM log_entries WHERE process_id IN (${pids}) ORDER BY process_id, time, msg`,
    `SELECT process_id, time, name, value FROM measures WHERE process_id IN (${pids}) ORDER BY process_id, time, name, value`,
    ...[baseline.rust, baseline.unreal].map(
      (p) => `SELECT id, parent, depth, begin, "end", name FROM view_instance('thread_spans', '${p.streamIds.get('cpu')}') ORDER BY begin, id`,
    ),
  ];
}

async function takeSnapshot() {
  const out = [];
  for (const q of snapshotQueries()) {
    const r = await rows(q);
    out.push({ sql: q, rows: r.length, sha: sha256(JSON.stringify(r)) });
  }
  return out;
}

async function accepted(i: Ingest): Promise<void> {
  const r = await ingest(server.url, i);
  assert.equal(r.status, 200, `${i.route}: ${r.text}`);
}

/** A process of the vectors with the given streams, accepted. */
async function newProcess(kinds: StreamKind[] = ['log'], producer: Producer = 'rust'): Promise<VectorProcess> {
  const p = new VectorProcess(producer);
  await accepted(p.process());
  for (const k of kinds) await accepted(p.stream(k));
  return p;
}

const RUST_LOG_ROWS = VectorProcess.events('rust', 'log');

/** Posts a good rust log block and records its rows as acknowledged. */
async function goodLogBlock(p: VectorProcess): Promise<void> {
  await accepted(p.block('log'));
  acked.set(p.processId, (acked.get(p.processId) ?? 0) + RUST_LOG_ROWS);
}

/** The process's log rows, through the global view and its own view instance. */
async function logRows(p: VectorProcess): Promise<{ global: number; instance: number }> {
  const [g] = await rows(`SELECT count(*) AS n FROM log_entries WHERE process_id = '${p.processId}'`);
  const [i] = await rows(`SELECT count(*) AS n FROM view_instance('log_entries', '${p.processId}')`);
  return { global: Number(g.n), instance: Number(i.n) };
}

async function assertGoodRows(p: VectorProcess): Promise<void> {
  const want = acked.get(p.processId) ?? 0;
  assert.deepEqual(await logRows(p), { global: want, instance: want }, 'the good rows of the process still read, and only them');
}

async function ensureServing(): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) return;
  server = await startServe(port, dataDir, SERVE_FLAGS);
}

async function stillServing(): Promise<void> {
  await sleep(50); // a crash in the last answer's wake shows as an exit, not as a refused connection
  if (server.child.exitCode !== null || server.child.signalCode !== null) {
    throw new Error(`the server died (${server.child.exitCode ?? server.child.signalCode}); its last output:\n${server.text().slice(-3000)}`);
  }
  let one: SqlAnswer;
  try {
    one = await sql('SELECT 1 AS one', { timeoutMs: 10_000 });
  } catch (e) {
    throw new Error(`SELECT 1 got no answer within 10 s: ${(e as Error).message}`);
  }
  assert.equal(one.status, 200, `SELECT 1: ${one.error}`);
  assert.deepEqual(one.rows, [{ one: 1 }]);
  assert.deepEqual(await takeSnapshot(), snapshot, 'the baseline rows are unchanged');
  if (acked.size) {
    const got = await rows(`SELECT process_id, count(*) AS n FROM log_entries WHERE process_id IN (${[...acked.keys()].map((x) => `'${x}'`).join(', ')}) GROUP BY process_id`);
    assert.deepEqual(new Map(got.map((r) => [String(r.process_id), Number(r.n)])), acked, 'the good blocks probes posted still read');
  }
}

/** A probe: runs on a serving server, then checks it still serves and nothing acknowledged changed. */
function probe(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    await ensureServing();
    let failure: unknown = null;
    try {
      await fn();
    } catch (e) {
      failure = e;
    }
    let afterwards: unknown = null;
    try {
      await stillServing();
    } catch (e) {
      afterwards = e;
    }
    // Both: one error that shows both (an AssertionError's stack keeps its first message only).
    if (failure && afterwards) throw new Error(`${inspect(failure)}\n-- and after the probe: ${inspect(afterwards)}`);
    if (failure || afterwards) throw failure ?? afterwards;
  });
}

/** The server's CPU falls near idle within 2 s (two 1 s windows; the second at the latest). */
async function settlesIdle(what: string): Promise<void> {
  const shares: number[] = [];
  for (let i = 0; i < 2; i++) {
    shares.push(await cpuShare(pid(), 1000));
    if (shares[i] < IDLE_CORES) return;
  }
  assert.fail(`${what}: the server still used ${shares.map((s) => s.toFixed(2)).join(' then ')} cores in the 2 s after`);
}

before(async () => {
  port = await freePort();
  dataDir = tempDir('mm-hostile-');
  server = await startServe(port, dataDir, SERVE_FLAGS);
  for (const p of [baseline.rust, baseline.unreal]) {
    await accepted(p.process());
    for (const k of KINDS) {
      await accepted(p.stream(k));
      await accepted(p.block(k));
    }
  }
  await accepted(baseline.rust.block('log', {}, 'block-2'));
  snapshot = await takeSnapshot();
  // The baseline is worth comparing: rows in every view it reads.
  assert.ok(snapshot.every((s) => s.rows > 0), JSON.stringify(snapshot, null, 1));
  assert.equal(snapshot[2].rows, 7, 'seven baseline blocks');
  assert.equal(snapshot[3].rows, RUST_LOG_ROWS + VectorProcess.events('rust', 'log', 'block-2') + VectorProcess.events('unreal', 'log'));
});

after(async () => {
  if (server) await stop(server);
});

// ---- SQL ----

probe('SELECT 1 + 1 + ... (1,000 terms): 200 with the sum or 400, never a crash', async () => {
  const r = await sql(`SELECT ${Array(1000).fill('1').join(' + ')} AS n`);
  if (r.status === 200) assert.equal(Number(r.rows[0].n), 1000);
  else assert.equal(r.status, 400, r.error);
});

probe('WHERE with 20,000 OR terms: 200 or 400, never a crash', async () => {
  const terms = Array.from({ length: 20_000 }, (_, i) => `x = ${i}`).join(' OR ');
  const r = await sql(`SELECT count(*) AS n FROM unnest(range(0, 10)) AS t(x) WHERE ${terms}`);
  if (r.status === 200) assert.equal(Number(r.rows[0].n), 10);
  else assert.equal(r.status, 400, r.error);
});

probe('COPY ... TO a file: 400, no file written, an existing file untouched', async () => {
  const dir = tempDir('mm-hostile-copy-');
  const fresh = join(dir, 'fresh.csv');
  const existing = join(dir, 'existing.csv');
  writeFileSync(existing, 'canary\n');
  for (const target of [fresh, existing]) {
    for (const stmt of [`COPY (SELECT 1 AS a) TO '${target}'`, `COPY (SELECT 1 AS a) TO '${target}' STORED AS CSV`]) {
      const r = await sql(stmt);
      assert.equal(r.status, 400, `${stmt}: ${r.status} ${r.error}`);
    }
  }
  assert.equal(existsSync(fresh), false, 'COPY created a file');
  assert.equal(readFileSync(existing, 'utf8'), 'canary\n', 'COPY overwrote a file');
});

probe('CREATE TABLE / CREATE VIEW: 400', async () => {
  for (const stmt of ['CREATE TABLE t AS SELECT 1 AS a', 'CREATE VIEW v AS SELECT 1 AS a', 'CREATE TABLE t2 (a INT)']) {
    const r = await sql(stmt);
    assert.equal(r.status, 400, `${stmt}: ${r.status} ${r.error}`);
  }
});

/** The 400 a statement naming a file gets, and proof it says nothing about that file: the same
 * message for a path that holds data and one that does not exist, and no file contents. */
async function sameRefusalForAnyPath(statement: (path: string) => string): Promise<void> {
  const answers: string[] = [];
  for (const path of ['/etc/passwd', `/nonexistent-${randomUUID()}/x.csv`]) {
    const r = await sql(statement(path));
    assert.equal(r.status, 400, `${statement(path)}: ${r.status} ${r.error}`);
    assert.doesNotMatch(r.error, /root:|:0:0:|no such file|os error|permission denied/i, 'the message tells about the file');
    answers.push(r.error.split(path).join('<path>'));
  }
  assert.equal(answers[0], answers[1], 'an existing and a missing file get different answers');
}

probe('CREATE EXTERNAL TABLE on /etc/passwd: 400 that tells nothing about the file', async () => {
  await sameRefusalForAnyPath((p) => `CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '${p}'`);
  const r = await sql('SELECT * FROM leak');
  assert.equal(r.status, 400, 'no table was created');
});

probe("SELECT * FROM '/etc/passwd': 400 that tells nothing about the file", async () => {
  await sameRefusalForAnyPath((p) => `SELECT * FROM '${p}'`);
});

probe('SET: 400', async () => {
  const r = await sql('SET datafusion.execution.batch_size = 1');
  assert.equal(r.status, 400, `${r.status} ${r.error}`);
});

probe('INSERT, DELETE, UPDATE, DROP: 400', async () => {
  for (const stmt of [
    `INSERT INTO processes (process_id) VALUES ('${randomUUID()}')`,
    'DELETE FROM processes',
    "UPDATE processes SET exe = 'x'",
    'DROP TABLE processes',
    'DROP VIEW log_entries',
  ]) {
    const r = await sql(stmt);
    assert.equal(r.status, 400, `${stmt}: ${r.status} ${r.error}`);
  }
});

probe('2 MiB of SQL: 400 or 413 with a size message', async () => {
  const r = await sql(`SELECT 1 AS one /* ${'x'.repeat(2 * MiB)} */`);
  assert.ok(r.status === 400 || r.status === 413, `${r.status} ${r.error.slice(0, 300)}`);
  assert.match(r.error, /size|large|long|bytes|limit/i);
});

probe('deeply nested parentheses: 400', async () => {
  const r = await sql(`SELECT ${'('.repeat(5000)}1${')'.repeat(5000)} AS n`);
  assert.equal(r.status, 400, `${r.status} ${r.error.slice(0, 300)}`);
});

probe('JSON limit 2^32 returns the rows (or 400), never silently none', async () => {
  const r = await sql('SELECT v FROM unnest(range(0, 5)) AS t(v)', { limit: 2 ** 32 });
  if (r.status === 400) assert.match(r.error, /limit/);
  else {
    assert.equal(r.status, 200, r.error);
    assert.equal(r.rows.length, 5);
  }
});

probe('a heavy cross join answers 504 at the query timeout, and the CPU falls near idle within 2 s', async () => {
  const started = Date.now();
  let r: SqlAnswer;
  try {
    r = await sql(HEAVY, { timeoutMs: QUERY_TIMEOUT_S * 1000 + 10_000 });
  } catch (e) {
    assert.fail(`no answer ${QUERY_TIMEOUT_S + 10} s after a ${QUERY_TIMEOUT_S} s query timeout: ${(e as Error).message}`);
  }
  assert.equal(r.status, 504, `${r.status} ${r.error}`);
  assert.match(r.error, /timed out/);
  assert.ok(Date.now() - started < QUERY_TIMEOUT_S * 1000 + 2000, `504 after ${Date.now() - started} ms`);
  await settlesIdle('after the 504');
});

probe('SELECT 1 answers while a heavy query runs', async () => {
  let heavyDone = false;
  const heavy = sql(HEAVY).finally(() => (heavyDone = true));
  try {
    await sleep(500);
    const t0 = Date.now();
    const one = await sql('SELECT 1 AS one', { timeoutMs: 2500 }).catch((e) => assert.fail(`SELECT 1 got no answer in 2.5 s: ${e.message}`));
    assert.equal(one.status, 200, one.error);
    assert.deepEqual(one.rows, [{ one: 1 }]);
    assert.equal(heavyDone, false, `SELECT 1 answered only after the heavy query (${Date.now() - t0} ms)`);
  } finally {
    await heavy.catch(() => {});
  }
  await settlesIdle('after the heavy query');
});

probe('a client that disconnects mid-query: the CPU falls near idle within 2 s, before the query timeout', async () => {
  const client = new AbortController();
  const heavy = sql(HEAVY, { signal: client.signal }).catch(() => null);
  await sleep(300);
  const busy = await cpuShare(pid(), 500);
  assert.ok(busy > IDLE_CORES, `the heavy query runs (${busy.toFixed(2)} cores)`);
  client.abort();
  await heavy;
  await settlesIdle('after the client went away');
});

probe('many concurrent heavy queries: some get 503, every one answers, none hangs', async () => {
  const N = 24;
  const answers = await Promise.all(
    Array.from({ length: N }, () => sql(HEAVY, { timeoutMs: 60_000 }).catch((e): SqlAnswer => ({ status: 0, rows: [], error: `no answer: ${(e as Error).message}` }))),
  );
  const statuses = answers.map((a) => a.status);
  assert.ok(statuses.every((s) => s === 503 || s === 504), `statuses: ${statuses.join(' ')}; ${answers.find((a) => a.status !== 503 && a.status !== 504)?.error}`);
  const busy = answers.find((a) => a.status === 503);
  assert.ok(busy, `no 503 among ${N} concurrent heavy queries: ${statuses.join(' ')}`);
  assert.ok(busy.error.length > 0, 'the 503 says why');
  await settlesIdle('after the concurrent heavy queries');
});

// ---- blocks: ingestion isolation ----

const BAD_TIMES: [string, Record<string, string>][] = [
  ['year 0000', { begin_time: '0000-01-01T00:00:01.250000000+00:00' }],
  ['a -23:59 offset', { end_time: shiftTime('2026-01-01T00:00:02.250000000+00:00').slice(0, -6) + '-23:59' }],
];

for (const [what, over] of BAD_TIMES) {
  probe(`a block with ${what} gets 400, and a good block posted with it (same pack) gets 200`, async () => {
    const hostile = await newProcess();
    const good = await newProcess();
    const [bad, ok] = await Promise.all([ingest(server.url, hostile.block('log', over)), ingest(server.url, good.block('log'))]);
    assert.equal(bad.status, 400, `the bad block: ${bad.text}`);
    assert.match(bad.text, new RegExp(Object.keys(over)[0]), 'the reason names the field');
    assert.equal(ok.status, 200, `the good block: ${ok.text}`);
    acked.set(good.processId, RUST_LOG_ROWS);
    await assertGoodRows(good);
  });
}

probe('a sustained hostile client does not stop a good one: 30 of 30 good blocks acknowledged', async () => {
  const hostile = await newProcess();
  const good = await newProcess();
  let stopping = false;
  const badStatuses: number[] = [];
  const hostileLoop = async () => {
    for (let i = 0; !stopping; i++) badStatuses.push((await ingest(server.url, hostile.block('log', BAD_TIMES[i % 2][1]))).status);
  };
  const loops = [hostileLoop(), hostileLoop(), hostileLoop()];
  const goodAnswers: Answer[] = [];
  try {
    await sleep(200);
    for (let i = 0; i < 30; i++) goodAnswers.push(await ingest(server.url, good.block('log')));
  } finally {
    stopping = true;
    await Promise.all(loops);
  }
  const refused = goodAnswers.filter((a) => a.status !== 200);
  assert.equal(refused.length, 0, `good blocks refused: ${refused.map((a) => `${a.status} ${a.text}`).join('; ')}`);
  acked.set(good.processId, 30 * RUST_LOG_ROWS);
  assert.ok(badStatuses.length >= 30, `the hostile client kept posting (${badStatuses.length} bad blocks)`);
  assert.deepEqual([...new Set(badStatuses)], [400], 'every bad block gets 400');
  await assertGoodRows(good);
});

// ---- doors ----

probe('the embedded PostgreSQL answers no client without a secret', async () => {
  const { tcp, unix } = listeningSockets(pid());
  assert.ok(tcp.includes(port), `the HTTP port ${port} is among the listening sockets found (${tcp.join(', ')})`);
  for (const p of tcp.filter((x) => x !== port)) {
    const client = new pg.Client({ host: '127.0.0.1', port: p, user: 'postgres', database: 'postgres', password: undefined, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    const got = await client
      .connect()
      .then(() => client.query('SELECT count(*)::int AS n FROM processes'))
      .then((r) => `read ${r.rows[0].n} processes`, () => null);
    await client.end().catch(() => {});
    assert.equal(got, null, `port ${p}: a plain client with no password ${got}`);
  }
  for (const path of unix) {
    assert.ok(!path.startsWith('@'), `abstract Unix socket ${path}: any local process can connect`);
    assert.ok(ownerOnly(path), `Unix socket ${path} is open to other users`);
  }
});

probe('listening on 0.0.0.0 without API keys refuses to start, unless --insecure-no-auth', async () => {
  const open = await freePort();
  const dir = tempDir('mm-hostile-open-');
  const env = { MICROMEGAS_API_KEYS: '', MICROMEGAS_INSECURE_NO_AUTH: '' };
  // startServe listens on 127.0.0.1; a later --listen wins.
  const listen = ['--listen', `0.0.0.0:${open}`];
  await assert.rejects(
    async () => stop(await startServe(open, dir, listen, env)),
    (e: Error) => {
      assert.match(e.message, /exited \([1-9]\d*\)/, e.message);
      assert.match(e.message, /insecure-no-auth/, 'the message names the way out');
      assert.match(e.message, /key/i, 'the message says what is missing');
      return true;
    },
    'serve started on 0.0.0.0 with no API keys',
  );
  assert.deepEqual(readdirSync(dir), [], 'refused before anything was opened under the data dir');
  const insecure = await startServe(open, dir, [...listen, '--insecure-no-auth'], env);
  try {
    const health = await fetch(`${insecure.url}/health`);
    assert.equal(health.status, 200);
  } finally {
    await stop(insecure);
  }
});

/** The gateway's own count of request body bytes it holds (/metrics). */
async function bufferedBodyBytes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^gateway_buffered_body_bytes (\d+)$/m.exec(text);
  assert.ok(m, 'the gateway reports gateway_buffered_body_bytes in /metrics');
  return Number(m[1]);
}

probe('10 stalled 30 MiB uploads get 408, and the memory they held is released', async () => {
  const before = memory(pid()).rss;
  const uploads = Array.from({ length: 10 }, () => stalledUpload(port, '/ingestion/insert_block', 30 * MiB, 21 * MiB, BODY_TIMEOUT_MS + 15_000));
  await sleep(BODY_TIMEOUT_MS / 2);
  const held = await bufferedBodyBytes(server.url);
  const statuses = (await Promise.all(uploads)).map((a) => a.status);
  assert.ok(held >= 21 * MiB, `the stalled bodies reached the server (${held} bytes held)`);
  // 503: refused up front by the buffered-body cap (0: that refusal lost to the reset of a
  // connection closed on unread bytes). The rest wait for their 408.
  assert.ok(statuses.every((s) => s === 408 || s === 503 || s === 0), `statuses: ${statuses.join(' ')}`);
  assert.ok(statuses.filter((s) => s === 408).length >= 8, `the body timeout answers 408: ${statuses.join(' ')}`);
  assert.equal(await bufferedBodyBytes(server.url), 0, 'bodies still held after their 408');
  // Garbage until a collection runs: RSS stays within what the cap lets the server hold.
  const rss = memory(pid()).rss;
  assert.ok(rss <= before + 256 * MiB, `RSS ${Math.round(rss / MiB)} MiB, ${Math.round(before / MiB)} MiB before the uploads`);
});

probe('bodies beyond the global buffered-body cap get 503 with Retry-After, and the room comes back', async () => {
  const capPort = await freePort();
  const capped = await startServe(capPort, tempDir('mm-hostile-cap-'), ['--max-buffered-body-bytes', String(16 * MiB), '--body-timeout-ms', '3000']);
  try {
    const first = stalledUpload(capPort, '/ingestion/insert_block', 12 * MiB, 10 * MiB, 20_000);
    await sleep(500);
    // Headers first: a refusal at the headers arrives before the body is sent.
    const beyond = await stalledUpload(capPort, '/ingestion/insert_block', 12 * MiB, 10 * MiB, 20_000, 500);
    assert.equal(beyond.status, 503, `24 MiB of bodies under a 16 MiB cap: ${beyond.head.split('\r\n')[0]}`);
    assert.match(beyond.head, /\r\nretry-after: *\d+/i, 'the 503 says when to come back');
    assert.equal((await first).status, 408, 'the first upload waits for its 408');
    assert.equal(await bufferedBodyBytes(capped.url), 0);
    const again = await ingest(capped.url, new VectorProcess('rust').process());
    assert.equal(again.status, 200, `after the stalled body is gone: ${again.text}`);
  } finally {
    await stop(capped);
  }
});

// ---- blocks the views must survive (last: a stored block that breaks queries breaks every check after it) ----

probe("a block naming another process's stream gets 400 at the gateway, and global log_entries still answers", async () => {
  const unknownProcess = await ingest(server.url, baseline.rust.block('log', { process_id: randomUUID() }));
  assert.equal(unknownProcess.status, 400, `block of an unknown process in a known stream: ${unknownProcess.text}`);
  assert.match(unknownProcess.text, /stream|process/i, 'the reason says what does not match');
  const otherProcess = await ingest(server.url, baseline.rust.block('log', { process_id: baseline.unreal.processId }));
  assert.equal(otherProcess.status, 400, `block of another known process in a known stream: ${otherProcess.text}`);
  const all = await sql('SELECT count(*) AS n FROM log_entries');
  assert.equal(all.status, 200, all.error);
});

probe('corrupt transit payloads (truncated, random bytes, the corrupt golden vectors) are skipped; the good rows read', async () => {
  const p = await newProcess();
  await goodLogBlock(p);
  const good = vectorPayload('rust/log/block.cbor');
  const objects = lz4Decompress(good.objects);
  const bad: Record<string, { payload: ReturnType<typeof payload>; nb_objects?: number }> = {
    truncated: { payload: payload(good.dependencies, lz4Stored(objects.subarray(0, Math.floor(objects.length / 2)))) },
    'random bytes': { payload: payload(good.dependencies, lz4Stored(randomBytes(8192))) },
    'random dependencies': { payload: payload(lz4Stored(randomBytes(4096)), good.objects) },
  };
  for (const name of ['unknown-type-index', 'missing-dependency', 'duplicate-dependency', 'length-past-buffer']) {
    const v = vectorPayload(`corrupt/${name}.cbor`);
    bad[name] = { payload: payload(v.dependencies, v.objects) };
  }
  for (const [name, over] of Object.entries(bad)) {
    const r = await ingest(server.url, p.block('log', over));
    assert.ok(r.status === 200 || r.status === 400, `${name}: ${r.status} ${r.text}`);
  }
  await assertGoodRows(p);
  const [all] = await rows('SELECT count(*) AS n FROM log_entries');
  assert.ok(Number(all.n) > 0);
});

probe('LZ4 bomb: a 4 MiB objects frame inflating to 1 GiB is skipped; the good rows read; memory stays bounded', async () => {
  const p = await newProcess();
  await goodLogBlock(p);
  resetPeak(pid());
  const before = memory(pid());
  const bomb = lz4Bomb(1 << 30);
  assert.ok(bomb.length < 5 * MiB);
  const { dependencies } = vectorPayload('rust/log/block.cbor');
  const r = await ingest(server.url, p.block('log', { payload: payload(dependencies, bomb) }));
  assert.ok(r.status === 200 || r.status === 400, `ingestion: ${r.status} ${r.text}`);
  await assertGoodRows(p);
  const peak = memory(pid()).peak;
  assert.ok(peak < before.rss + 512 * MiB, `the server peaked at ${Math.round(peak / MiB)} MiB from ${Math.round(before.rss / MiB)} MiB`);
});

probe('a block claiming nb_objects = 2^31-1: 200 or 400 at ingestion, and the process still reads its good rows', async () => {
  const p = await newProcess();
  await goodLogBlock(p);
  const r = await ingest(server.url, p.block('log', { nb_objects: 2 ** 31 - 1 }));
  assert.ok(r.status === 200 || r.status === 400, `ingestion: ${r.status} ${r.text}`);
  // The block's objects are real, only its count lies: skipped, or read for what it holds.
  const { global, instance } = await logRows(p);
  assert.equal(global, instance);
  const good = acked.get(p.processId)!;
  assert.ok(global === good || (r.status === 200 && global === 2 * good), `${global} rows; the good block holds ${good}`);
  acked.set(p.processId, global);
});
