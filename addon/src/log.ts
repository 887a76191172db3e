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
  private dynamicFns: LogFn[] = [];

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

  /** Dynamic message at a run-time level: never interned. */
  write(level: LevelName, msg: string, props?: Properties): void {
    if (!this.isLevelEnabled(level)) return;
    this.dynamicFns[LEVELS[level]](msg, props);
  }

  /**
   * A precompiled constant message: the cheapest way to log (one native call with one id).
   * `const connected = log.event('info', 'player connected'); connected();`
   */
  event(level: LevelName, msg: string): () => void {
    const b = this.live;
    if (!b || LEVELS[level] > LEVELS[this.level]) return noop;
    const id = b.internLog(LEVELS[level], this.target, msg);
    return () => b.logStatic(id);
  }

  /** Called by the state switch and by level changes: picks each level's function once. */
  rebind(live: Binding | null): void {
    this.live = live;
    const max = LEVELS[this.level];
    this.dynamicFns = [];
    for (const name of LEVEL_NAMES) {
      const lvl = LEVELS[name];
      this[name] = live && lvl <= max ? this.methodFor(live, lvl, false) : noop;
      this.dynamicFns[lvl] = live ? this.methodFor(live, lvl, true) : noop;
    }
  }

  private methodFor(b: Binding, level: number, dynamicOnly: boolean): LogFn {
    const target = this.target;
    const statics = new BoundedCache<number>(STATIC_MESSAGES_PER_LEVEL);
    let dynDesc = -1; // descriptor with an empty format, for dynamic and tagged messages
    const dyn = (): number => (dynDesc >= 0 ? dynDesc : (dynDesc = b.internLog(level, target, '')));
    const withProps = (msg: string, props: Properties): void => {
      const p = internProperties(b, props);
      if (p === null) b.logString(dyn(), msg + ' ' + safeJson(props));
      else b.logTagged(dyn(), p, msg);
    };
    return function log(a: string | Properties, c?: string | Properties): void {
      if (typeof a === 'string') {
        if (c !== undefined && typeof c === 'object' && c !== null) return withProps(a, c);
        if (dynamicOnly) return b.logString(dyn(), a);
        let id = statics.get(a);
        if (id === undefined) {
          if (a.length > MAX_STATIC_LENGTH) return b.logString(dyn(), a);
          id = b.internLog(level, target, a);
          if (!statics.set(a, id)) return b.logString(dyn(), a);
        }
        return b.logStatic(id);
      }
      if (a instanceof Error) {
        const msg = typeof c === 'string' ? `${c}: ${a.stack ?? a.message}` : (a.stack ?? a.message);
        return b.logString(dyn(), msg);
      }
      if (a !== null && typeof a === 'object') return withProps(typeof c === 'string' ? c : '', a);
      return b.logString(dyn(), String(a));
    } as LogFn;
  }
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
