// Request -> Reply for every route. No sockets here: the uWS adapter (and the node:http
// bench peer) call `handle`, and tests call it directly.

import { BadRequest, parseBlock, parseProcess, parseStream } from './envelope.js';
import { Overloaded, refusal, type BlockPacker } from './pack/block-packer.js';
import { StreamOwnedElsewhere } from './store/metadata.js';
import { isDataError } from './store/sql.js';
import { AuthUnavailable, type ApiKeyAuth } from './auth/api-keys.js';
import type { Metadata } from './store/metadata.js';
import type { ObjectStore } from './store/objects.js';
import { labelKey, type Metrics } from './metrics.js';
import type { Logger } from './log.js';

export interface Request {
  method: string; // upper case
  path: string;
  authorization?: string;
  accept?: string;
  body: Buffer;
  /** Aborted when the client disconnects (set for routes other than ingestion): long work stops. */
  signal?: AbortSignal;
}

export interface Reply {
  status: number;
  /** An async iterable streams (chunked), with backpressure: large query results. */
  body?: string | Buffer | AsyncIterable<Buffer>;
  headers?: Record<string, string>;
}

export type Route = 'insert_process' | 'insert_stream' | 'insert_block' | 'health' | 'ready' | 'metrics' | 'other';

const EXACT = new Map<string, Route>([
  ['/ingestion/insert_block', 'insert_block'], ['/ingestion/insert_stream', 'insert_stream'], ['/ingestion/insert_process', 'insert_process'],
]);

/** The upstream ingestion paths: the HTTP adapter serves them as exact POST routes. */
export const INGESTION_PATHS: readonly string[] = [...EXACT.keys()];

/** Upstream paths, plus the Unreal plugin's `{BaseUrl}insert_*` and a doubled slash. */
export function routeOf(path: string): Route {
  const exact = EXACT.get(path);
  if (exact) return exact;
  const p = path.replace(/\/{2,}/g, '/');
  const m = /^(?:\/ingestion)?\/(insert_process|insert_stream|insert_block)$/.exec(p);
  if (m) return m[1] as Route;
  if (p === '/health') return 'health';
  if (p === '/ready') return 'ready';
  if (p === '/metrics') return 'metrics';
  return 'other';
}

export interface HandlerDeps {
  metadata: Metadata;
  objects: ObjectStore;
  packer: BlockPacker;
  auth: ApiKeyAuth | null; // null: auth disabled
  metrics: Metrics;
  log: Logger;
  isDraining: () => boolean;
  /** /metrics body; defaults to this thread's metrics (workers merge all threads). */
  renderMetrics?: () => Promise<string>;
  /** Routes mounted beside ingestion on the same port (the all-in-one server's SQL API), behind the same auth. */
  extra?: (req: Request) => Promise<Reply | null>;
  /** false: the ingestion routes answer 404 (an analytics-only server). */
  ingestion?: boolean;
}

const READY_TIMEOUT_MS = 2000;
const READY_CACHE_MS = 1000;

/** Retry-After with jitter so a fleet of clients does not come back in lockstep. */
const retryAfter = () => ({ 'Retry-After': String(1 + Math.floor(Math.random() * 5)) });

