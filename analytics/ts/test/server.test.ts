// SQL over HTTP end to end: blocks in a real PostgreSQL + file store, the Rust engine through
// napi, and the HTTP handler, in JSON and Arrow IPC; bad SQL gives 400 with the engine's message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tableFromIPC } from 'apache-arrow';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, createQueryServer, runQueryCli, runPerfettoCli, exportPerfettoTrace, runMaintenance, ARROW_STREAM } from '../src/index.js';
import { TestLake, logBlock, threadSpanBlock, CPU_DEPS, CPU_OBJS } from '../support/lake.js';

const PG = process.env.MICROMEGAS_TEST_PG_URL;
// A test that skips passes silently: without PostgreSQL the file fails.
if (!PG) throw new Error('MICROMEGAS_TEST_PG_URL is not set: run through `npm test` or start scripts/test-services.mjs');
const P = '0b7d3c1e-1111-4000-8000-000000000001';
const S = '0b7d3c1e-1111-4000-8000-0000000000a1';
const C = '0b7d3c1e-1111-4000-8000-0000000000c1';

let lake: TestLake;
let server: Server;
let base: string;
let engine: Engine;

before(async () => {
  lake = await TestLake.create(PG);
  await lake.addProcess(P, 'server.exe');
  await lake.addLogStream(S, P);
  await lake.addBlock(P, S, logBlock([
    { msg: 'started', level: 4, ns: 100_000_000n },
    { msg: 'disk full', level: 2, ns: 500_000_000n },
  ]), 2, 0, 1);
  await lake.addBlock(P, S, logBlock([{ msg: 'crash', level: 1, ns: 1_500_000_000n }]), 1, 1, 2);
  await lake.addStream(C, P, CPU_DEPS, CPU_OBJS, 'cpu');
  await lake.addBlock(P, C, threadSpanBlock([
    { name: 'tick', begin: 100_000_000n, end: 116_000_000n },
    { name: 'render', begin: 120_000_000n, end: 125_500_000n },
  ]), 4, 0, 1);
  engine = await Engine.open({ sqlConnectionString: lake.url, objectStoreUri: lake.objectStoreUri });
  server = createQueryServer(engine);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server?.close();
  await lake?.close();
});

async function post(path: string, body: unknown, accept?: string) {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) },
    body: JSON.stringify(body),
  });
}

test('POST /api/query answers JSON rows', async () => {
  const res = await post('/api/query', { sql: 'SELECT msg, level FROM log_entries ORDER BY time' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), [
    { msg: 'started', level: 4 },
    { msg: 'disk full', level: 2 },
    { msg: 'crash', level: 1 },
  ]);
});

test('the time range and limit restrict the rows', async () => {
  const res = await post('/api/query', {
    sql: 'SELECT msg FROM log_entries ORDER BY time',
    begin: '2026-11-24T12:00:00.200Z',
    end: '2026-11-24T12:00:05Z',
    limit: 1,
  });
  assert.deepEqual(await res.json(), [{ msg: 'disk full' }]);
});

test("upstream's /gateway/query request shape is accepted", async () => {
  const res = await post('/gateway/query', {
    sql: `SELECT count(*) AS n FROM view_instance('log_entries', '${P}') WHERE level <= 2`,
    time_range_begin: '2026-11-24T12:00:01Z',
    time_range_end: '2026-11-24T12:00:02Z',
  });
  assert.deepEqual(await res.json(), [{ n: 1 }]);
});

test('Accept: arrow stream answers Arrow IPC', async () => {
  const res = await post('/api/query', { sql: 'SELECT exe, msg FROM log_entries ORDER BY time' }, ARROW_STREAM);
  assert.equal(res.headers.get('content-type'), ARROW_STREAM);
  const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
  assert.equal(table.numRows, 3);
  assert.deepEqual(table.getChild('msg')?.toArray(), ['started', 'disk full', 'crash']);
  assert.equal(table.getChild('exe')?.get(0), 'server.exe');
});

test('large results stream in chunks, in JSON and in Arrow', async () => {
  const sql = 'SELECT v, v * 2 AS w FROM unnest(range(0, 300000)) AS t(v) ORDER BY v';
  const res = await post('/api/query', { sql });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('transfer-encoding'), 'chunked');
  const rows = await res.json();
  assert.equal(rows.length, 300000);
  assert.deepEqual([rows[0], rows[299999]], [{ v: 0, w: 0 }, { v: 299999, w: 599998 }]);
  const arrow = await post('/api/query', { sql }, ARROW_STREAM);
  const table = tableFromIPC(new Uint8Array(await arrow.arrayBuffer()));
  assert.equal(table.numRows, 300000);
  assert.equal(Number(table.getChild('w')?.get(299999)), 599998);
  const empty = await post('/api/query', { sql: 'SELECT 1 AS one WHERE false' });
  assert.deepEqual(await empty.json(), []);
});

