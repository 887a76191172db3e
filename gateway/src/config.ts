// Gateway configuration from flags and environment variables (flags win).

import { parseEnvKeys, type EnvKey } from './auth/api-keys.js';

export interface GatewayConfig {
  host: string;
  port: number;
  /** Embedded default lives here: <dataDir>/pglite and <dataDir>/objects. */
  dataDir: string;
  /** PostgreSQL connection string; unset means embedded PGlite. */
  pgUrl?: string;
  /** file:///path or s3://bucket/prefix; unset means <dataDir>/objects. */
  objectStoreUri?: string;
  maxBodyBytes: number;
  /** Request bodies held in memory across all connections; above, new bodies get 503. */
  maxBufferedBodyBytes: number;
  bodyTimeoutMs: number;
  packMaxBytes: number;
  packMaxDelayMs: number;
  maxQueueBytes: number;
  flushConcurrency: number;
  workers: number;
  disableAuth: boolean;
  /** Allows serving without auth on a non-loopback address (refused otherwise). */
  insecureNoAuth: boolean;
  apiKeys: EnvKey[];
  /** MICROMEGAS_OIDC_CONFIG as given: upstream's OIDC provider. Not supported here; kept to warn. */
  oidcConfig?: string;
  shutdownGraceMs: number;
  /** On SIGTERM, report not-ready but keep serving this long (load-balancer deregistration). */
  shutdownDelayMs: number;
  pgPoolSize: number;
}

/** A flag with its env variable and default; other commands built on the gateway add their own. */
export interface Option {
  flag: string;
  env?: string;
  help: string;
  def?: string;
  bool?: boolean;
}

export const OPTIONS: Option[] = [
  { flag: 'listen', env: 'MICROMEGAS_GATEWAY_LISTEN', def: '127.0.0.1:9000', help: 'host:port to listen on' },
  { flag: 'port', help: "port to listen on, on 127.0.0.1 (or on --listen's host; an explicit --listen host:port wins)" },
  { flag: 'data-dir', env: 'MICROMEGAS_DATA_DIR', def: './data', help: 'embedded default: PGlite database and objects live here' },
  { flag: 'pg-url', env: 'MICROMEGAS_SQL_CONNECTION_STRING', help: 'PostgreSQL connection string (unset: embedded PGlite)' },
  { flag: 'object-store', env: 'MICROMEGAS_OBJECT_STORE_URI', help: 'file:///dir or s3://bucket/prefix (unset: <data-dir>/objects); S3 uses AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY' },
  { flag: 'max-body-bytes', env: 'MICROMEGAS_GATEWAY_MAX_BODY_BYTES', def: String(100 * 1024 * 1024), help: 'largest accepted request body (413 above)' },
  { flag: 'max-buffered-body-bytes', env: 'MICROMEGAS_GATEWAY_MAX_BUFFERED_BODY_BYTES', def: String(256 * 1024 * 1024), help: 'request bodies held in memory across all connections; above, new bodies get 503 + Retry-After' },
  { flag: 'body-timeout-ms', env: 'MICROMEGAS_GATEWAY_BODY_TIMEOUT_MS', def: '60000', help: 'a body must arrive within this time (408 otherwise)' },
  { flag: 'pack-max-bytes', env: 'MICROMEGAS_GATEWAY_PACK_MAX_BYTES', def: String(8 * 1024 * 1024), help: 'flush a pack object at this size; 0 = one object per block at blobs/<process>/<stream>/<block>' },
  { flag: 'pack-max-delay-ms', env: 'MICROMEGAS_GATEWAY_PACK_MAX_DELAY_MS', def: '100', help: 'flush a pack at most this long after its first block' },
  { flag: 'max-queue-bytes', env: 'MICROMEGAS_GATEWAY_MAX_QUEUE_BYTES', def: String(256 * 1024 * 1024), help: 'payload bytes accepted but not yet durable; above: 503 + Retry-After' },
  { flag: 'flush-concurrency', env: 'MICROMEGAS_GATEWAY_FLUSH_CONCURRENCY', def: '4', help: 'pack writes in flight per worker' },
  { flag: 'workers', env: 'MICROMEGAS_GATEWAY_WORKERS', def: '1', help: "worker threads sharing the port ('auto' = one per core; PGlite forces 1)" },
  { flag: 'pg-pool-size', env: 'MICROMEGAS_GATEWAY_PG_POOL_SIZE', def: '8', help: 'PostgreSQL connections per worker' },
  { flag: 'shutdown-grace-seconds', env: 'MICROMEGAS_SHUTDOWN_GRACE_PERIOD_SECONDS', def: '25', help: 'SIGTERM drain deadline' },
  { flag: 'shutdown-delay-seconds', env: 'MICROMEGAS_GATEWAY_SHUTDOWN_DELAY_SECONDS', def: '0', help: 'on SIGTERM, answer /ready with 503 but keep serving this long before closing the listener' },
  { flag: 'disable-auth', env: 'MICROMEGAS_GATEWAY_DISABLE_AUTH', bool: true, help: 'accept unauthenticated requests (so is the embedded default without API keys)' },
  { flag: 'insecure-no-auth', env: 'MICROMEGAS_INSECURE_NO_AUTH', bool: true, help: 'allow listening on a non-loopback address with auth off (refused otherwise)' },
];

