/**
 * The SDK's one switch: `live` is the binding while telemetry records, null otherwise. Every handle
 * (logger, metric, span) registers here and rebinds its methods when the switch flips, so the hot
 * methods never test it: they are either the native call or a no-op chosen ahead of time
 * (pino's setLevel, OpenTelemetry's no-op providers).
 */
import { binding, type Binding } from './native';

export interface Rebindable {
  rebind(live: Binding | null): void;
}

const handles = new Set<Rebindable>();
let live: Binding | null = null;

export function current(): Binding | null {
  return live;
}

export function register<T extends Rebindable>(h: T): T {
  handles.add(h);
  h.rebind(live);
  return h;
}

export function setLive(b: Binding | null): void {
  live = b;
  for (const h of handles) h.rebind(b);
}

/** Used by a worker thread: if the process already records (the main thread called init), join. */
export function joinIfRecording(): boolean {
  if (binding && !live && binding.isEnabled()) {
    setLive(binding);
    return true;
  }
  return false;
}

export function noop(): void {}

/** Slot of each number in `sharedArgs` (ArgSlot in binding/addon.h). */
export const SPAN_ID = 0, PARENT_ID = 1, DEPTH = 2, VALUE = 3;
let args: Float64Array | null = null;
/** The numbers bound native calls read instead of arguments; one array per thread, never moved. */
export function sharedArgs(b: Binding): Float64Array {
  return (args ??= b.sharedArgs());
}

/**
 * Bounded string → id caches. Interned natives live until the process exits, so each cache stops
 * growing at `limit`; past it, callers fall back to a non-interned path (dynamic message, or
 * properties folded into the text).
 */
export class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly limit: number) {}
  get(k: string): V | undefined {
    return this.map.get(k);
  }
  /** Returns false when full. */
  set(k: string, v: V): boolean {
    if (this.map.size >= this.limit) return false;
    this.map.set(k, v);
    return true;
  }
  get full(): boolean {
    return this.map.size >= this.limit;
  }
  clear(): void {
    this.map.clear();
  }
}

/** Property sets interned once per distinct content; null when the cache is full. */
const propertySets = new BoundedCache<number>(4096);
export type Properties = Record<string, unknown>;

export function propertiesKey(props: Properties): string {
  let key = '';
  for (const k in props) key += k + '\u0000' + String(props[k]) + '\u0000';
  return key;
}

export function internProperties(b: Binding, props: Properties): number | null {
  const key = propertiesKey(props);
  let id = propertySets.get(key);
  if (id !== undefined) return id;
  if (propertySets.full) return null; // never intern (and keep forever) past the cap
  const kv: string[] = [];
  for (const k in props) kv.push(k, String(props[k]));
  if (kv.length === 0) return 0;
  id = b.internProperties(kv);
  propertySets.set(key, id);
  return id;
}

/** Binding-local ids are per realm: a binding reload (never in practice) would reset them. */
export function resetCaches(): void {
  propertySets.clear();
}