test('bad SQL answers 400 with the engine message, and the next query still works', async () => {
  const bad = await post('/api/query', { sql: 'SELECT nosuchcolumn FROM log_entries' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /nosuchcolumn/);
  const noSql = await post('/api/query', { begin: '2026-01-01T00:00:00Z' });
  assert.equal(noSql.status, 400);
  const half = await post('/api/query', { sql: 'SELECT 1', begin: '2026-01-01T00:00:00Z' });
  assert.equal(half.status, 400);
  assert.match((await half.json()).error, /both begin and end/);
  const ok = await post('/api/query', { sql: 'SELECT count(*) AS n FROM processes' });
  assert.deepEqual(await ok.json(), [{ n: 1 }]);
});

test('the query CLI prints csv and json', async () => {
  process.env.MICROMEGAS_SQL_CONNECTION_STRING = lake.url;
  process.env.MICROMEGAS_OBJECT_STORE_URI = lake.objectStoreUri;
  const capture = () => {
    const chunks: string[] = [];
    return { chunks, stream: { write: (c: string | Uint8Array) => (chunks.push(c.toString()), true) } as unknown as NodeJS.WritableStream };
  };
  const out = capture();
  assert.equal(await runQueryCli(['SELECT msg, level FROM log_entries WHERE level < 3 ORDER BY time', '--format', 'csv'], out.stream), 0);
  assert.equal(out.chunks.join(''), 'msg,level\ndisk full,2\ncrash,1\n');
  const json = capture();
  assert.equal(await runQueryCli(['SELECT count(*) AS n FROM log_entries', '--format', 'json'], json.stream), 0);
  assert.deepEqual(JSON.parse(json.chunks.join('')), [{ n: 3 }]);
  const err = capture();
  assert.equal(await runQueryCli(['SELEC 1'], capture().stream, err.stream), 1);
  assert.match(err.chunks.join(''), /SELEC/);
});

test('the Perfetto export has the process, one thread track and its spans in microseconds', async () => {
  const { traceEvents } = await exportPerfettoTrace(engine, P);
  const t0us = Date.parse('2026-11-24T12:00:00Z') * 1000;
  // The stream has no thread-id property: the track gets a synthetic, unique tid.
  assert.deepEqual(traceEvents.filter((e) => e.ph === 'M').map((e) => e.args?.name), ['server.exe', 'thread-1000000']);
  assert.deepEqual(
    traceEvents.filter((e) => e.ph === 'X').map((e) => [e.name, e.ts - t0us, e.dur, e.tid]),
    [['tick', 100_000, 16_000, 1_000_000], ['render', 120_000, 5_500, 1_000_000]],
  );
  const ranged = await exportPerfettoTrace(engine, P, { begin: '2026-11-24T12:00:00.118Z', end: '2026-11-24T12:00:01Z' });
  assert.deepEqual(ranged.traceEvents.filter((e) => e.ph === 'X').map((e) => e.name), ['render']);
});

/** Protobuf wire reader, written from the encoding spec (independent of the exporter's writer). */
type Field = { field: number; value: bigint | Buffer };
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++];
      assert.ok(b !== undefined, 'truncated varint');
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const wire = key & 7;
    if (wire === 0) out.push({ field: key >> 3, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      assert.ok(i + len <= buf.length, 'length past the end');
      out.push({ field: key >> 3, value: buf.subarray(i, i + len) });
      i += len;
    } else assert.fail(`unexpected wire type ${wire}`);
  }
  return out;
}
const one = (fs: Field[], n: number) => fs.find((f) => f.field === n)?.value;
const text = (v: unknown) => (v as Buffer).toString('utf8');

