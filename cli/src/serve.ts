// The all-in-one server: ingestion, SQL and lakehouse maintenance on one port.
// Embedded default: PGlite and a local object store under --data-dir. The Rust
// analytics engine reaches the same PGlite through a PostgreSQL Unix socket only this
// user can open.
// Roles split the work for production (gateway, analytics, maintenance) against a real
// PostgreSQL and object store.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { authEnabled, checkOpenDoor, createGateway, loadConfig, openDatabase, jsonLogger, type Logger, type Option, type Reply, type Request } from '@micromegas/gateway';
import { Engine, answerQuery, isQueryRoute, startMaintenance, type MaintenanceLoop, type MaintenanceOptions } from '@micromegas/analytics';

export type Role = 'all' | 'gateway' | 'analytics' | 'maintenance';
export const ROLES: Role[] = ['all', 'gateway', 'analytics', 'maintenance'];

/** `serve` options beyond the gateway's. */
export const SERVE_OPTIONS: Option[] = [
  { flag: 'role', env: 'MICROMEGAS_ROLE', def: 'all', help: `what this process does: ${ROLES.join('|')} (all = ingestion + SQL + maintenance)` },
  { flag: 'query-timeout-seconds', env: 'MICROMEGAS_QUERY_TIMEOUT_SECONDS', def: '300', help: 'a query running longer answers 504' },
  { flag: 'query-memory-mb', env: 'MICROMEGAS_QUERY_MEMORY_MB', def: '4096', help: 'memory one query may hold for sorts, joins and aggregates (507 above)' },
  { flag: 'max-concurrent-queries', env: 'MICROMEGAS_MAX_CONCURRENT_QUERIES', help: 'queries running at once (default: twice the cores); 16 more wait, beyond that 503' },
  { flag: 'maintenance-interval-seconds', env: 'MICROMEGAS_MAINTENANCE_INTERVAL_SECONDS', def: '60', help: 'how often maintenance runs (roles all, maintenance)' },
  { flag: 'materialize-hours', env: 'MICROMEGAS_MATERIALIZE_HOURS', def: '3', help: 'completed hours of global log_entries/measures partitions kept materialized' },
  { flag: 'retention-days', env: 'MICROMEGAS_RETENTION_DAYS', def: '90', help: 'blocks and partitions older than this are deleted; 0 keeps everything' },
  { flag: 'tail-sampling-hours', env: 'MICROMEGAS_TAIL_SAMPLING_HOURS', help: 'cpu blocks older than this are deleted unless their process is kept (unset: off)' },
  { flag: 'tail-sampling-keep-sql', env: 'MICROMEGAS_TAIL_SAMPLING_KEEP_SQL', help: 'SQL returning process_id of processes whose cpu streams are kept (default: logged an error or fatal)' },
  { flag: 'tail-sampling-window-hours', env: 'MICROMEGAS_TAIL_SAMPLING_WINDOW_HOURS', def: '1', help: 'time range the keep query looks at, ending now' },
];

export interface Server {
  url: string;
  /** The directory of the embedded PostgreSQL's Unix socket (libpq's `host`), when this process serves one. */
  sqlSocketDir?: string;
  close(): Promise<void>;
}

/**
 * Serves PGlite to the Rust engine on a Unix socket, never a TCP port: PGlite checks no
 * password, so the file system is the lock. The socket lives in a fresh 0700 directory
 * (mkdtemp) and is itself 0600, so only this user's processes can connect. The directory
 * is under the temp dir, not --data-dir, because a socket path must fit in 107 bytes.
 */
