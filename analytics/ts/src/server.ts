// SQL over HTTP: `POST /api/query` ({sql, begin, end, limit}) and upstream's `POST /gateway/query`
// ({sql, time_range_begin, time_range_end}). JSON rows by default, an Arrow IPC stream with
// `Accept: application/vnd.apache.arrow.stream`. Bad SQL answers 400 with the engine's message.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Engine, QueryOptions } from './engine.js';
import { exportPerfettoTrace } from './perfetto.js';

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
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0)) {
    throw new HttpError(400, '`limit` must be a non-negative integer');
  }
  return { sql, options: { begin, end, limit: limit as number | undefined } };
}

function statusOf(message: string): number {
  if (/timed out/.test(message)) return 504;
  if (/connecting to PostgreSQL|reading block payload|object store/i.test(message)) return 500;
  return 400;
}

function sendError(res: ServerResponse, status: number, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: message }));
}

export function createQueryHandler(engine: Engine, options: QueryHandlerOptions = {}): QueryHandler {
  return async (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/api/query' && path !== '/gateway/query' && path !== '/api/perfetto') return false;
    try {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      if (options.authorize && !(await options.authorize(req))) throw new HttpError(401, 'unauthorized');
      if (path === '/api/perfetto') {
        // {process_id, begin?, end?} → Chrome JSON trace (opens in the Perfetto UI).
        const body = JSON.parse((await readBody(req)).toString('utf8') || '{}');
        let trace;
        try {
          trace = await exportPerfettoTrace(engine, String(body.process_id ?? ''), { begin: body.begin, end: body.end });
        } catch (e) {
          throw new HttpError(statusOf((e as Error).message), (e as Error).message);
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(trace));
        return true;
      }
      const { sql, options: q } = parseQueryRequest(await readBody(req));
      const wantsArrow = (req.headers.accept ?? '').includes(ARROW_STREAM);
      let bytes: Buffer;
      try {
        bytes = wantsArrow ? await engine.queryIpc(sql, q) : await engine.queryJsonBytes(sql, q);
      } catch (e) {
        const message = (e as Error).message;
        throw new HttpError(statusOf(message), message);
      }
      res.writeHead(200, { 'content-type': wantsArrow ? ARROW_STREAM : 'application/json', 'content-length': bytes.length });
      res.end(bytes);
    } catch (e) {
      if (e instanceof HttpError) sendError(res, e.status, e.message);
      else sendError(res, 500, (e as Error).message);
    }
    return true;
  };
}

/** A standalone query server; `listen(port)` it yourself. Unknown routes answer 404. */
export function createQueryServer(engine: Engine, options: QueryHandlerOptions = {}): http.Server {
  const handle = createQueryHandler(engine, options);
  return http.createServer(async (req, res) => {
    if (!(await handle(req, res))) sendError(res, 404, `no route ${req.method} ${req.url}`);
  });
}
