// npm run bench:analytics — block decode throughput and a query set, cold (JIT partitions built)
// and warm, with DuckDB querying the very Parquet files our partitions wrote, in the same run.
// Needs a PostgreSQL: MICROMEGAS_TEST_PG_URL (the root runner provides it).
// BENCH_EVENTS sets the generated event count (default 5 M; the issue's target set is 50 M).
import { mkdirSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { Engine } from '../src/index.js';
import { native } from '../src/native.js';
import { TestLake, RUST_LOG_DEPS, RUST_LOG_OBJS, CPU_DEPS, CPU_OBJS, cbor, m, udt, u64, u32, rec, str, payload } from '../support/lake.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 5_000_000);
const PER_BLOCK = 20_000;
const PG = process.env.MICROMEGAS_TEST_PG_URL ?? process.env.MICROMEGAS_SQL_CONNECTION_STRING;
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const MET_DEPS = cbor([
  udt('StaticString', 0, false),
  udt('MetricMetadataDependency', 48, false, [m('id', 'u64', 0, 8, false), m('name', '*', 8, 8, true), m('unit', '*', 16, 8, true),
    m('target', '*', 24, 8, true), m('file', '*', 32, 8, true), m('line', 'u32', 40, 4, false), m('lod', 'u32', 44, 4, false)]),
]);
const MET_OBJS = cbor([udt('FloatMetricEvent', 24, false, [m('desc', '&', 0, 8, true), m('value', 'f64', 8, 8, false), m('time', 'i64', 16, 8, false)])]);

const LEVELS = [4, 4, 4, 4, 4, 4, 3, 5, 2, 6];
const MSGS = ['frame done', 'asset loaded', 'player joined', 'gc pause', 'net tick'];
const SPANS = ['update', 'render', 'physics', 'ai', 'audio'];

/** Log block: `n` events starting at `t` ns, 10 µs apart (fixed descriptor per level/message). */
function logBlock(n: number, t: bigint): Buffer {
  const deps: Buffer[] = [str(1n, 'game'), str(2n, 'main.rs')];
  MSGS.forEach((s, i) => deps.push(str(10n + BigInt(i), s)));
  for (let i = 0; i < MSGS.length; i++) {
    for (const lvl of new Set(LEVELS)) {
      deps.push(rec(2, Buffer.concat([u64(BigInt(1000 + i * 10 + lvl)), u64(10n + BigInt(i)), u64(1n), u64(1n), u64(2n), u32(1), u32(lvl)]), false));
    }
  }
  const objs = Buffer.alloc(n * 17);
  for (let i = 0; i < n; i++) {
    objs[i * 17] = 0;
    objs.writeBigUInt64LE(BigInt(1000 + (i % MSGS.length) * 10 + LEVELS[i % LEVELS.length]), i * 17 + 1);
    objs.writeBigUInt64LE(t + BigInt(i) * 10_000n, i * 17 + 9);
  }
  return payload(Buffer.concat(deps), objs);
}

/** Span block: `n/2` nested begin/end pairs of depth 2 patterns, durations vary by name. */
function spanBlock(n: number, t: bigint): Buffer {
  const deps: Buffer[] = [];
  SPANS.forEach((s, i) => deps.push(rec(1, Buffer.concat([u64(BigInt(10 + i)), Buffer.from(s)]), true)));
  deps.push(rec(1, Buffer.concat([u64(1n), Buffer.from('engine')]), true), rec(1, Buffer.concat([u64(2n), Buffer.from('e.rs')]), true));
  SPANS.forEach((_, i) => deps.push(rec(0, Buffer.concat([u64(BigInt(100 + i)), u64(BigInt(10 + i)), u64(1n), u64(1n), u64(2n), u32(i), u32(1)]), false)));
  const objs = Buffer.alloc(n * 17);
  let time = t;
  for (let i = 0; i + 1 < n; i += 2) {
    const d = BigInt(100 + ((i / 2) % SPANS.length));
    objs[i * 17] = 0;
    objs.writeBigUInt64LE(d, i * 17 + 1);
    objs.writeBigUInt64LE(time, i * 17 + 9);
    time += 1000n + BigInt(((i * 7919) % 97) * 100) * (d - 99n);
    objs[(i + 1) * 17] = 1;
    objs.writeBigUInt64LE(d, (i + 1) * 17 + 1);
    objs.writeBigUInt64LE(time, (i + 1) * 17 + 9);
    time += 500n;
  }
  return payload(Buffer.concat(deps), objs.subarray(0, Math.floor(n / 2) * 2 * 17));
}

function metricBlock(n: number, t: bigint): Buffer {
  const deps = Buffer.concat([str(1n, 'frame_time'), str(2n, 'ms'), str(3n, 'game'), str(4n, 'f.rs'),
    rec(1, Buffer.concat([u64(50n), u64(1n), u64(2n), u64(3n), u64(4n), u32(1), u32(1)]), false)]);
  const objs = Buffer.alloc(n * 25);
  for (let i = 0; i < n; i++) {
    objs[i * 25] = 0;
    objs.writeBigUInt64LE(50n, i * 25 + 1);
    objs.writeDoubleLE(16 + ((i * 37) % 100) / 10, i * 25 + 9);
    objs.writeBigUInt64LE(t + BigInt(i) * 10_000n, i * 25 + 17);
  }
  return payload(deps, objs);
}

function parquetFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.parquet')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await f();
  return [performance.now() - t, r];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Result { case: string; value: number; unit: string; peer: string; peer_value: number; ratio: number }

async function main() {
  if (!PG) {
    console.error('bench: set MICROMEGAS_TEST_PG_URL to a PostgreSQL URL');
    process.exit(2);
  }
  const results: Result[] = [];
  const push = (c: string, value: number, unit: string, peer: string, peerValue: number) =>
    results.push({ case: c, value: +value.toFixed(3), unit, peer, peer_value: +peerValue.toFixed(3), ratio: +(value / peerValue).toFixed(3) });

  // Data: one process with a log, a cpu and a metrics stream; events split 40/40/20.
  const lake = await TestLake.create(PG);
  const P = randomUUID();
  const [L, C, M] = [randomUUID(), randomUUID(), randomUUID()];
  await lake.addProcess(P, 'bench.exe');
  await lake.addStream(L, P, RUST_LOG_DEPS, RUST_LOG_OBJS, 'log');
  await lake.addStream(C, P, CPU_DEPS, CPU_OBJS, 'cpu');
  await lake.addStream(M, P, MET_DEPS, MET_OBJS, 'metrics');
  const gen = async (stream: string, total: number, make: (n: number, t: bigint) => Buffer) => {
    let offset = 0;
    for (let i = 0; offset < total; i++) {
      const n = Math.min(PER_BLOCK, total - offset);
      const t0 = BigInt(i) * BigInt(PER_BLOCK) * 10_000n;
      const body = make(n, t0);
      await lake.addBlock(P, stream, body, n, Number(t0) / 1e9, Number(t0 + BigInt(n) * 10_000n) / 1e9 + 0.001, offset);
      offset += n;
    }
  };
  const tGen = performance.now();
  await gen(L, EVENTS * 0.4, logBlock);
  await gen(C, EVENTS * 0.4, spanBlock);
  await gen(M, EVENTS * 0.2, metricBlock);
  console.log(`generated ${EVENTS} events in ${((performance.now() - tGen) / 1000).toFixed(1)} s`);

  // Decode: one full log block, one thread block, repeated on this thread (one core).
  for (const [name, deps, objs, body] of [
    ['log', RUST_LOG_DEPS, RUST_LOG_OBJS, logBlock(PER_BLOCK, 0n)],
    ['cpu', CPU_DEPS, CPU_OBJS, spanBlock(PER_BLOCK, 0n)],
  ] as const) {
    let events = 0;
    const t = performance.now();
    while (performance.now() - t < 2000) events += native.countBlockEvents(deps, objs, body);
    const perSec = events / ((performance.now() - t) / 1000);
    results.push({ case: `decode_${name}_events_per_s_per_core`, value: Math.round(perSec), unit: 'events/s', peer: 'target 50M events/s', peer_value: 50e6, ratio: +(perSec / 50e6).toFixed(3) });
  }

  const engine = await Engine.open({ sqlConnectionString: lake.url, objectStoreUri: lake.objectStoreUri });
  const queries = [
    { name: 'count_by_level', ours: `SELECT level, count(*) AS n FROM view_instance('log_entries', '${P}') GROUP BY level ORDER BY level`,
      duck: (f: string) => `SELECT level, count(*) AS n FROM read_parquet(${f}) GROUP BY level ORDER BY level`, view: 'log_entries', id: P },
    { name: 'errors_of_one_process', ours: `SELECT time, msg FROM view_instance('log_entries', '${P}') WHERE level <= 2 ORDER BY time`,
      duck: (f: string) => `SELECT time, msg FROM read_parquet(${f}) WHERE level <= 2 ORDER BY time`, view: 'log_entries', id: P },
    { name: 'p99_span_duration_by_name', ours: `SELECT name, approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration) AS p99 FROM view_instance('thread_spans', '${C}') GROUP BY name`,
      duck: (f: string) => `SELECT name, approx_quantile(duration, 0.99) AS p99 FROM read_parquet(${f}) GROUP BY name`, view: 'thread_spans', id: C },
    { name: 'metric_1s_histogram', ours: `SELECT date_bin(INTERVAL '1 second', time) AS t, count(*) AS n, avg(value) AS v FROM view_instance('measures', '${P}') WHERE name = 'frame_time' GROUP BY 1 ORDER BY 1`,
      duck: (f: string) => `SELECT time_bucket(INTERVAL '1 second', time) AS t, count(*) AS n, avg(value) AS v FROM read_parquet(${f}) WHERE name = 'frame_time' GROUP BY 1 ORDER BY 1`, view: 'measures', id: P },
  ];
  const duck = await (await DuckDBInstance.create(':memory:', { threads: '2' })).connect();
  console.log(`\n${'case'.padEnd(36)} ${'ours ms'.padStart(10)} ${'duckdb ms'.padStart(10)} ${'ratio'.padStart(7)}  rows`);
  for (const q of queries) {
    const [cold, coldRows] = await timed(() => engine.queryIpc(q.ours));
    const warmRuns: number[] = [];
    for (let i = 0; i < 3; i++) warmRuns.push((await timed(() => engine.queryIpc(q.ours)))[0]);
    const files = parquetFiles(join(lake.storeDir, 'views', q.view, q.id));
    const list = `[${files.map((f) => `'${f}'`).join(', ')}]`;
    const duckRuns: number[] = [];
    let duckRows = 0;
    for (let i = 0; i < 3; i++) {
      const [ms, r] = await timed(() => duck.runAndReadAll(q.duck(list)));
      duckRows = r.currentRowCount;
      duckRuns.push(ms);
    }
    const warm = median(warmRuns);
    const duckMs = median(duckRuns);
    push(`${q.name}_cold_ms`, cold, 'ms', 'duckdb warm, same parquet', duckMs);
    push(`${q.name}_warm_ms`, warm, 'ms', 'duckdb warm, same parquet', duckMs);
    const ours = (await engine.queryTable(q.ours)).numRows;
    void coldRows;
    console.log(`${(q.name + ' cold').padEnd(36)} ${cold.toFixed(1).padStart(10)} ${duckMs.toFixed(1).padStart(10)} ${(cold / duckMs).toFixed(2).padStart(7)}  ${ours}/${duckRows}`);
    console.log(`${(q.name + ' warm').padEnd(36)} ${warm.toFixed(1).padStart(10)} ${duckMs.toFixed(1).padStart(10)} ${(warm / duckMs).toFixed(2).padStart(7)}  ${ours}/${duckRows}`);
  }
  for (const r of results.filter((r) => r.case.startsWith('decode'))) console.log(`${r.case.padEnd(36)} ${Math.round(r.value).toLocaleString()} events/s (${r.ratio}× of the 50 M target)`);
  const out = join(REPO, 'bench/results/analytics.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${out} (${EVENTS} events)`);
  await lake.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