async function servePglite(pglite: never): Promise<{ server: PGLiteSocketServer; dir: string; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'micromegas-pglite-'));
  try {
    // libpq's name for the socket of port 5432, so `host=<dir>` finds it.
    const path = join(dir, '.s.PGSQL.5432');
    const server = new PGLiteSocketServer({ db: pglite, path, maxConnections: 8 });
    await server.start();
    chmodSync(path, 0o600);
    return { server, dir, url: `postgres://postgres@${encodeURIComponent(dir)}/postgres?sslmode=disable` };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** SQL over HTTP (`/api/query`, upstream's `/gateway/query`, `/api/perfetto`) as a gateway route. */
export function queryRoute(engine: Engine) {
  return async (req: Request): Promise<Reply | null> => (isQueryRoute(req.path) ? answerQuery(engine, req) : null);
}

/** A non-negative number flag (hours, days, seconds, MiB…), or undefined when unset. */
function number(get: (flag: string) => string | undefined, flag: string): number | undefined {
  const v = get(flag);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a non-negative number`);
  return n;
}

/** Maintenance options from the flags: materialization always, retention unless 0 days. */
function maintenanceOptions(get: (flag: string) => string | undefined): MaintenanceOptions & { intervalMs: number } {
  const days = number(get, 'retention-days') ?? 0;
  const tail = number(get, 'tail-sampling-hours');
  return {
    intervalMs: (number(get, 'maintenance-interval-seconds') ?? 60) * 1000,
    lookbackHours: number(get, 'materialize-hours') ?? 3,
    retention:
      days > 0 || tail !== undefined
        ? {
            maxAgeSeconds: days > 0 ? days * 86400 : Number.MAX_SAFE_INTEGER / 1000,
            cpuMaxAgeSeconds: tail === undefined ? undefined : tail * 3600,
            keepProcessesSql: get('tail-sampling-keep-sql') || undefined,
            windowSeconds: (number(get, 'tail-sampling-window-hours') ?? 1) * 3600,
          }
        : undefined,
  };
}

export async function serve(argv: string[], log: Logger = jsonLogger()): Promise<Server> {
  const { config, get } = loadConfig(argv, process.env, SERVE_OPTIONS);
  const role = get('role') as Role;
  if (!ROLES.includes(role)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
  const maintenance = role === 'all' || role === 'maintenance' ? maintenanceOptions(get) : undefined;
  checkOpenDoor(config, authEnabled(config)); // before the database and its socket open

  const db = await openDatabase(config);
  let socket: Awaited<ReturnType<typeof servePglite>> | null = null;
  let engine: Engine | null = null;
  if (role !== 'gateway') {
    let sqlUrl = config.pgUrl;
    if (!sqlUrl) {
      // PGlite is in this process: the Rust engine reaches it through a private Unix socket.
      socket = await servePglite((db as unknown as { pglite: never }).pglite);
      sqlUrl = socket.url;
    }
    const objectStoreUri = config.objectStoreUri ?? pathToFileURL(join(config.dataDir, 'objects')).href;
    engine = await Engine.open({
      sqlConnectionString: sqlUrl,
      objectStoreUri,
      queryTimeoutMs: Math.round((number(get, 'query-timeout-seconds') ?? 300) * 1000),
      memoryLimitMb: number(get, 'query-memory-mb') ?? 4096,
      maxConcurrentQueries: number(get, 'max-concurrent-queries'),
    });
  }
  const gateway = await createGateway(config, {
    db,
    log,
    routes: engine && role !== 'maintenance' ? queryRoute(engine) : undefined,
    ingestion: role === 'all' || role === 'gateway',
  });
  const port = await gateway.listen();
  let loop: MaintenanceLoop | undefined;
  if (engine && maintenance) {
    loop = startMaintenance(engine, maintenance, (pass) => {
      if (pass instanceof Error) log.error('maintenance failed', { error: pass.message });
      else log.info('maintenance', { ms: pass.ms, ...pass.views, ...(pass.retention ? { retention: pass.retention } : {}) });
    });
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  return {
    url,
    sqlSocketDir: socket?.dir,
    async close() {
      // One shutdown budget for the whole drain: what the gateway leaves of it goes to the partitions.
      const deadline = Date.now() + config.shutdownDelayMs + config.shutdownGraceMs;
      await loop?.stop();
      // In-flight queries finish first (the gateway drains them), then the partitions they
      // started writing; the PGlite socket stops last, before the database it serves closes.
      await gateway.close(async () => {
        if (engine) await settleWithin(engine.idle(), Math.max(0, deadline - Date.now()), () => log.error('partition writes still running at shutdown', { graceMs: config.shutdownGraceMs }));
        if (socket) {
          await socket.server.stop();
          rmSync(socket.dir, { recursive: true, force: true });
        }
      });
    },
  };
}

/** Waits for `p`, at most `ms`; `late` runs when the wait gave up. */
async function settleWithin(p: Promise<unknown>, ms: number, late: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
  try {
    if (await Promise.race([p.then(() => false, () => false), expired])) late(); // a failed write is logged where it fails
  } finally {
    clearTimeout(timer);
  }
}
