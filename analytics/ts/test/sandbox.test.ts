// The SQL sandbox, cancellation and fairness over HTTP, end to end (real PostgreSQL, the Rust
// engine through napi, the node:http handler): each hostile query gets its status and message,
// and `SELECT 1` still answers after it. A client that goes away stops its query's CPU.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, createQueryServer, type OpenOptions } from '../src/index.js';
import { TestLake } from '../support/lake.js';

const PG = process.env.MICROMEGAS_TEST_PG_URL;
if (!PG) throw new Error('MICROMEGAS_TEST_PG_URL is not set: run through `npm test` or start scripts/test-services.mjs');

/** 10^10 rows: never finishes in a test's time. */
// The join filter keeps the optimizer from answering count(*) from the inputs' row counts.
const HEAVY = 'SELECT count(*) FROM (SELECT * FROM unnest(range(100000))) a(x), (SELECT * FROM unnest(range(100000))) b(y) WHERE x + y >= 0';

let lake: TestLake;
const servers: Server[] = [];

before(async () => {
  lake = await TestLake.create(PG);
});

after(async () => {
  for (const s of servers) s.close();
  await lake?.close();
});

/** A query server over its own engine; returns a `post` bound to it. */
async function serve(options: OpenOptions = {}) {
  const engine = await Engine.open({ sqlConnectionString: lake.url, objectStoreUri: lake.objectStoreUri, jitPartitions: false, ...options });
  const server = createQueryServer(engine);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return (body: unknown, signal?: AbortSignal) =>
    fetch(`${base}/api/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
}

type Post = Awaited<ReturnType<typeof serve>>;

async function expectError(post: Post, body: unknown, status: number, message: RegExp) {
  const res = await post(body);
  const text = await res.text();
  assert.equal(res.status, status, `${JSON.stringify(body).slice(0, 200)} -> ${text.slice(0, 300)}`);
  assert.match(JSON.parse(text).error, message);
  return JSON.parse(text).error as string;
}

async function assertSelect1(post: Post) {
  const res = await post({ sql: 'SELECT 1 AS one' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), [{ one: 1 }]);
}

/** CPU (user + system, all threads, the Rust engine's included) this process burns over `ms`. */
async function cpuOverMs(ms: number): Promise<number> {
  const before = process.cpuUsage();
  await new Promise((r) => setTimeout(r, ms));
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

async function assertIdle(what: string) {
  await new Promise((r) => setTimeout(r, 300)); // aborted operators unwind
  const used = await cpuOverMs(1500);
  assert.ok(used < 300, `${what}: the process still burned ${used} ms of CPU in 1.5 s`);
}

test('statements other than queries answer 400 and write nothing', async () => {
  const post = await serve();
  const target = join(tmpdir(), `mm-sandbox-http-${process.pid}.csv`);
  for (const sql of [
    `COPY (SELECT 1) TO '${target}'`,
    `EXPLAIN ANALYZE COPY (SELECT 1) TO '${target}'`,
    'CREATE TABLE t AS SELECT 1',
    'CREATE TABLE t (x INT)',
    "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
    'DROP TABLE log_entries',
    'SET datafusion.execution.batch_size = 1',
    'INSERT INTO log_entries SELECT * FROM log_entries',
  ]) {
    await expectError(post, { sql }, 400, /^only queries are allowed \(SELECT, WITH, VALUES, EXPLAIN, SHOW\): .+ is refused$/);
    await assertSelect1(post);
  }
  assert.equal(existsSync(target), false, 'a refused COPY wrote its file');
});

test('a file path is an unknown table: 400, the same whether the file exists or not', async () => {
  const post = await serve();
  const passwd = await expectError(post, { sql: "SELECT * FROM '/etc/passwd'" }, 400, /passwd/);
  const missing = await expectError(post, { sql: "SELECT * FROM '/etc/no-such-file'" }, 400, /no-such-file/);
  assert.equal(passwd.replace('/etc/passwd', 'P'), missing.replace('/etc/no-such-file', 'P'));
  assert.doesNotMatch(passwd, /root:/);
  await assertSelect1(post);
});

test('deep or huge SQL answers 400 with the limit it broke, and the server keeps answering', async () => {
  const post = await serve();
  const terms = (n: number, f: (i: number) => string, op: string) => Array.from({ length: n }, (_, i) => f(i)).join(op);
  // 1,000 terms run.
  const sum = await post({ sql: `SELECT ${terms(1000, () => '1', ' + ')} AS n` });
  assert.equal(sum.status, 200);
  assert.deepEqual(await sum.json(), [{ n: 1000 }]);
  await expectError(post, { sql: `SELECT 1 FROM unnest(range(10)) AS t(a) WHERE ${terms(20_000, (i) => `a = ${i}`, ' OR ')}` }, 400, /^expressions nest more than 1000 levels deep/);
  await assertSelect1(post);
  await expectError(post, { sql: `SELECT ${'('.repeat(10_000)}1${')'.repeat(10_000)}` }, 400, /SQL nested too deeply/);
  await assertSelect1(post);
  await expectError(post, { sql: `SELECT '${'x'.repeat(300 * 1024)}'` }, 400, /^SQL text is \d+ bytes, more than the limit of 262144 bytes$/);
  await assertSelect1(post);
});

test('limit accepts any safe integer (2^32 returns every row) and refuses the rest with 400', async () => {
  const post = await serve();
  for (const limit of [2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const res = await post({ sql: 'SELECT v FROM unnest(range(5)) AS t(v) ORDER BY v', limit });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), [0, 1, 2, 3, 4].map((v) => ({ v })), `limit ${limit}`);
  }
  for (const limit of [2 ** 53, 1.5, -1, '10']) {
    await expectError(post, { sql: 'SELECT 1', limit }, 400, /^`limit` must be an integer from 0 to 9007199254740991$/);
  }
  await assertSelect1(post);
});

test('a query past its timeout answers 504 and stops using CPU', async () => {
  const post = await serve({ queryTimeoutMs: 1000 });
  const started = Date.now();
  await expectError(post, { sql: HEAVY }, 504, /^query timed out after 1000 ms and was stopped$/);
  assert.ok(Date.now() - started < 5000, `504 after ${Date.now() - started} ms`);
  await assertIdle('after the 504');
  await assertSelect1(post);
});

test('SELECT 1 answers while heavy queries run; a client going away stops its query', async () => {
  const post = await serve({ queryTimeoutMs: 60_000 });
  const gone = new AbortController();
  let settled = false;
  const heavy = post({ sql: HEAVY }, gone.signal).then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 3; i++) await assertSelect1(post);
  assert.equal(settled, false, 'the heavy query answered: it cannot have, so SELECT 1 did not run beside it');
  gone.abort();
  await heavy;
  await assertIdle('after the client went away');
  await assertSelect1(post);
});

test('beyond the running and queued caps a query answers 503 at once', async () => {
  const post = await serve({ queryTimeoutMs: 60_000, maxConcurrentQueries: 1, maxQueuedQueries: 0 });
  const gone = new AbortController();
  const heavy = post({ sql: HEAVY }, gone.signal).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300)); // it takes the one slot
  await expectError(post, { sql: 'SELECT 1' }, 503, /^server busy: 1 queries running and 0 waiting, the most it takes; retry later$/);
  gone.abort();
  await heavy;
  // The slot is freed as the cancelled query unwinds.
  for (let i = 0; ; i++) {
    const res = await post({ sql: 'SELECT 1 AS one' });
    if (res.status === 200) break;
    assert.ok(i < 50 && res.status === 503, `status ${res.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await assertIdle('after the overload');
});
