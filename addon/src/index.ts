/**
 * @micromegas/node: record logs, metrics and spans from Node at Node-API speed, into the same
 * store as the native and Unreal producers.
 *
 * ```ts
 * import { init, logger, metric, asyncSpan, shutdown } from '@micromegas/node';
 * init({ url: 'http://localhost:9000' });           // or MICROMEGAS_TELEMETRY_URL
 * const log = logger('http');
 * log.info('server started');
 * const latency = metric('http.latency', 'ms'); latency.record(12.5);
 * await asyncSpan('handle', async () => { ... });
 * await shutdown({ deadlineMs: 5000 });
 * ```
 *
 * Before init(), when nothing is configured, or when the native module cannot load, every call is
 * a no-op chosen once (no test inside the calls).
 */
import { isMainThread, threadId } from 'node:worker_threads';
import { binding, loadError, type NativeStats } from './native';
import { current, joinIfRecording, setLive } from './state';
import { Logger, LEVELS, setDefaultLevel, type LevelName } from './log';
import { startProcessMetrics, stopProcessMetrics } from './process-metrics';

export { Logger, logger, LEVELS, LEVEL_NAMES, type LevelName, type LogFn, type LoggerOptions } from './log';
export { Metric, metric, type MetricOptions } from './metric';
export { SpanScope, spanScope, span, asyncSpan, traced, activeSpan, type SpanFrame, type SpanOptions } from './span';
export { captureConsole } from './console';
export { micromegasDestination, type PinoDestinationOptions } from './pino';
export type { Properties } from './state';
export type { NativeStats } from './native';

export interface InitOptions {
  /** Ingestion root, e.g. http://host:9000. Env: MICROMEGAS_TELEMETRY_URL. */
  url?: string;
  /** Bearer key. Env: MICROMEGAS_INGESTION_API_KEY. */
  apiKey?: string;
  /** Write request bodies as files here instead of HTTP. Env: MICROMEGAS_TELEMETRY_DIR. */
  directory?: string;
  /**
   * Process properties. Merged with MICROMEGAS_PROCESS_PROPERTIES ("k=v,k2=v2", read natively),
   * OTEL_SERVICE_NAME (as service.name) and OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2").
   */
  processProperties?: Record<string, string>;
  /** Executable name reported for the process. Default: the node binary's path. */
  exe?: string;
  /** Event bytes per block. Default 1 MiB. */
  blockSize?: number;
  /** A non-empty block is sent at least this often. Default 1000 ms. */
  flushPeriodMs?: number;
  /** Bytes of each thread's queue per stream kind (rounded up to a power of two). Default 2 MiB. */
  ringSize?: number;
  /** Record spans. Default true. */
  cpuTracing?: boolean;
  /** Native crash handler (SIGSEGV...). Default false: Node has its own. */
  crashHandler?: boolean;
  /** Most verbose level recorded by loggers without their own level. Default "info". */
  level?: LevelName;
  /** Interval of process metrics in ms, or false to disable. Default 1000. */
  processMetrics?: number | false;
  /** Flush at exit, on SIGTERM/SIGINT (when the app has no handler) and on uncaught exceptions. Default true. */
  exitHandlers?: boolean;
  /** Name of this thread's cpu stream. Default "main", or "worker-<threadId>". */
  threadName?: string;
}

let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(message, { code: 'MICROMEGAS_DISABLED' });
}

function otelProperties(): Record<string, string> {
  const out: Record<string, string> = {};
  const attrs = process.env.OTEL_RESOURCE_ATTRIBUTES;
  if (attrs) {
    for (const item of attrs.split(',')) {
      const eq = item.indexOf('=');
      if (eq <= 0) continue;
      const k = item.slice(0, eq).trim();
      let v = item.slice(eq + 1).trim();
      try {
        v = decodeURIComponent(v);
      } catch {
        /* keep raw */
      }
      out[k] = v;
    }
  }
  const service = process.env.OTEL_SERVICE_NAME;
  if (service) out['service.name'] = service;
  return out;
}

const fatalLog = new Logger({ target: 'nodejs', level: 'trace' });
let exitInstalled = false;
let exitDeadlineMs = 2000;

/**
 * Starts telemetry. Returns true when recording. In a worker thread whose process already records,
 * joins it (each worker records on its own cpu stream).
 */
