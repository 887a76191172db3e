// Wires storage, packer, auth and routes into one gateway instance for one thread.

import { checkOpenDoor, type GatewayConfig } from './config.js';
import { createHandler, INGESTION_PATHS, oneLine, record, routeOf, type Reply, type Request } from './routes.js';
import { listenUws, type UwsServer } from './http/uws.js';
import { BlockPacker } from './pack/block-packer.js';
import { Metadata } from './store/metadata.js';
import type { ObjectStore } from './store/objects.js';
import type { SqlClient } from './store/sql.js';
import { ApiKeyAuth } from './auth/api-keys.js';
import { Metrics } from './metrics.js';
import { jsonLogger, type Logger } from './log.js';
import { openDatabase, openObjectStore } from './storage.js';

export interface Gateway {
  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number>;
  /**
   * Drains: stop accepting, finish in-flight requests, flush packs, run `beforeStorageCloses`
   * (what else still uses the database: the all-in-one server's engine), close storage.
   */
  close(beforeStorageCloses?: () => Promise<void>): Promise<void>;
  handle(req: Request): Promise<Reply>;
  readonly metadata: Metadata;
  readonly objects: ObjectStore;
  readonly packer: BlockPacker;
  readonly metrics: Metrics;
}

export interface GatewayDeps {
  log?: Logger;
  /** Injected stores (tests, benchmarks); otherwise opened from config. */
  db?: SqlClient;
  objects?: ObjectStore;
  /** Overrides /metrics (worker threads return the merge of every thread). */
  renderMetrics?: () => Promise<string>;
  /** Extra routes on the same port, behind the same auth (see HandlerDeps.extra). */
  routes?: (req: Request) => Promise<Reply | null>;
  /** false: serve no ingestion routes. */
  ingestion?: boolean;
}

/** Whether this configuration checks credentials (the embedded default without keys does not). */
export function authEnabled(config: GatewayConfig): boolean {
  const embedded = !config.pgUrl;
  return !config.disableAuth && !(embedded && config.apiKeys.length === 0);
}

export async function createGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  checkOpenDoor(config, authEnabled(config)); // before any storage is opened
  const log = deps.log ?? jsonLogger();
  const objects = deps.objects ?? openObjectStore(config);
  const db = deps.db ?? (await openDatabase(config));
  const metadata = new Metadata(db);
  const metrics = new Metrics();
  const packer = new BlockPacker(
    {
      maxBytes: config.packMaxBytes,
      maxDelayMs: config.packMaxDelayMs,
      maxQueueBytes: config.maxQueueBytes,
      maxConcurrentFlushes: config.flushConcurrency,
    },
    objects,
    metadata,
  );
  packer.onStorageLatency = (kind, s) => metrics.storage.observe({ kind }, s);

  const embedded = !config.pgUrl;
  const authOn = authEnabled(config);
  const auth = authOn ? new ApiKeyAuth(config.apiKeys, embedded ? null : db) : null;
  if (!authOn) log.info('auth disabled', { reason: config.disableAuth ? '--disable-auth' : 'embedded default' });
  else if (config.oidcConfig) {
    log.error('MICROMEGAS_OIDC_CONFIG is set but this gateway validates API keys only: OIDC bearer tokens get 401', {});
  }

  let draining = false;
  let server: UwsServer | null = null;
  const handle = createHandler({
    metadata, objects, packer, auth, metrics, log, isDraining: () => draining, renderMetrics: deps.renderMetrics,
    extra: deps.routes, ingestion: deps.ingestion,
  });
  metrics.gauges = () => ({
    gateway_write_queue_bytes: packer.stats.queueBytes,
    gateway_inflight_requests: server?.inflight() ?? 0,
    gateway_buffered_body_bytes: server?.bufferedBodyBytes() ?? 0,
    gateway_objects_written_total: objects.writes,
    gateway_block_insert_statements_total: metadata.blockInserts,
  });

  return {
    metadata,
    objects,
    packer,
    metrics,
    handle,
    async listen() {
      server = await listenUws({
        host: config.host,
        port: config.port,
        maxBodyBytes: config.maxBodyBytes,
        maxBufferedBodyBytes: config.maxBufferedBodyBytes,
        bodyTimeoutMs: config.bodyTimeoutMs,
        handle,
        postPaths: INGESTION_PATHS,
        readAuthorization: auth !== null,
        onLocalReply: (path, status, bytes) => record(metrics, routeOf(path), status, bytes, performance.now()),
      });
      log.info('listening', { host: config.host, port: server.port, storage: embedded ? 'embedded' : 'postgresql' });
      return server.port;
    },
    async close(beforeStorageCloses) {
      draining = true;
      const t0 = Date.now();
      if (config.shutdownDelayMs) await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
      await server?.close(config.shutdownGraceMs);
      await packer.drain();
      await beforeStorageCloses?.().catch((e) => log.error('shutdown step failed', { error: oneLine(e) }));
      await db.close().catch(() => {});
      await objects.close();
      const late = (server?.inflight() ?? 0) > 0;
      log.info(late ? 'grace period elapsed' : 'drain completed', { ms: Date.now() - t0 });
    },
  };
}
