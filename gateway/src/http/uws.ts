// The only importer of uWebSockets.js. It turns (res, req) into a plain Request:
// copies the body out of uWS's chunks exactly once (uWS neuters them after the callback),
// enforces the body limit while the body streams in, bounds how long a body may take, and
// never touches a response after onAborted.
//
// Hot path, per request: no string is built (status lines are precomputed), replies are
// written through one module-level corked writer, and the per-request state is one
// object plus the two callbacks uWS requires (onAborted, onData).

import uWS from '@trufflesuite/uws-js-unofficial';
import type { Reply, Request } from '../routes.js';

export interface UwsOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  /**
   * Request bodies held in memory across all connections (declared lengths are reserved up
   * front); a body that would go beyond gets 503 + Retry-After. Held until the reply is sent or
   * the request is aborted or timed out (408).
   */
  maxBufferedBodyBytes?: number;
  /** A body not complete within this time gets 408 (slow-client guard). */
  bodyTimeoutMs: number;
  handle: (req: Request) => Promise<Reply>;
  /**
   * Exact paths registered as POST routes (ingestion): their requests skip reading the method,
   * the URL and the Accept header. Other methods on them reach `handle` like any request.
   */
  postPaths?: readonly string[];
  /** false when auth is off: the Authorization header is not read. */
  readAuthorization?: boolean;
  /** Called for replies produced here (413, 408) so they are counted too. */
  onLocalReply?: (path: string, status: number, bytes: number) => void;
}

export interface UwsServer {
  port: number;
  /** Stops accepting connections, then waits for in-flight requests (up to graceMs). */
  close(graceMs: number): Promise<void>;
  inflight(): number;
  /** Request body bytes held in memory now (reserved or received, not yet answered). */
  bufferedBodyBytes(): number;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 413: 'Payload Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};
// Strings, not Buffers: uWS.js reads a Buffer argument through V8's GetBackingStore, which cost
// more per call than converting a short string (a Buffer header name took ~2.8 samples per 1,000
// requests of a ~60-sample request, a string none worth seeing).
const STATUS_LINE: string[] = [];
for (const code in STATUS_TEXT) STATUS_LINE[Number(code)] = `${code} ${STATUS_TEXT[code]}`;
const statusLine = (s: number) => STATUS_LINE[s] ?? `${s} Status`;
const H_AUTHORIZATION = 'authorization';
const H_ACCEPT = 'accept';
const H_CONTENT_LENGTH = 'content-length';

const EMPTY = Buffer.alloc(0);
const isStream = (b: Reply['body']): b is AsyncIterable<Buffer> => typeof b === 'object' && !Buffer.isBuffer(b);
// getMethod() is lower case; upper-casing it per request went through ICU.
// (Compared, not looked up in an object: a property lookup internalizes the fresh string.)
const upperMethod = (m: string) => (m === 'post' ? 'POST' : m === 'get' ? 'GET' : m === 'head' ? 'HEAD' : m.toUpperCase());
const INTERNAL_ERROR: Reply = { status: 500, body: 'internal error' };

// The corked writer: res.cork runs it synchronously, so these slots never outlive one call
// and no closure is allocated per reply.
let wRes: uWS.HttpResponse | null = null;
let wReply: Reply | null = null;
let wClose = false;
function writeCorked(): void {
  const res = wRes!;
  const r = wReply!;
  if (r.status !== 200) res.writeStatus(statusLine(r.status)); // uWS writes 200 OK by default
  const h = r.headers;
  if (h) for (const k in h) res.writeHeader(k, h[k]);
  res.end((r.body as string | Buffer | undefined) ?? '', wClose);
}
function send(res: uWS.HttpResponse, r: Reply, close: boolean): void {
  wRes = res;
  wReply = r;
  wClose = close;
  try {
    res.cork(writeCorked);
  } finally {
    wRes = null;
    wReply = null;
  }
}

/** One request: its state from the route callback until the reply or the abort. */
class Exchange {
  finished = false;
  dispatched = false;
  received = 0;
  /** Preallocated when Content-Length is declared: every chunk is copied straight in. */
  whole: Buffer | null = null;
  /** Otherwise copies of the chunks; a one-chunk body is used as is, not concatenated. */
  chunks: Buffer[] | null = null;
  deadline = 0;
  /** Body bytes this exchange counts in the server's buffered total (reserved or received). */
  held = 0;
  /** Aborted when the client goes away (routes other than ingestion: a query stops on it). */
  gone: AbortController | null = null;
  /** Links in the server's list of bodies still arriving (O(1) unlink, no rehashing). */
  prev: Exchange | null = null;
  next: Exchange | null = null;