export function createHandler(d: HandlerDeps): (req: Request) => Promise<Reply> {
  let readyUntil = 0;

  async function ready(): Promise<Reply> {
    if (d.isDraining()) return { status: 503, body: 'draining' };
    if (Date.now() < readyUntil) return { status: 200, body: 'ready' };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.all([d.metadata.ping(), d.objects.ping()]),
        new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('timeout after 2 s')), READY_TIMEOUT_MS))),
      ]);
      readyUntil = Date.now() + READY_CACHE_MS;
      return { status: 200, body: 'ready' };
    } catch (e) {
      return { status: 503, body: `not ready: ${oneLine(e)}` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** null when the request may go on, else the refusal. */
  async function authorize(req: Request): Promise<Reply | null> {
    if (!d.auth) return null;
    let who: string | null;
    try {
      who = await d.auth.check(req.authorization);
    } catch (e) {
      if (e instanceof AuthUnavailable) return { status: 503, body: 'auth provider unavailable', headers: retryAfter() };
      d.log.error('unexpected error', { route: 'auth', error: oneLine(e) });
      return { status: 500, body: 'internal error' };
    }
    return who ? null : { status: 401, body: 'invalid token' };
  }

  async function other(req: Request): Promise<Reply> {
    const notFound = { status: 404, body: `no route for ${req.method} ${req.path.slice(0, 200)}` };
    if (!d.extra) return notFound;
    const refused = await authorize(req);
    return refused ?? (await d.extra(req)) ?? notFound;
  }

  /** An ingestion route, metrics recorded. One async frame: a block costs one promise here. */
  async function ingest(route: Route, req: Request, t0: number): Promise<Reply> {
    let reply: Reply = { status: 200 };
    let refused: Reply | null = null;
    try {
      if (req.method !== 'POST') reply = { status: 405, body: 'method not allowed: use POST' };
      else if (d.auth && (refused = await authorize(req))) reply = refused; // no await (microtask hop) when auth is off
      else if (route === 'insert_process') await d.metadata.insertProcess(parseProcess(req.body));
      else if (route === 'insert_stream') await d.metadata.insertStream(parseStream(req.body));
      else {
        const block = parseBlock(req.body);
        const refused = refusal(await d.packer.add(block), block.row.block_id);
        if (refused === undefined) d.metrics.blocks.incKey('');
        else reply = { status: 400, body: `insert_block: ${refused}` };
      }
    } catch (e) {
      if (e instanceof BadRequest) reply = { status: 400, body: e.message };
      else if (e instanceof StreamOwnedElsewhere) reply = { status: 400, body: `${route}: ${e.message}` };
      // A value the column cannot hold that validation did not foresee: the client's fault, not an outage.
      else if (isDataError(e)) reply = { status: 400, body: `${route}: PostgreSQL refused it: ${oneLine(e)}` };
      else if (e instanceof Overloaded) reply = { status: 503, body: 'overloaded: write queue full', headers: retryAfter() };
      else {
        d.log.error('storage write failed', { route, error: oneLine(e) });
        reply = { status: 503, body: 'storage unavailable', headers: retryAfter() };
      }
    }
    record(d.metrics, route, reply.status, req.body.length, t0);
    return reply;
  }

  async function serve(route: Route, req: Request, t0: number): Promise<Reply> {
    let reply: Reply;
    try {
      if (route === 'health') reply = { status: 200, body: 'ok' };
      else if (route === 'ready') reply = await ready();
      else if (route === 'metrics') {
        const body = d.renderMetrics ? await d.renderMetrics() : d.metrics.render();
        reply = { status: 200, body, headers: { 'Content-Type': 'text/plain; version=0.0.4' } };
      }
      else if (route === 'other') reply = await other(req);
      else reply = { status: 404, body: 'ingestion is not served here' };
    } catch (e) {
      d.log.error('unexpected error', { route, error: oneLine(e) });
      reply = { status: 500, body: 'internal error' };
    }
    record(d.metrics, route, reply.status, req.body.length, t0);
    return reply;
  }

  return function handle(req: Request): Promise<Reply> {
    const t0 = performance.now(); // cheaper than hrtime.bigint(), and a duration needs no more
    const route = routeOf(req.path);
    return d.ingestion !== false && INGESTION_ROUTES.has(route) ? ingest(route, req, t0) : serve(route, req, t0);
  };
}

const INGESTION_ROUTES = new Set<Route>(EXACT.values());

// Rendered label keys per route and per (route, status): no string is built per request.
const routeKeys = new Map<Route, { route: string; status: string[] }>();

/** `t0` from performance.now(). */
export function record(m: Metrics, route: Route, status: number, bytes: number, t0: number): void {
  let k = routeKeys.get(route);
  if (!k) routeKeys.set(route, (k = { route: labelKey({ route }), status: [] }));
  const ks = (k.status[status] ??= labelKey({ route, status: String(status) }));
  m.requests.incKey(ks);
  m.bytes.incKey(k.route, bytes);
  if (status >= 400) m.errors.incKey(ks);
  m.duration.observeKey(k.route, (performance.now() - t0) / 1e3);
}

export function oneLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0].slice(0, 300);
}
