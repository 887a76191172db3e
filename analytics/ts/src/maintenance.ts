// The lakehouse maintenance loop: materializes the global `log_entries`, `measures` and `log_stats`
// partitions of recently completed insert-time hours (so queries over them read Parquet only),
// then applies retention and tail sampling. One pass at a time; a failing pass is reported and
// the loop goes on.
import type { Engine } from './engine.js';
import type { MaintenanceReport, RetentionOptions, RetentionReport } from './native.js';

export const MAINTAINED_VIEWS = ['log_entries', 'measures', 'log_stats'] as const;
const HOUR_MS = 3600_000;

export interface MaintenanceOptions {
  /** Completed hours to keep materialized, counting back from the current hour (default 3). */
  lookbackHours?: number;
  /** Retention and tail sampling; omitted: nothing is deleted. */
  retention?: RetentionOptions;
}

export interface MaintenancePass {
  views: Record<string, MaintenanceReport>;
  retention?: RetentionReport;
  ms: number;
}

/** One pass as of `now`. */
export async function runMaintenance(engine: Engine, options: MaintenanceOptions = {}, now = new Date()): Promise<MaintenancePass> {
  const started = Date.now();
  const end = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS);
  const begin = new Date(end.getTime() - (options.lookbackHours ?? 3) * HOUR_MS);
  const views: Record<string, MaintenanceReport> = {};
  for (const view of MAINTAINED_VIEWS) views[view] = await engine.materializeGlobal(view, begin.toISOString(), end.toISOString());
  const retention = options.retention ? await engine.applyRetention(options.retention) : undefined;
  return { views, retention, ms: Date.now() - started };
}

export interface MaintenanceLoop {
  /** Waits for a pass in progress, then stops. */
  stop(): Promise<void>;
}

/** Runs a pass now and then every `intervalMs`; `report` sees each pass or its error. */
export function startMaintenance(
  engine: Engine,
  options: MaintenanceOptions & { intervalMs?: number },
  report: (pass: MaintenancePass | Error) => void,
): MaintenanceLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = runMaintenance(engine, options)
      .then(report, (e: Error) => report(e))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.intervalMs ?? 60_000).unref();
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