  constructor(
    readonly server: Server,
    readonly res: uWS.HttpResponse,
    readonly method: string,
    readonly path: string,
    readonly authorization: string | undefined,
    readonly accept: string | undefined,
  ) {}

  /** false when the exchange was already finished (replied, aborted or timed out). */
  finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.server.inflight--;
    this.server.unlink(this);
    // The body is released here: a stalled, timed-out or aborted upload holds nothing after.
    this.server.buffered -= this.held;
    this.held = 0;
    this.whole = null;
    this.chunks = null;
    return true;
  }

  reply(r: Reply, close = false): void {
    if (isStream(r.body)) void this.stream(r, r.body);
    else if (this.finish()) send(this.res, r, close);
  }

  /** Writes a streamed body chunk by chunk (chunked encoding), waiting whenever uWS reports
   * backpressure; stops if the client goes away (onAborted finishes the exchange). */
  async stream(r: Reply, body: AsyncIterable<Buffer>): Promise<void> {
    const res = this.res;
    if (this.finished) return;
    res.cork(() => {
      res.writeStatus(statusLine(r.status));
      for (const k in r.headers ?? {}) res.writeHeader(k, r.headers![k]);
    });
    try {
      for await (const chunk of body) {
        if (this.finished) return;
        let ok = true;
        res.cork(() => (ok = res.write(chunk)));
        if (!ok) {
          await new Promise<void>((resume) => res.onWritable(() => (resume(), true)));
          if (this.finished) return;
        }
      }
      if (this.finish()) res.cork(() => res.end());
    } catch {
      if (this.finish()) res.close(); // headers are gone: cutting the response short is the only signal left
    }
  }

  localReply(status: number, body: string, headers?: Record<string, string>): void {
    this.server.o.onLocalReply?.(this.path, status, this.received);
    this.reply({ status, body, headers }, true);
  }

  /** 503: the server holds as many request bodies as it may. */
  bufferFull(): void {
    const o = this.server.o;
    this.localReply(503, `overloaded: request bodies in memory reached the ${o.maxBufferedBodyBytes}-byte cap; retry later`, {
      'Retry-After': String(1 + Math.floor(Math.random() * 5)),
    });
  }

  dispatch(body: Buffer): void {
    this.dispatched = true;
    this.server.unlink(this);
    const { method, path, authorization, accept } = this;
    const signal = this.gone?.signal;
    this.server.o.handle(signal ? { method, path, authorization, accept, body, signal } : { method, path, authorization, accept, body }).then(
      (r) => this.reply(r),
      () => this.reply(INTERNAL_ERROR),
    );
  }

  data(ab: ArrayBuffer, isLast: boolean): void {
    if (this.finished || this.dispatched) return;
    const n = ab.byteLength;
    const max = this.server.o.maxBodyBytes;
    const whole = this.whole;
    if (this.received + n > max || (whole && this.received + n > whole.length)) {
      this.localReply(413, `body exceeds the ${max}-byte limit`);
      return;
    }
    if (whole) {
      whole.set(new Uint8Array(ab), this.received);
      this.received += n;
      if (isLast) this.dispatch(this.received === whole.length ? whole : whole.subarray(0, this.received));
      return;
    }
    if (!this.server.hold(this, n)) {
      this.bufferFull();
      return;
    }
    const copy = Buffer.allocUnsafe(n); // the one copy: uWS reuses the memory after return
    copy.set(new Uint8Array(ab));
    this.received += n;
    if (this.chunks) this.chunks.push(copy);
    else if (!isLast) this.chunks = [copy];
    if (isLast) this.dispatch(this.chunks ? Buffer.concat(this.chunks, this.received) : copy);
  }
}