export function init(opts: InitOptions = {}): boolean {
  if (opts === null || typeof opts !== 'object') throw new TypeError('init: options must be an object');
  if (opts.level !== undefined) {
    if (!(opts.level in LEVELS)) throw new TypeError(`init: unknown level ${String(opts.level)}`);
    setDefaultLevel(opts.level);
  }
  if (!binding) {
    warnOnce(`micromegas: native module unavailable, telemetry disabled (${loadError})`);
    return false;
  }
  if (current()) return true;
  const env = process.env;
  const url = opts.url ?? env.MICROMEGAS_TELEMETRY_URL ?? '';
  const directory = opts.directory ?? env.MICROMEGAS_TELEMETRY_DIR ?? '';
  if (!url && !directory && !binding.isEnabled()) return false; // nothing configured: stay no-op
  const props = { ...otelProperties(), ...(opts.processProperties ?? {}) };
  const kv: string[] = [];
  for (const k of Object.keys(props)) kv.push(k, String(props[k]));
  const rc = binding.init(
    url,
    opts.apiKey ?? env.MICROMEGAS_INGESTION_API_KEY ?? '',
    directory,
    kv,
    opts.exe ?? '',
    opts.blockSize ?? 0,
    opts.flushPeriodMs ?? 0,
    opts.cpuTracing === false ? 0 : 1,
    opts.crashHandler ? 1 : 0,
    opts.ringSize ?? 0,
  );
  if (rc < 0) {
    warnOnce(`micromegas: init failed, telemetry disabled (${binding.lastError()})`);
    return false;
  }
  if (rc === 2 || !binding.isEnabled()) return false;
  binding.setThreadName(opts.threadName ?? (isMainThread ? 'main' : `worker-${threadId}`));
  setLive(binding);
  if (opts.processMetrics !== false && isMainThread) startProcessMetrics(opts.processMetrics ?? 1000);
  if (opts.exitHandlers !== false && isMainThread) installExitHandlers();
  return true;
}

/** True while telemetry records. */
export function isEnabled(): boolean {
  return current() !== null;
}

/** The process id (UUID) sent to the ingestion service, or "" when not recording. */
export function processId(): string {
  return current() ? binding!.processId() : '';
}

/** Native counters: blocks sent, events dropped... */
export function stats(): NativeStats | null {
  return binding ? binding.stats() : null;
}

/** Sends everything recorded so far; blocks the calling thread at most timeoutMs. */
export function flushSync(timeoutMs = 5000): boolean {
  const b = current();
  return b ? b.flush(timeoutMs >>> 0) === 0 : true;
}

/** Sends everything recorded so far. Resolves true once delivered, false on timeout. */
export async function flush(opts: { timeoutMs?: number } = {}): Promise<boolean> {
  return flushSync(opts.timeoutMs ?? 5000);
}

/** Flushes and stops telemetry; every later call is a no-op. Blocks at most deadlineMs. */
export function shutdownSync(deadlineMs = 5000): boolean {
  const b = current();
  if (!b) return true;
  stopProcessMetrics();
  uninstallExitHandlers();
  setLive(null);
  return b.shutdown(deadlineMs >>> 0) === 0;  // mm_shutdown flushes first
}

/** Flushes and stops telemetry (OpenTelemetry's shutdown()). */
export async function shutdown(opts: { deadlineMs?: number } = {}): Promise<boolean> {
  return shutdownSync(opts.deadlineMs ?? 5000);
}

// ---- process exit ----------------------------------------------------------------------------

function onExit(): void {
  shutdownSync(exitDeadlineMs);
}

function onUncaught(err: unknown, origin: string): void {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  fatalLog.write('fatal', `${origin}: ${text}`);
  // Node calls process.exit right after when the app has no handler; flush now in either case.
  flushSync(exitDeadlineMs);
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) {
    flushSync(exitDeadlineMs); // the app handles the signal: just make sure our data is out
    return;
  }
  // We are the only listener, so Node's default (terminate) was disabled by us: restore it.
  shutdownSync(exitDeadlineMs);
  process.kill(process.pid, signal);
}

function installExitHandlers(): void {
  if (exitInstalled) return;
  exitInstalled = true;
  process.on('exit', onExit);
  process.on('uncaughtExceptionMonitor', onUncaught);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function uninstallExitHandlers(): void {
  if (!exitInstalled) return;
  exitInstalled = false;
  process.removeListener('exit', onExit);
  process.removeListener('uncaughtExceptionMonitor', onUncaught);
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGINT', onSignal);
}

/** For benchmarks: the empty raw Node-API call taking one double, or a no-op without the addon. */
export const nativeFloor: (x: number) => void = binding ? binding.floor : () => {};

/** Direct access to the raw binding (ids in, no checks in JS); null when it failed to load. */
export const rawBinding = binding;

// A worker started after the main thread's init() records on its own cpu stream without init().
if (!isMainThread && joinIfRecording()) binding!.setThreadName(`worker-${threadId}`);
