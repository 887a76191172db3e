// The only importer of uWebSockets.js. It turns (res, req) into a plain Request:
// copies body chunks (uWS neuters them after the callback), enforces the body limit
// while the body streams in, bounds how long a body may take, and never touches a
// response after onAborted.

import uWS from '@trufflesuite/uws-js-unofficial';
import type { Reply, Request } from '../routes.js';

export interface UwsOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  /** A body not complete within this time gets 408 (slow-client guard). */
  bodyTimeoutMs: number;
  handle: (req: Request) => Promise<Reply>;
  /** Called for replies produced here (413, 408) so they are counted too. */
  onLocalReply?: (path: string, status: number, bytes: number) => void;
}

export interface UwsServer {
  port: number;
  /** Stops accepting connections, then waits for in-flight requests (up to graceMs). */
  close(graceMs: number): Promise<void>;
  inflight(): number;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 413: 'Payload Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

const isStream = (b: Reply['body']): b is AsyncIterable<Buffer> => typeof b === 'object' && !Buffer.isBuffer(b);

/** Writes a streamed body chunk by chunk (chunked encoding), waiting whenever uWS reports
 * backpressure; stops if the client goes away. `finish` ends the request's accounting. */
async function streamReply(res: uWS.HttpResponse, r: Reply, aborted: () => boolean, finish: () => boolean) {
  if (aborted()) return;
  res.cork(() => {
    res.writeStatus(`${r.status} ${STATUS_TEXT[r.status] ?? 'Status'}`);
    for (const [k, v] of Object.entries(r.headers ?? {})) res.writeHeader(k, v);
  });
  try {
    for await (const chunk of r.body as AsyncIterable<Buffer>) {
      if (aborted()) return;
      let ok = true;
      res.cork(() => (ok = res.write(chunk)));
      if (!ok) {
        await new Promise<void>((resume) => res.onWritable(() => (resume(), true)));
        if (aborted()) return;
      }
    }
    if (finish()) res.cork(() => res.end());
  } catch {
    if (finish()) res.close();  // headers are gone: cutting the response short is the only signal left
  }
}

export function listenUws(o: UwsOptions): Promise<UwsServer> {
  let inflight = 0;
  const app = uWS.App();
  // Bodies still arriving, with their deadline; one sweep replaces a timer per request.
  const pending = new Map<() => void, number>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [expire, deadline] of pending) if (deadline <= now) expire();
  }, Math.max(10, Math.min(1000, o.bodyTimeoutMs / 4)));
  sweep.unref();

  app.any('/*', (res, req) => {
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const authorization = req.getHeader('authorization') || undefined;
    const accept = req.getHeader('accept') || undefined;
    const declared = req.getHeader('content-length');
    let finished = false;
    inflight++;

    const finish = () => {
      if (finished) return false;
      finished = true;
      inflight--;
      pending.delete(expire);
      return true;
    };
    const expire = () => localReply(408, `body not received within ${o.bodyTimeoutMs} ms`, received);
    res.onAborted(() => finish());

    const reply = (r: Reply, close = false) => {
      if (isStream(r.body)) return void streamReply(res, r, () => finished, finish);
      if (!finish()) return;
      res.cork(() => {
        res.writeStatus(`${r.status} ${STATUS_TEXT[r.status] ?? 'Status'}`);
        for (const [k, v] of Object.entries(r.headers ?? {})) res.writeHeader(k, v);
        res.end((r.body as string | Buffer | undefined) ?? '', close);
      });
    };
    const localReply = (status: number, body: string, received: number) => {
      o.onLocalReply?.(path, status, received);
      reply({ status, body }, true);
    };

    if (declared && Number(declared) > o.maxBodyBytes) {
      localReply(413, `body of ${declared} bytes exceeds the ${o.maxBodyBytes}-byte limit`, 0);
      return;
    }

    let dispatched = false;
    const dispatch = (body: Buffer) => {
      dispatched = true;
      pending.delete(expire);
      o.handle({ method, path, authorization, accept, body }).then(
        (r) => reply(r),
        () => reply({ status: 500, body: 'internal error' }),
      );
    };

    if (method === 'GET' || method === 'HEAD' || declared === '0') {
      dispatch(Buffer.alloc(0));
      return;
    }

    // Preallocate when the length is declared; otherwise collect copies.
    const expected = declared ? Number(declared) : -1;
    const whole = expected >= 0 ? Buffer.allocUnsafe(expected) : null;
    const chunks: Buffer[] = [];
    let received = 0;
    pending.set(expire, Date.now() + o.bodyTimeoutMs);

    res.onData((ab, isLast) => {
      if (finished || dispatched) return;
      const chunk = new Uint8Array(ab);
      if (received + chunk.length > o.maxBodyBytes || (whole && received + chunk.length > whole.length)) {
        localReply(413, `body exceeds the ${o.maxBodyBytes}-byte limit`, received);
        return;
      }
      if (whole) whole.set(chunk, received);
      else chunks.push(Buffer.from(chunk)); // copy: uWS reuses the memory after return
      received += chunk.length;
      if (isLast) dispatch(whole ? whole.subarray(0, received) : Buffer.concat(chunks));
    });
  });

  return new Promise((resolve, reject) => {
    app.listen(o.host, o.port, (socket) => {
      if (!socket) return reject(new Error(`cannot listen on ${o.host}:${o.port}`));
      resolve({
        port: uWS.us_socket_local_port(socket),
        inflight: () => inflight,
        async close(graceMs) {
          uWS.us_listen_socket_close(socket);
          clearInterval(sweep);
          const deadline = Date.now() + graceMs;
          while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        },
      });
    });
  });
}