class Server {
  inflight = 0;
  /** Request body bytes held across all exchanges (see UwsOptions.maxBufferedBodyBytes). */
  buffered = 0;
  private readonly maxBuffered: number;
  /** Date.now() as of the last sweep: body deadlines are set from it (a clock read per request
   * cost more than the rest of the deadline bookkeeping), one sweep interval later to make up. */
  now = Date.now();
  /**
   * Exchanges whose body is still arriving, oldest first (deadlines only grow), as an
   * intrusive list; one sweep replaces a timer per request.
   */
  private head: Exchange | null = null;
  private tail: Exchange | null = null;
  constructor(
    readonly o: UwsOptions,
    readonly sweepMs: number,
  ) {
    this.maxBuffered = o.maxBufferedBodyBytes ?? Infinity;
  }

  /** Counts n more body bytes for `ex`; false (nothing counted) when that would pass the cap. */
  hold(ex: Exchange, n: number): boolean {
    if (this.buffered + n > this.maxBuffered) return false;
    this.buffered += n;
    ex.held += n;
    return true;
  }

  link(ex: Exchange): void {
    ex.prev = this.tail;
    if (this.tail) this.tail.next = ex;
    else this.head = ex;
    this.tail = ex;
  }

  unlink(ex: Exchange): void {
    if (!ex.deadline) return;
    ex.deadline = 0;
    if (ex.prev) ex.prev.next = ex.next;
    else this.head = ex.next;
    if (ex.next) ex.next.prev = ex.prev;
    else this.tail = ex.prev;
    ex.prev = ex.next = null;
  }

  sweep(): void {
    const now = (this.now = Date.now());
    for (let ex = this.head; ex && ex.deadline <= now; ex = this.head) {
      this.unlink(ex);
      ex.localReply(408, `body not received within ${this.o.bodyTimeoutMs} ms`);
    }
  }

  route(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    this.start(res, req, upperMethod(req.getMethod()), req.getUrl(), req.getHeader(H_ACCEPT) || undefined, new AbortController());
  }

  /** Every request, once its method, path and Accept header are known. */
  start(res: uWS.HttpResponse, req: uWS.HttpRequest, method: string, path: string, accept: string | undefined, gone: AbortController | null = null): void {
    const o = this.o;
    const authorization = o.readAuthorization === false ? undefined : req.getHeader(H_AUTHORIZATION) || undefined;
    const ex = new Exchange(this, res, method, path, authorization, accept);
    const declared = req.getHeader(H_CONTENT_LENGTH);
    this.inflight++;
    ex.gone = gone;
    res.onAborted(() => {
      ex.finish();
      ex.gone?.abort(); // also when the reply was streaming: the query behind it stops
    });

    const expected = declared ? Number(declared) : -1;
    if (expected > o.maxBodyBytes) {
      ex.localReply(413, `body of ${declared} bytes exceeds the ${o.maxBodyBytes}-byte limit`);
      return;
    }
    if (ex.method === 'GET' || ex.method === 'HEAD' || expected === 0) {
      ex.dispatch(EMPTY);
      return;
    }
    if (Number.isSafeInteger(expected) && expected >= 0) {
      if (!this.hold(ex, expected)) {
        ex.bufferFull();
        return;
      }
      ex.whole = Buffer.allocUnsafe(expected);
    }
    ex.deadline = this.now + o.bodyTimeoutMs + this.sweepMs;
    this.link(ex);
    res.onData((ab, isLast) => ex.data(ab, isLast));
  }
}

export function listenUws(o: UwsOptions): Promise<UwsServer> {
  const sweepMs = Math.max(10, Math.min(1000, o.bodyTimeoutMs / 4));
  const server = new Server(o, sweepMs);
  const app = uWS.App();
  const sweep = setInterval(() => server.sweep(), sweepMs);
  sweep.unref();
  for (const path of o.postPaths ?? []) app.post(path, (res, req) => server.start(res, req, 'POST', path, undefined));
  app.any('/*', (res, req) => server.route(res, req));

  return new Promise((resolve, reject) => {
    app.listen(o.host, o.port, (socket) => {
      if (!socket) return reject(new Error(`cannot listen on ${o.host}:${o.port}`));
      resolve({
        port: uWS.us_socket_local_port(socket),
        inflight: () => server.inflight,
        bufferedBodyBytes: () => server.buffered,
        async close(graceMs) {
          uWS.us_listen_socket_close(socket);
          clearInterval(sweep);
          const deadline = Date.now() + graceMs;
          while (server.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        },
      });
    });
  });
}