/** `--flag <value>` / help / (default) / [env] lines for a list of options. */
export function optionHelp(options: Option[]): string[] {
  return options.map((o) => {
    const env = o.env ? ` [env ${o.env}]` : '';
    const def = o.def ? ` (default ${o.def})` : '';
    return `  --${o.flag}${o.bool ? '' : ' <value>'}\n      ${o.help}${def}${env}`;
  });
}

export function helpText(): string {
  const lines = optionHelp(OPTIONS);
  return [
    'Usage: micromegas-gateway [options]             run the ingestion gateway',
    '       micromegas-gateway keys create <name>    mint an ingestion API key (printed once)',
    '       micromegas-gateway keys list             list keys (no secrets)',
    '       micromegas-gateway keys revoke <id|name> revoke a key',
    '',
    'Options:',
    ...lines,
    '',
    'Env-only: MICROMEGAS_API_KEYS  JSON [{"name":"...","key":"..."}] accepted as Bearer tokens',
    '          (OIDC tokens, upstream\'s MICROMEGAS_OIDC_CONFIG, are not validated: they get 401)',
    'Routes: POST /ingestion/insert_process|insert_stream|insert_block (also /insert_*), GET /health, /ready, /metrics',
  ].join('\n');
}

/** Parses argv (without node/script) and env into a config plus positional args; `extra` options
 * are accepted too and read back with `get(flag)`. */
export function loadConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  extra: Option[] = [],
): { config: GatewayConfig; args: string[]; get: (flag: string) => string | undefined } {
  const options = [...OPTIONS, ...extra];
  const values = new Map<string, string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      args.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    const opt = options.find((o) => o.flag === name);
    if (!opt) throw new Error(`unknown option --${name} (see --help)`);
    if (opt.bool) values.set(name, inline ?? 'true');
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      values.set(name, v);
    }
  }
  const get = (flag: string): string | undefined => {
    const o = options.find((x) => x.flag === flag)!;
    return values.get(flag) ?? (o.env && env[o.env] !== '' ? env[o.env] : undefined) ?? o.def; // an empty variable is unset
  };
  const num = (flag: string): number => {
    const n = Number(get(flag));
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a non-negative number`);
    return n;
  };
  const listen = get('listen')!;
  const at = listen.lastIndexOf(':');
  const host = at > 0 ? listen.slice(0, at) : '0.0.0.0';
  // --port replaces the port of the default or env listen address; a --listen flag names both.
  const portFlag = values.get('port');
  const portText = portFlag !== undefined && !values.has('listen') ? portFlag : listen.slice(at + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port <= 65535)) throw new Error(`invalid port in '${portFlag ?? listen}' (want 0-65535)`);
  const flag = (name: string) => ['1', 'true'].includes(get(name) ?? '');
  const workers = get('workers') === 'auto' ? 0 : num('workers');
  return {
    args,
    get,
    config: {
      host,
      port,
      dataDir: get('data-dir')!,
      pgUrl: get('pg-url') || undefined,
      objectStoreUri: get('object-store') || undefined,
      maxBodyBytes: num('max-body-bytes'),
      maxBufferedBodyBytes: num('max-buffered-body-bytes'),
      bodyTimeoutMs: num('body-timeout-ms'),
      packMaxBytes: num('pack-max-bytes'),
      packMaxDelayMs: num('pack-max-delay-ms'),
      maxQueueBytes: num('max-queue-bytes'),
      flushConcurrency: Math.max(1, num('flush-concurrency')),
      workers,
      pgPoolSize: Math.max(1, num('pg-pool-size')),
      shutdownGraceMs: num('shutdown-grace-seconds') * 1000,
      shutdownDelayMs: num('shutdown-delay-seconds') * 1000,
      disableAuth: flag('disable-auth'),
      insecureNoAuth: flag('insecure-no-auth'),
      apiKeys: parseEnvKeys(env.MICROMEGAS_API_KEYS),
      oidcConfig: env.MICROMEGAS_OIDC_CONFIG || undefined,
    },
  };
}

/** Defaults for library users: embedded storage under dataDir, auth off. */
export function defaultConfig(over: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadConfig([], {}).config, port: 0, ...over };
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Refuses (throws) to serve without auth on an address other machines reach, unless
 * --insecure-no-auth says so: auth off is the embedded default, fine on loopback only.
 */
export function checkOpenDoor(config: GatewayConfig, authOn: boolean): void {
  if (authOn || config.insecureNoAuth || isLoopback(config.host)) return;
  throw new Error(
    `refusing to listen on ${config.host}:${config.port} without authentication: ` +
      (config.disableAuth ? '--disable-auth is set' : 'no API keys are configured (MICROMEGAS_API_KEYS)') +
      '. Listen on 127.0.0.1 (--port/--listen), configure API keys, or pass --insecure-no-auth (env MICROMEGAS_INSECURE_NO_AUTH=1) to accept anyone.',
  );
}
