// Upstream-format golden vectors (the Rust sink, the Unreal plugin, the legacy Rust layout, corrupt
// and edge cases) posted to the all-in-one server over HTTP, then read back through SQL: every
// status as the manifest says, and every decodable event in the view it belongs to.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@micromegas/gateway';
import { serve, type Server } from '../src/serve.js';
import { query } from '../src/demo.js';

const VECTORS = fileURLToPath(new URL('../../../unreal-plugin-protocol/vectors/', import.meta.url));

interface Vector {
  name: string;
  route: string;
  body: string;
  expect: { gateway: { status: number }; decode: string | { error: string } | null };
}
type Json = Record<string, unknown> & { type?: string };
interface Decoded {
  process: { process_id: string };
  stream: { stream_id: string; tags: string[] };
  events: Json[];
}

let server: Server;
const dataDir = mkdtempSync(join(tmpdir(), 'mm-vectors-'));
before(async () => {
  server = await serve(['--listen', '127.0.0.1:0', '--data-dir', dataDir], silentLogger);
});
after(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('every golden vector: the status the manifest expects, then its events in SQL', async () => {
  // No manifest is a failure (readFileSync throws), and so is an empty one.
  const { vectors } = JSON.parse(readFileSync(join(VECTORS, 'manifest.json'), 'utf8')) as { vectors: Vector[] };
  assert.ok(vectors.length > 0, 'manifest.json lists vectors');
  // What SQL must show, per process: log messages, metric names, thread and async span counts.
  interface Want {
    logs: string[];
    metrics: string[];
    cpuStreams: Map<string, number>;
    asyncEvents: number;
  }
  const want = new Map<string, Want>();
  for (const v of vectors) {
    const res = await fetch(`${server.url}/ingestion/${v.route}`, { method: 'POST', body: readFileSync(join(VECTORS, v.body)) });
    assert.equal(res.status, v.expect.gateway.status, `${v.name}: ${await res.text()}`);
    if (v.route !== 'insert_block' || typeof v.expect.decode !== 'string') continue;  // corrupt blocks add no rows
    const d = JSON.parse(readFileSync(join(VECTORS, v.expect.decode), 'utf8')) as Decoded;
    const w: Want = want.get(d.process.process_id) ?? { logs: [], metrics: [], cpuStreams: new Map(), asyncEvents: 0 };
    want.set(d.process.process_id, w);
    const desc = (e: Json) => (e.desc ?? {}) as Json;
    for (const e of d.events) {
      if (d.stream.tags.includes('log')) w.logs.push(String(e.msg ?? desc(e).fmt_str));
      if (d.stream.tags.includes('metrics')) w.metrics.push(String(desc(e).name));
      if (d.stream.tags.includes('cpu')) {
        if (/^BeginThread/.test(e.type!)) w.cpuStreams.set(d.stream.stream_id, (w.cpuStreams.get(d.stream.stream_id) ?? 0) + 1);
        if (/Async/.test(e.type!)) w.asyncEvents += 1;
      }
    }
  }
  assert.ok(want.size >= 4, 'rust, unreal, legacy and edge-case processes');
  const sorted = (xs: unknown[]) => xs.map(String).sort();
  for (const [pid, w] of want) {
    const logs = await query(server.url, `SELECT msg FROM view_instance('log_entries', '${pid}')`);
    assert.deepEqual(sorted(logs.map((r) => r.msg)), sorted(w.logs), `log_entries of ${pid}`);
    const metrics = await query(server.url, `SELECT name FROM view_instance('measures', '${pid}')`);
    assert.deepEqual(sorted(metrics.map((r) => r.name)), sorted(w.metrics), `measures of ${pid}`);
    for (const [stream, spans] of w.cpuStreams) {
      const [row] = await query(server.url, `SELECT count(*) AS n FROM view_instance('thread_spans', '${stream}')`);
      assert.equal(Number(row.n), spans, `thread_spans of ${stream}`);
    }
    const [asyncRow] = await query(server.url, `SELECT count(*) AS n FROM view_instance('async_events', '${pid}')`);
    assert.equal(Number(asyncRow.n), w.asyncEvents, `async_events of ${pid}`);
  }
  const accepted = vectors.filter((v) => v.route === 'insert_process' && typeof v.expect.decode === 'string');
  const ids = accepted.map((v) => (JSON.parse(readFileSync(join(VECTORS, v.expect.decode as string), 'utf8')) as Decoded).process.process_id);
  const processes = await query(server.url, 'SELECT process_id FROM processes');
  assert.deepEqual(sorted(processes.map((r) => r.process_id)), sorted([...new Set(ids)]));
});
