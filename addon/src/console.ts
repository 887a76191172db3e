/** Optional capture of console.*: each call is also recorded as a log with target "console". */
import { format } from 'node:util';
import { Logger, type LevelName } from './log';

const methods: Array<[keyof Console, LevelName]> = [
  ['error', 'error'],
  ['warn', 'warn'],
  ['info', 'info'],
  ['log', 'info'],
  ['debug', 'debug'],
  ['trace', 'trace'],
];

let restoreFn: (() => void) | undefined;

/** Starts recording console output (the console still prints). Returns a function that restores it. */
export function captureConsole(opts: { target?: string; level?: LevelName } = {}): () => void {
  restoreFn?.();
  const log = new Logger({ target: opts.target ?? 'console', level: opts.level ?? 'trace' });
  const saved: Array<[keyof Console, unknown]> = [];
  for (const [name, level] of methods) {
    const original = console[name] as (...a: unknown[]) => void;
    saved.push([name, original]);
    (console as unknown as Record<string, unknown>)[name] = function (...args: unknown[]): void {
      log.write(level, format(...args));
      original.apply(console, args);
    };
  }
  restoreFn = () => {
    for (const [name, fn] of saved) (console as unknown as Record<string, unknown>)[name] = fn;
    restoreFn = undefined;
  };
  return restoreFn;
}
