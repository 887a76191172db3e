// @micromegas/analytics: SQL over micromegas telemetry.
export { Engine, QueryError, type QueryErrorKind, type QueryOptions } from './engine.js';
export type { OpenOptions, RetentionOptions, RetentionReport, EngineStats, MaintenanceReport } from './native.js';
export {
  answerQuery,
  createQueryHandler,
  createQueryServer,
  isQueryRoute,
  parseQueryRequest,
  ARROW_STREAM,
  type QueryHandler,
  type QueryHandlerOptions,
  type QueryReply,
  type QueryRequest,
} from './server.js';
export { runQueryCli, runPerfettoCli, type OutputFormat } from './cli.js';
export { parseTime } from './time.js';
export {
  collectTrace,
  exportPerfetto,
  exportPerfettoTrace,
  toChromeJson,
  toPerfettoProto,
  traceFormatOf,
  type TraceEvent,
  type TraceFormat,
  type TraceModel,
} from './perfetto.js';
export { runMaintenance, startMaintenance, MAINTAINED_VIEWS, type MaintenanceOptions, type MaintenancePass, type MaintenanceLoop } from './maintenance.js';
export { toCsv, toTextTable } from './format.js';

import { Engine, type QueryOptions } from './engine.js';

let shared: Promise<Engine> | undefined;

/** One-shot query on an engine opened from the environment (opened once, then reused). */
export async function query(sql: string, options: QueryOptions = {}): Promise<Record<string, unknown>[]> {
  shared ??= Engine.open();
  return (await shared).queryRows(sql, options);
}
