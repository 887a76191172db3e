// @micromegas/analytics: SQL over micromegas telemetry.
export { Engine, type QueryOptions } from './engine.js';
export type { OpenOptions, RetentionOptions, RetentionReport, EngineStats } from './native.js';
export { createQueryHandler, createQueryServer, parseQueryRequest, ARROW_STREAM, type QueryHandler, type QueryHandlerOptions } from './server.js';
export { runQueryCli, runPerfettoCli, type OutputFormat } from './cli.js';
export { parseTime } from './time.js';
export { exportPerfettoTrace, type TraceEvent } from './perfetto.js';

import { Engine, type QueryOptions } from './engine.js';

let shared: Promise<Engine> | undefined;

/** One-shot query on an engine opened from the environment (opened once, then reused). */
export async function query(sql: string, options: QueryOptions = {}): Promise<Record<string, unknown>[]> {
  shared ??= Engine.open();
  return (await shared).queryRows(sql, options);
}
