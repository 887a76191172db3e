// The all-in-one server: ingestion and SQL on one port, plus lakehouse maintenance.
// Embedded default: PGlite and a local object store under --data-dir. The Rust
// analytics engine reaches the same PGlite through a loopback PostgreSQL socket.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { createGateway, loadConfig, openDatabase, jsonLogger, type Reply, type Request } from '@micromegas/gateway';
import { Engine, parseQueryRequest, ARROW_STREAM } from '@micromegas/analytics';

export type Role = 'all' | 'gateway' | 'analytics';
export const ROLES: Role[] = ['all', 'gateway', 'analytics'];

export interface Server {
  url: string;
  close(): Promise<void>;
}

/** SQL over HTTP as a gateway route: POST /api/query (and upstream's /gateway/query). */
export function queryRoute(engine: Engine) {
  return async (req: Request): Promise<Reply | null> => {
    if (req.path !== '/api/query' && req.path !== '/gateway/query') return null;
    if (req.method !== 'POST') return { status: 405, body: JSON.stringify({ error: 'use POST' }) };
    let parsed;
    try {
      parsed = parseQueryRequest(req.body);
    } catch (e) {
      return { status: 400, body: JSON.stringify({ error: (e as Error).message }) };
    }
    const arrow = (req.accept ?? '').includes(ARROW_STREAM);
    try {
      const body = arrow ? await engine.queryIpc(parsed.sql, parsed.options) : await engine.queryJsonBytes(parsed.sql, parsed.options);
      return { status: 200, body, headers: { 'Content-Type': arrow ? ARROW_STREAM : 'application/json' } };
    } catch (e) {
      // The engine's message: planning and SQL errors are the caller's (400), the rest ours.
      const message = (e as Error).message;
      const status = /timeout|memory|internal|object store|postgres/i.test(message) && !/SQL error|Schema error|Plan/i.test(message) ? 500 : 400;
      return { status, body: JSON.stringify({ error: message }), headers: { 'Content-Type': 'application/json' } };
    }
  };
}

export async function serve(argv: string[], log = jsonLogger()): Promise<Server> {
  const roleIndex = argv.indexOf('--role');
  const role = (roleIndex >= 0 ? argv[roleIndex + 1] : process.env.MICROMEGAS_ROLE ?? 'all') as Role;
  if (!ROLES.includes(role)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
  const rest = roleIndex >= 0 ? [...argv.slice(0, roleIndex), ...argv.slice(roleIndex + 2)] : argv;
  const { config } = loadConfig(rest);

  const db = await openDatabase(config);
  let socket: PGLiteSocketServer | null = null;
  let engine: Engine | null = null;
  if (role !== 'gateway') {
    let sqlUrl = config.pgUrl;
    if (!sqlUrl) {
      // PGlite is in this process: serve it on loopback for the Rust engine.
      socket = new PGLiteSocketServer({ db: (db as unknown as { pglite: never }).pglite, host: '127.0.0.1', port: 0, maxConnections: 8 });
      await socket.start();
      sqlUrl = `postgres://postgres@${socket.getServerConn()}/postgres?sslmode=disable`;
    }
    const objectStoreUri = config.objectStoreUri ?? pathToFileURL(join(config.dataDir, 'objects')).href;
    engine = await Engine.open({ sqlConnectionString: sqlUrl, objectStoreUri });
  }
  const gateway = await createGateway(config, { db, log, routes: engine ? queryRoute(engine) : undefined, ingestion: role !== 'analytics' });
  const port = await gateway.listen();
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  return {
    url,
    async close() {
      await socket?.stop();  // before the database it serves closes
      await gateway.close();
    },
  };
}
