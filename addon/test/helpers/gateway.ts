/**
 * The SDK's tests post to a real HTTP receiver: our gateway (@micromegas/gateway), embedded in the
 * test process (PGlite + a local directory object store, as `micromegas-gateway` runs by default),
 * with API-key authentication on.
 * What a child recorded is read back from the gateway's storage (process, stream and block rows,
 * block payload objects) and decoded by helpers/decode.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decode as cborDecode } from 'cbor-x';
import { decodeBlock, type Capture, type Stream, type Udt } from './decode';

type GatewayModule = typeof import('@micromegas/gateway');
type Gateway = import('@micromegas/gateway').Gateway;

// The gateway is an ES module and these tests compile to CommonJS, where TypeScript would turn
// import() into require(): keep a real dynamic import out of its sight.
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** The gateway requires this key (Bearer), as a deployed one would; children get it by default. */
export const TEST_API_KEY = 'addon-tests-' + Math.random().toString(36).slice(2);

interface Running { gw: Gateway; url: string; dataDir: string; mod: GatewayModule }
let running: Promise<Running> | null = null;

/** Starts the embedded gateway once per test file; resolves with its ingestion URL. */
export async function gatewayUrl(): Promise<string> {
  return (await start()).url;
}

function start(): Promise<Running> {
  running ??= (async () => {
    const mod = (await importEsm('@micromegas/gateway')) as GatewayModule;
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-addon-gw-'));
    const config = mod.defaultConfig({
      dataDir, host: '127.0.0.1', port: 0, packMaxDelayMs: 5, apiKeys: [{ name: 'addon-tests', key: TEST_API_KEY }],
    });
    const gw = await mod.createGateway(config, { log: mod.silentLogger });
    const port = await gw.listen();
    return { gw, url: `http://127.0.0.1:${port}`, dataDir, mod };
  })();
  return running;
}

/** Drains and closes the gateway (call from the test file's after hook). */
export async function stopGateway(): Promise<void> {
  if (!running) return;
  const r = await running;
  running = null;
  await r.gw.close();
  fs.rmSync(r.dataDir, { recursive: true, force: true });
}

// Properties are stored as micromegas_property[] (key, value): read them back as one JSON object.
const PROPS = `(SELECT coalesce(json_object_agg((p).key, (p).value), '{}'::json) FROM unnest(properties) p)`;

/**
 * Everything the gateway stored for the process tagged `<key>=<run>` (a process property), as a
 * Capture: the process row, its streams (UDT metadata decoded from the stored CBOR) and the events
 * of every block, in stream order (object_offset). An untagged or absent process gives an empty
 * capture. Only acknowledged (stored) blocks exist, so no waiting is needed once the child is done.
 */
export async function readStored(key: string, run: string): Promise<Capture> {
  const { gw, mod } = await start();
  const db = gw.metadata.db;
  const cap: Capture = { process: undefined, streams: new Map(), events: [], files: [] };
  const procs = await db.query<{ process_id: string; exe: string; properties: Record<string, string> }>(
    `SELECT process_id::text AS process_id, exe, ${PROPS} AS properties FROM processes
     WHERE EXISTS (SELECT 1 FROM unnest(properties) q WHERE (q).key = $1 AND (q).value = $2)`,
    [key, run],
  );
  if (procs.length > 1) throw new Error(`${procs.length} processes tagged ${key}=${run}`);
  if (procs.length === 0) return cap;
  const proc = procs[0];
  cap.process = proc;
  const streams = await db.query<{ stream_id: string; tags: string[]; properties: Record<string, string>; deps: Uint8Array; objs: Uint8Array }>(
    `SELECT stream_id::text AS stream_id, tags, ${PROPS} AS properties, dependencies_metadata AS deps, objects_metadata AS objs
     FROM streams WHERE process_id = $1::uuid`,
    [proc.process_id],
  );
  for (const s of streams) {
    const stream: Stream = {
      stream_id: s.stream_id, tags: s.tags, properties: s.properties,
      dependencies_metadata: cborDecode(s.deps) as Udt[], objects_metadata: cborDecode(s.objs) as Udt[],
    };
    cap.streams.set(s.stream_id, stream);
  }
  const blocks = await db.query<Parameters<GatewayModule['readBlockPayload']>[1]>(
    `SELECT block_id::text, stream_id::text, process_id::text, begin_time::text, begin_ticks::text, end_time::text,
            end_ticks::text, nb_objects, object_offset::text, payload_size::float8 AS payload_size, payload_object,
            payload_offset::float8 AS payload_offset
     FROM blocks WHERE process_id = $1::uuid ORDER BY stream_id, object_offset`,
    [proc.process_id],
  );
  for (const b of blocks) {
    const stream = cap.streams.get(b.stream_id);
    if (!stream) throw new Error(`block ${b.block_id}: stored without its stream`);
    const payload = cborDecode(await mod.readBlockPayload(gw.objects, b)) as Record<string, unknown>;
    decodeBlock(stream, payload, Number(b.nb_objects), `block ${b.block_id}`, cap.events);
    cap.files.push(b.block_id);
  }
  return cap;
}
