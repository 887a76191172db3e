/**
 * Loggers in pino's shape: `log.info('msg')`, `log.info('msg', { k: v })` or `log.info({ k: v }, 'msg')`.
 * Disabled levels are replaced by a no-op function when the level changes, so a filtered call costs
 * an empty JS call and never reaches native code.
 */
import type { Binding } from './native';
import { BoundedCache, internProperties, noop, register, type Properties, type Rebindable } from './state';

export const LEVELS = { fatal: 1, error: 2, warn: 3, info: 4, debug: 5, trace: 6 } as const;
export type LevelName = keyof typeof LEVELS;
export const LEVEL_NAMES: readonly LevelName[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** `log.info('text')`, `log.info('text', props)` or pino's `log.info(props, 'text')`. */
export type LogFn = {
  (msg: string, props?: Properties): void;
  (props: Properties, msg?: string): void;
};

export interface LoggerOptions {
  /** Recorded as the log target (module or component name). Default: "js". */
  target?: string;
  /** Most verbose level recorded. Default: the `level` given to init(), else "info". */
  level?: LevelName;
}

/** Distinct constant messages interned per logger and level before falling back to dynamic ones. */
const STATIC_MESSAGES_PER_LEVEL = 1024;
/** Longer strings are never interned: they are unlikely to be constants. */
const MAX_STATIC_LENGTH = 200;

let defaultLevel: LevelName = 'info';
export function setDefaultLevel(l: LevelName): void {
  defaultLevel = l;
}
export function getDefaultLevel(): LevelName {
  return defaultLevel;
}

export class Logger implements Rebindable {
  fatal: LogFn = noop;
  error: LogFn = noop;
  warn: LogFn = noop;
  info: LogFn = noop;
  debug: LogFn = noop;
  trace: LogFn = noop;
  readonly target: string;
  private levelName: LevelName | undefined;
  private live: Binding | null = null;
  private dynamicFns: Record<string, (msg: string, props?: Properties) => void> = {};

  constructor(opts: LoggerOptions = {}) {
    this.target = opts.target ?? 'js';
    this.levelName = opts.level;
    register(this);
  }

  get level(): LevelName {
    return this.levelName ?? defaultLevel;
  }
  set level(l: LevelName) {
    if (!(l in LEVELS)) throw new TypeError(`unknown level ${String(l)}; expected one of ${LEVEL_NAMES.join(', ')}`);
    this.levelName = l;
    this.rebind(this.live);
  }

  /** True when `level` is recorded (pino's isLevelEnabled). */
  isLevelEnabled(level: LevelName): boolean {
    return this.live !== null && LEVELS[level] <= LEVELS[this.level];
  }

  /** Dynamic message at a run-time level: never interned (disabled levels are no-ops). */
  write(level: LevelName, msg: string, props?: Properties): void {
    const fn = this.dynamicFns[level];
    if (fn === undefined) throw new TypeError(`unknown level ${String(level)}; expected one of ${LEVEL_NAMES.join(', ')}`);
    fn(msg, props);
  }

  /**
   * A precompiled constant message: the cheapest way to log (one native call with one id).
   * `const connected = log.event('info', 'player connected'); connected();`
   */
  event(level: LevelName, msg: string): () => void {
    const b = this.live;
    if (!b || LEVELS[level] > LEVELS[this.level]) return noop;
    return b.bindLogStatic(b.internLog(LEVELS[level], this.target, msg));
  }

  /** Called by the state switch and by level changes: picks each level's functions once. */
  rebind(live: Binding | null): void {
    this.live = live;
    const max = LEVELS[this.level];
    const dyn: Record<string, (msg: string, props?: Properties) => void> = {};
    for (const name of LEVEL_NAMES) {
      const lvl = LEVELS[name];
      const enabled = live !== null && lvl <= max;
      this[name] = enabled ? this.methodFor(live, lvl) : noop;
      dyn[name] = enabled ? this.dynamicFor(live, lvl) : noop;
    }
    this.dynamicFns = dyn;
  }

  private dynamicFor(b: Binding, level: number): (msg: string, props?: Properties) => void {
    const desc = b.internLog(level, this.target, ''); // empty format: the message is the event's text
    const record = b.bindLogString(desc);
    return (msg: string, props?: Properties): void => {
      if (props === undefined) record(msg);
      else logWithProperties(b, desc, msg, props);
    };
  }

  private methodFor(b: Binding, level: number): LogFn {
    const target = this.target;
    // Each interned text maps to a native function bound to its descriptor (called with no argument).
    const statics = new BoundedCache<() => void>(STATIC_MESSAGES_PER_LEVEL);
    const desc = b.internLog(level, target, '');
    // One-entry cache in front of the Map: a call site logging the same constant in a loop skips
    // the hash lookup (an identity compare of the same string object).
    let lastMsg: string | undefined;
    let lastFn: () => void = noop;
    return function log(a: string | Properties, c?: string | Properties): void {
      if (typeof a === 'string') {
        if (c === undefined) {
          if (a === lastMsg) return lastFn();
          let fn = statics.get(a);
          if (fn === undefined) {
            if (a.length > MAX_STATIC_LENGTH) return b.logString(desc, a);
            fn = b.bindLogStatic(b.internLog(level, target, a));
            if (!statics.set(a, fn)) return b.logString(desc, a);
          }
          lastMsg = a;
          lastFn = fn;
          return fn();
        }
        if (typeof c === 'object' && c !== null) return logWithProperties(b, desc, a, c);
        return b.logString(desc, a);
      }
      if (a instanceof Error) {
        const msg = typeof c === 'string' ? `${c}: ${a.stack ?? a.message}` : (a.stack ?? a.message);
        return b.logString(desc, msg);
      }
      if (a !== null && typeof a === 'object') return logWithProperties(b, desc, typeof c === 'string' ? c : '', a);
      return b.logString(desc, String(a));
    } as LogFn;
  }
}

function logWithProperties(b: Binding, desc: number, msg: string, props: Properties): void {
  const p = internProperties(b, props);
  if (p === null) b.logString(desc, msg + ' ' + safeJson(props));
  else b.logTagged(desc, p, msg);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Creates a logger (`logger('http')` or `logger({ target: 'http', level: 'debug' })`). */
export function logger(opts?: LoggerOptions | string): Logger {
  return new Logger(typeof opts === 'string' ? { target: opts } : opts);
}
