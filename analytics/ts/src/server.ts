// SQL over HTTP: `POST /api/query` ({sql, begin, end, limit}) and upstream's `POST /gateway/query`
// ({sql, time_range_begin, time_range_end}). JSON rows by default, an Arrow IPC stream with
// `Accept: application/vnd.apache.arrow.stream`. Engine errors carry a kind (QueryError) that
// `statusOf` turns into the status: 400 bad or refused SQL, 504 timeout, 507 memory, 503 busy.
// A client that goes away cancels its query. `POST /api/perfetto` exports a process's spans as a
// Perfetto trace.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { QueryError, type Engine, type QueryErrorKind, type QueryOptions } from './engine.js';
import { exportPerfetto, type TraceFormat } from './perfetto.js';

export const ARROW_STREAM = 'application/vnd.apache.arrow.stream';
const MAX_BODY = 1024 * 1024;

export interface QueryHandlerOptions {
  /** The gateway's auth check; return false to answer 401. Default: everyone may query. */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
}

/** Request handler: answers the two query routes and returns true, else returns false untouched,
 * so the gateway can mount it on its own port before its other routes. */
export type QueryHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses either request shape into SQL plus options. */
export function parseQueryRequest(body: Buffer): { sql: string; options: QueryOptions } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `request body is not JSON: ${(e as Error).message}`);
  }
  const sql = json.sql;
  if (typeof sql !== 'string' || sql.trim() === '') throw new HttpError(400, '`sql` must be a non-empty string');
  const text = (k: string) => (typeof json[k] === 'string' && json[k] !== '' ? (json[k] as string) : undefined);
  const begin = text('begin') ?? text('time_range_begin');
  const end = text('end') ?? text('time_range_end');
  if ((begin === undefined) !== (end === undefined)) throw new HttpError(400, 'give both begin and end, or neither');
  const limit = json.limit;
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)) {
    throw new HttpError(400, `\`limit\` must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
  }
  return { sql, options: { begin, end, limit: limit as number | undefined } };
}

/** The one place an engine error becomes an HTTP status. */
const STATUS_OF_KIND: Record<QueryErrorKind, number> = {
  invalid_sql: 400,
  timeout: 504,
  resources_exhausted: 507, // over the query memory limit
  overloaded: 503,
  cancelled: 499, // the client closed the request: nobody reads this answer
  internal: 500,
};

/** Engine errors by kind; other errors of the query path (perfetto's checks, times) are the caller's. */
function statusOf(e: unknown): number {
  return e instanceof QueryError ? STATUS_OF_KIND[e.kind] : 400;
}

/** A request as any HTTP framework sees it (node:http here, uWebSockets.js in the gateway). */
export interface QueryRequest {
  method: string;
  path: string;
  body: Buffer;
  accept?: string;
  /** Aborted when the client goes away: the query stops (the gateway aborts it on uWS onAborted). */
  signal?: AbortSignal;
}

export interface QueryReply {
  status: number;
  headers: Record<string, string>;
  /** Query results stream: their first chunk is already computed, so the status is final. */
  body: Buffer | AsyncIterable<Buffer>;
}

const JSON_TYPE = 'application/json';
const reply = (status: number, body: Buffer, type = JSON_TYPE): QueryReply => ({ status, headers: { 'content-type': type }, body });
const errorReply = (status: number, message: string) => reply(status, Buffer.from(JSON.stringify({ error: message })));

/** Whether `path` is one of the routes `answerQuery` serves. */
export function isQueryRoute(path: string): boolean {
  return path === '/api/query' || path === '/gateway/query' || path === '/api/perfetto';
}

/** Answers `POST /api/query`, `/gateway/query` and `/api/perfetto` ({process_id, begin?, end?,
 * format?: "pftrace"|"json"}); engine errors become 400 (the caller's SQL) or 5xx (ours). */
export async function answerQuery(engine: Engine, req: QueryRequest): Promise<QueryReply> {
  try {
    if (req.method !== 'POST') throw new HttpError(405, 'use POST');
    if (req.path === '/api/perfetto') {
      const { processId, format, options } = parsePerfettoRequest(req.body);
      const body = await run(() => exportPerfetto(engine, processId, { ...options, format }));
      return reply(200, body, format === 'json' ? JSON_TYPE : 'application/octet-stream');
    }
    const { sql, options } = parseQueryRequest(req.body);
    const arrow = (req.accept ?? '').includes(ARROW_STREAM);
    const body = await startStream(() => engine.queryStream(sql, options, arrow ? 'arrow' : 'json', req.signal));
    return { status: 200, headers: { 'content-type': arrow ? ARROW_STREAM : JSON_TYPE }, body };
  } catch (e) {
    return e instanceof HttpError ? errorReply(e.status, e.message) : errorReply(500, (e as Error).message);
  }
}

/** Starts a result stream and computes its first chunk, so that SQL and execution errors found
 * there still get a 4xx/5xx status; later errors can only cut the stream short. */
async function startStream(open: () => Promise<AsyncIterable<Buffer>>): Promise<AsyncIterable<Buffer>> {
  const { it, first } = await run(async () => {
    const it = (await open())[Symbol.asyncIterator]();
    return { it, first: await it.next() };
  });
  return {
    async *[Symbol.asyncIterator]() {
      try {
        if (first.done) return;
        yield first.value;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      } finally {
        await it.return?.(); // stops the query when the reader stops early
      }
    },
  };
}

/** Runs engine work; its errors become HttpErrors with the status their message calls for. */
async function run<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new HttpError(statusOf(e), (e as Error).message);
  }
}

function parsePerfettoRequest(body: Buffer): { processId: string; format: TraceFormat; options: QueryOptions } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString('utf8') || '{}');
  } catch (e) {
    throw new HttpError(400, `request body is not JSON: ${(e as Error).message}`);
  }
  const format = json.format ?? 'pftrace';
  if (format !== 'pftrace' && format !== 'json') throw new HttpError(400, '`format` must be "pftrace" or "json"');
  const text = (k: string) => (typeof json[k] === 'string' && json[k] !== '' ? (json[k] as string) : undefined);
  return { processId: String(json.process_id ?? ''), format, options: { begin: text('begin'), end: text('end') } };
}

export function createQueryHandler(engine: Engine, options: QueryHandlerOptions = {}): QueryHandler {
  return async (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (!isQueryRoute(path)) return false;
    // The client closing before the answer is complete stops its query.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    let r: QueryReply;
    try {
      if (options.authorize && !(await options.authorize(req))) throw new HttpError(401, 'unauthorized');
      r = await answerQuery(engine, { method: req.method ?? 'GET', path, body: await readBody(req), accept: req.headers.accept, signal: gone.signal });
    } catch (e) {
      r = e instanceof HttpError ? errorReply(e.status, e.message) : errorReply(500, (e as Error).message);
    }
    if (gone.signal.aborted) return true;
    if (Buffer.isBuffer(r.body)) {
      res.writeHead(r.status, { ...r.headers, 'content-length': r.body.length });
      res.end(r.body);
      return true;
    }
    res.writeHead(r.status, r.headers);
    try {
      for await (const chunk of r.body) if (!res.write(chunk)) await once(res, 'drain', { signal: gone.signal });
      res.end();
    } catch (e) {
      res.destroy(e as Error);  // headers are gone: cutting the response short is the only signal left
    }
    return true;
  };
}

/** A standalone query server; `listen(port)` it yourself. Unknown routes answer 404. */
export function createQueryServer(engine: Engine, options: QueryHandlerOptions = {}): http.Server {
  const handle = createQueryHandler(engine, options);
  return http.createServer(async (req, res) => {
    if (await handle(req, res)) return;
    res.writeHead(404, { 'content-type': JSON_TYPE });
    res.end(JSON.stringify({ error: `no route ${req.method} ${req.url}` }));
  });
}
