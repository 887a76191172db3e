/**
 * A pino destination: `pino(opts, micromegasDestination())` records each pino line as a micromegas
 * log, with pino's fields (other than level, msg, time, pid, hostname) as properties.
 */
import { Logger, type LevelName } from './log';

export interface PinoDestinationOptions {
  /** Target when the line has no `name` field. Default: "pino". */
  target?: string;
}

function levelOf(n: unknown): LevelName {
  const v = typeof n === 'number' ? n : 30;
  if (v >= 60) return 'fatal';
  if (v >= 50) return 'error';
  if (v >= 40) return 'warn';
  if (v >= 30) return 'info';
  if (v >= 20) return 'debug';
  return 'trace';
}

const SKIP = new Set(['level', 'msg', 'time', 'pid', 'hostname', 'name', 'v']);

/** The destination: an object with write(line), the only thing pino needs. */
export function micromegasDestination(opts: PinoDestinationOptions = {}): { write(line: string): void } {
  const loggers = new Map<string, Logger>();
  const loggerFor = (target: string): Logger => {
    let l = loggers.get(target);
    // pino already filtered by level: record everything it writes.
    if (!l) loggers.set(target, (l = new Logger({ target, level: 'trace' })));
    return l;
  };
  const fallback = opts.target ?? 'pino';
  return {
    write(line: string): void {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line);
      } catch {
        loggerFor(fallback).write('info', line.trimEnd());
        return;
      }
      const props: Record<string, unknown> = {};
      let n = 0;
      for (const k in o) {
        if (SKIP.has(k)) continue;
        const v = o[k];
        props[k] = typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
        ++n;
      }
      const target = typeof o.name === 'string' ? o.name : fallback;
      const msg = typeof o.msg === 'string' ? o.msg : '';
      loggerFor(target).write(levelOf(o.level), msg, n ? props : undefined);
    },
  };
}