test('the .pftrace export is a Perfetto protobuf: process and thread tracks, nested slices in ns', async () => {
  const res = await post('/api/perfetto', { process_id: P, format: 'pftrace' });
  assert.equal(res.status, 200);
  const trace = fields(Buffer.from(await res.arrayBuffer()));
  assert.ok(trace.every((f) => f.field === 1), 'a Trace holds only packets (field 1)');
  const packets = trace.map((f) => fields(f.value as Buffer));
  assert.ok(packets.every((p) => one(p, 10) === 1n), 'every packet has trusted_packet_sequence_id');
  const descriptors = packets.map((p) => one(p, 60)).filter(Boolean).map((d) => fields(d as Buffer));
  const processTrack = descriptors.find((d) => one(d, 3));
  assert.equal(text(one(fields(one(processTrack!, 3) as Buffer), 6)), 'server.exe');
  const threadTrack = descriptors.find((d) => one(d, 4))!;
  assert.equal(one(threadTrack, 5), one(processTrack!, 1), 'the thread track is a child of the process track');
  assert.equal(text(one(fields(one(threadTrack, 4) as Buffer), 5)), 'thread-1000000');
  const t0 = BigInt(Date.parse('2026-11-24T12:00:00Z')) * 1_000_000n;
  const events = packets
    .filter((p) => one(p, 11))
    .map((p) => {
      const e = fields(one(p, 11) as Buffer);
      assert.equal(one(e, 11), one(threadTrack, 1), 'slices are on the thread track');
      const name = one(e, 23);
      return [one(e, 9) === 1n ? 'begin' : 'end', name ? text(name) : '', (one(p, 8) as bigint) - t0];
    });
  assert.deepEqual(events, [
    ['begin', 'tick', 100_000_000n],
    ['end', '', 116_000_000n],
    ['begin', 'render', 120_000_000n],
    ['end', '', 125_500_000n],
  ]);
});

test('the Perfetto export is served over HTTP and written by the CLI', async () => {
  const res = await post('/api/perfetto', { process_id: P, format: 'json' });
  assert.equal(res.status, 200);
  const names = (await res.json()).traceEvents.filter((e: { ph: string }) => e.ph === 'X').map((e: { name: string }) => e.name);
  assert.deepEqual(names, ['tick', 'render']);
  const bad = await post('/api/perfetto', { process_id: 'nope' });
  assert.equal(bad.status, 400);
  process.env.MICROMEGAS_SQL_CONNECTION_STRING = lake.url;
  process.env.MICROMEGAS_OBJECT_STORE_URI = lake.objectStoreUri;
  const out = join(tmpdir(), `mm-trace-${process.pid}.json`);
  assert.equal(await runPerfettoCli([P, '-o', out]), 0);
  assert.equal(JSON.parse(readFileSync(out, 'utf8')).traceEvents.filter((e: { ph: string }) => e.ph === 'X').length, 2);
  const pftrace = join(tmpdir(), `mm-trace-${process.pid}.pftrace`);
  assert.equal(await runPerfettoCli([P, '-o', pftrace]), 0);
  assert.equal(fields(readFileSync(pftrace)).length, 1 + 1 + 4, 'process + thread descriptors and four slice events');
  const badFormat = await post('/api/perfetto', { process_id: P, format: 'svg' });
  assert.equal(badFormat.status, 400);
});

test('maintenance materializes the completed hours of log_entries and measures once', async () => {
  // The log blocks were inserted at 12:00:01–12:00:02; at 13:30 that hour is complete.
  const now = new Date('2026-11-24T13:30:00Z');
  const first = await runMaintenance(engine, { lookbackHours: 2 }, now);
  // Earlier queries may have built the hour's partition already (ETL on demand): one either way.
  const { partitionsWritten, partitionsFresh, rows } = first.views.log_entries;
  assert.deepEqual([partitionsWritten + partitionsFresh, rows], [1, 3]);
  assert.deepEqual(first.views.measures, { partitionsWritten: 0, partitionsFresh: 0, rows: 0 });
  assert.equal(first.retention, undefined);
  const second = await runMaintenance(engine, { lookbackHours: 2 }, now);
  assert.deepEqual(second.views.log_entries, { partitionsWritten: 0, partitionsFresh: 1, rows: 3 });
  // Before the blocks' hour completes, nothing is materialized.
  const early = await runMaintenance(engine, { lookbackHours: 2 }, new Date('2026-11-24T12:30:00Z'));
  assert.deepEqual(early.views.log_entries, { partitionsWritten: 0, partitionsFresh: 0, rows: 0 });
  const blocksRead = engine.stats().blocksRead;
  const res = await post('/api/query', { sql: 'SELECT count(*) AS n FROM log_entries', begin: '2026-11-24T12:00:00Z', end: '2026-11-24T12:59:59Z' });
  assert.deepEqual(await res.json(), [{ n: 3 }]);
  assert.equal(engine.stats().blocksRead, blocksRead, 'the query read the partition, no block');
});

test('retention through the engine deletes the expired blocks and what only they held', async () => {
  // The blocks were inserted in the past (T0); a zero max age expires them all.
  const report = await engine.applyRetention({ maxAgeSeconds: 0 });
  assert.deepEqual(
    [report.blocksExpired, report.streamsDeleted, report.processesDeleted, report.cpuBlocksSampledOut],
    [3, 2, 1, 0],
  );
  const res = await post('/api/query', { sql: 'SELECT count(*) AS n FROM log_entries' });
  assert.deepEqual(await res.json(), [{ n: 0 }]);
});
