// A server with the gateway's decode and storage stubbed in-process, on uWS (our adapter)
// or on node:http (the peer). Both call the same handler, so only the HTTP layer differs.
// Usage: node stub-server.js <uws|node> <port> [no-decode|bare|bare-decode]
// no-decode: every request gets 200 without being looked at (the HTTP layers' own cost).
// bare (uws only): uWS.js with no adapter, the body read and a 200 sent after one resolved
// promise, as any server that acknowledges after an async write must: what uWS.js itself costs.
// bare-decode (uws only): the same, the body going through the same handler (decode included):
// the most any adapter on uWS.js can reach with this decode.

import http from 'node:http';
import uWS from '@trufflesuite/uws-js-unofficial';
import { createHandler, INGESTION_PATHS, type Reply, type Request } from '../src/routes.js';
import { listenUws } from '../src/http/uws.js';
import { Metrics } from '../src/metrics.js';
import { silentLogger } from '../src/log.js';
import type { BlockPacker } from '../src/pack/block-packer.js';
import type { Metadata } from '../src/store/metadata.js';
import type { ObjectStore } from '../src/store/objects.js';

const [kind, portArg, mode] = process.argv.slice(2);
const MAX = 100 * 1024 * 1024;
const OK: Reply = { status: 200 };
const handle = mode === 'no-decode' ? async () => OK : createHandler({
  metadata: { ping: async () => {} } as unknown as Metadata,
  objects: { ping: async () => {} } as unknown as ObjectStore,
  packer: { add: async () => null } as unknown as BlockPacker,
  auth: null,
  metrics: new Metrics(),
  log: silentLogger,
  isDraining: () => false,
});

/** uWS.js with no adapter: `post` serves the ingestion route, plus the health check the bench polls. */
function listenBare(post: (res: uWS.HttpResponse) => void): void {
  const app = uWS.App();
  app.post('/ingestion/insert_block', post);
  app.get('/health', (res) => void res.end('ok'));
  app.listen('127.0.0.1', Number(portArg), (s) => {
    process.stdout.write(`ready ${s ? uWS.us_socket_local_port(s) : 'failed'}\n`);
  });
}

if (kind === 'uws' && mode === 'bare') {
  listenBare((res) => {
    res.onAborted(() => {});
    res.onData((_, last) => {
      if (last) void Promise.resolve().then(() => res.cork(() => res.end('')));
    });
  });
} else if (kind === 'uws' && mode === 'bare-decode') {
  // Nothing our adapter adds (limits, deadlines, header reads, metrics of local replies).
  listenBare((res) => {
    let aborted = false;
    let chunks: Buffer[] = [];
    res.onAborted(() => (aborted = true));
    res.onData((ab, last) => {
      chunks.push(Buffer.from(new Uint8Array(ab))); // a copy: uWS reuses the memory
      if (!last) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      chunks = [];
      void handle({ method: 'POST', path: '/ingestion/insert_block', body }).then((r) => {
        if (!aborted) res.cork(() => (r.status === 200 ? res : res.writeStatus(String(r.status))).end((r.body as string | undefined) ?? ''));
      });
    });
  });
} else if (kind === 'uws') {
  const s = await listenUws({ host: '127.0.0.1', port: Number(portArg), maxBodyBytes: MAX, bodyTimeoutMs: 60000, handle,
    postPaths: INGESTION_PATHS, readAuthorization: false }); // as the gateway runs with auth off
  process.stdout.write(`ready ${s.port}\n`);
} else {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const r: Request = { method: req.method!, path: req.url!, authorization: req.headers.authorization, body: Buffer.concat(chunks) };
      handle(r).then((reply) => {
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body ?? '');
      });
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write(`ready ${(server.address() as { port: number }).port}\n`));
}
