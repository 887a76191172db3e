/**
 * Loads micromegas_node.node once per JavaScript realm (main thread or worker). On failure the SDK
 * keeps working as no-ops; the reason is kept here and reported once, by init().
 */
import * as path from 'node:path';
import * as fs from 'node:fs';

/** The raw binding: every record call takes small integer ids returned by the intern* calls. */
export interface Binding {
  init(url: string, apiKey: string, directory: string, properties: string[], exe: string,
    blockSize: number, flushPeriodMs: number, cpuTracing: number, crashHandler: number, ringSize: number): number;
  flush(timeoutMs: number): number;
  shutdown(deadlineMs: number): number;
  setThreadName(name: string): void;
  isEnabled(): boolean;
  processId(): string;
  lastError(): string;
  stats(): NativeStats;
  internLog(level: number, target: string, fmt: string): number;
  internProperties(kv: string[]): number;
  internString(s: string): number;
  logStatic(desc: number): void;
  logString(desc: number, msg: string): void;
  logTagged(desc: number, properties: number, msg: string): void;
  logDynamic(level: number, target: number, msg: string): void;
  internMetric(name: string, unit: string, target: string): number;
  metricInt(desc: number, value: number): void;
  metricFloat(desc: number, value: number): void;
  metricIntTagged(desc: number, properties: number, value: number): void;
  metricFloatTagged(desc: number, properties: number, value: number): void;
  internSpan(name: string, target: string, file: string, line: number): number;
  spanBegin(desc: number): void;
  spanEnd(desc: number): void;
  asyncSpanBegin(desc: number, parentSpanId: number, depth: number): number;
  asyncSpanEnd(desc: number, spanId: number, parentSpanId: number, depth: number): void;
  /**
   * This thread's slots [span id, parent span id, depth, metric value], read by the bound async
   * span edges and metric records (written right before the call: cheaper than an argument).
   */
  sharedArgs(): Float64Array;
  /** [begin, end] of async spans of desc, without arguments: they read sharedArgs(), begin writes the id. */
  bindAsyncSpan(desc: number): [() => void, () => void];
  /** Record functions bound to a descriptor (its pointer is the function's data): fewer arguments. */
  bindLogStatic(desc: number): () => void;
  bindLogString(desc: number): (msg: string) => void;
  /** record() of a metric: records sharedArgs()[3]. */
  bindMetric(desc: number, properties: number, integer: number): () => void;
  bindSpan(desc: number): [() => void, () => void];
  /** Empty raw Node-API function taking one double: the benchmark floor. */
  floor(x: number): void;
  /** Empty raw Node-API function taking (uint32 id, double): the floor of a metric record. */
  floor2(id: number, x: number): void;
  /** The floor plus one read of the tick counter: the cheapest call that can record an event. */
  floorClock(x: number): void;
  /** Empty calls reading a uint32 or an external: the id-passing comparison. */
  floorU32(id: number): void;
  floorExternal(p: unknown): void;
  makeExternal(): unknown;
}

/** Counters of the native core (mm_get_stats). */
export interface NativeStats {
  eventsDropped: number;
  blocksDropped: number;
  blocksSent: number;
  requestsSent: number;
  bytesSent: number;
  queuedBytes: number;
  retries: number;
}

function candidates(): string[] {
  const here = __dirname; // addon/dist
  const list = [
    path.join(here, '..', 'build', 'Release', 'micromegas_node.node'), // packaged
    path.join(here, '..', '..', 'build', 'node', 'Release', 'micromegas_node.node'), // repo build
  ];
  // An explicit path is the only candidate (packagers, and the test of a failed load).
  const override = process.env.MICROMEGAS_NODE_ADDON;
  return override ? [override] : list;
}

function load(): { binding: Binding | null; error: string } {
  const errors: string[] = [];
  for (const file of candidates()) {
    if (!fs.existsSync(file)) continue;
    try {
      return { binding: require(file) as Binding, error: '' };
    } catch (e) {
      errors.push(`${file}: ${(e as Error).message}`);
    }
  }
  if (errors.length === 0) errors.push(`micromegas_node.node not found (looked in ${candidates().join(', ')})`);
  return { binding: null, error: errors.join('; ') };
}

const loaded = load();
export const binding: Binding | null = loaded.binding;
export const loadError: string = loaded.error;
