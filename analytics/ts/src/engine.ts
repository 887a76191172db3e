// The Node-side handle on the Rust engine. Results cross the boundary as Arrow IPC or JSON bytes
// produced in Rust; nothing here touches rows one by one.
import { tableFromIPC, type Table } from 'apache-arrow';
import { native, type EngineStats, type MaintenanceReport, type NativeEngine, type OpenOptions, type RetentionOptions, type RetentionReport } from './native.js';
import { parseTime } from './time.js';

export interface QueryOptions {
  /** RFC 3339 or a duration before now (`1h`); requires `end` unless `end` defaults to now. */
  begin?: string;
  end?: string;
  /** Rows at most: an integer from 0 to Number.MAX_SAFE_INTEGER. */
  limit?: number;
}

/** Why a query failed, as the engine classifies it (server.ts maps it to an HTTP status). */
export type QueryErrorKind = 'invalid_sql' | 'timeout' | 'resources_exhausted' | 'overloaded' | 'cancelled' | 'internal';
const KINDS = new Set<string>(['invalid_sql', 'timeout', 'resources_exhausted', 'overloaded', 'cancelled', 'internal']);

/** An engine error with its kind; the message is the engine's, without the `[kind] ` tag. */
export class QueryError extends Error {
  constructor(readonly kind: QueryErrorKind, message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

/** The native layer tags query errors `[kind] message`; other errors pass through unchanged. */
function typed(e: unknown): unknown {
  const m = e instanceof Error ? /^\[(\w+)\] ([\s\S]*)$/.exec(e.message) : null;
  return m && KINDS.has(m[1]) ? new QueryError(m[1] as QueryErrorKind, m[2]) : e;
}

async function typedErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw typed(e);
  }
}

export class Engine {
  private constructor(private readonly inner: NativeEngine) {}

  /** Connects using the options, or `MICROMEGAS_SQL_CONNECTION_STRING` / `MICROMEGAS_OBJECT_STORE_URI`. */
  static async open(options: OpenOptions = {}): Promise<Engine> {
    return new Engine(await native.openEngine(options));
  }

  /** Blocks read and partitions written/reused since the engine was opened. */
  stats(): EngineStats {
    return this.inner.stats();
  }

  /**
   * Resolves once the partitions that queries started writing in the background are written. A
   * query over data without a fresh partition answers from the blocks and writes the partition
   * after it; queries that follow read it.
   */
  idle(): Promise<void> {
    return this.inner.idle();
  }

  /** Deletes what the retention and tail-sampling policy says, as of now. */
  applyRetention(options: RetentionOptions): Promise<RetentionReport> {
    return this.inner.applyRetention(options);
  }

  /** Builds or refreshes the global partitions of `view` for the insert-time hours in [begin, end). */
  materializeGlobal(view: string, begin: string, end: string): Promise<MaintenanceReport> {
    return this.inner.materializeGlobal(view, begin, end);
  }

  /** Arrow IPC stream bytes. */
  queryIpc(sql: string, options: QueryOptions = {}): Promise<Buffer> {
    return typedErrors(() => this.inner.queryIpc(sql, toNative(options)));
  }

  /** The result encoded as it is computed (Arrow IPC stream bytes, or one JSON array in
   * pieces): a large result never sits whole in memory. Errors, planning ones included, reject
   * the iteration (typed as `QueryError`). The query stops (CPU and slot freed) when `signal`
   * aborts or the iteration ends early (`break`, `return()`, a throw). */
  async queryStream(sql: string, options: QueryOptions = {}, format: 'json' | 'arrow' = 'json', signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const stream = await typedErrors(async () => this.inner.queryStream(sql, toNative(options), format === 'arrow'));
    const cancel = () => stream.cancel();
    if (signal?.aborted) cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    return {
      async *[Symbol.asyncIterator]() {
        let finished = false;
        try {
          for (let chunk = await typedErrors(() => stream.next()); chunk !== null; chunk = await typedErrors(() => stream.next())) if (chunk.length) yield chunk;
          finished = true;
        } finally {
          signal?.removeEventListener('abort', cancel);
          if (!finished) cancel();
        }
      },
    };
  }

  /** JSON array of row objects, as bytes. */
  queryJsonBytes(sql: string, options: QueryOptions = {}): Promise<Buffer> {
    return typedErrors(() => this.inner.queryJson(sql, toNative(options)));
  }

  /** Rows as plain objects (parsed from the JSON Rust wrote). */
  async queryRows(sql: string, options: QueryOptions = {}): Promise<Record<string, unknown>[]> {
    return JSON.parse((await this.queryJsonBytes(sql, options)).toString('utf8'));
  }

  /** An apache-arrow Table. */
  async queryTable(sql: string, options: QueryOptions = {}): Promise<Table> {
    return tableFromIPC(await this.queryIpc(sql, options));
  }
}

function toNative(o: QueryOptions) {
  const begin = parseTime(o.begin);
  const end = parseTime(o.end) ?? (begin ? new Date().toISOString() : undefined);
  return { begin, end, limit: o.limit };
}
