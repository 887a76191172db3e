// The database seam: one query method and one transaction method, implemented by
// `pg` (real PostgreSQL) and PGlite (embedded default). Everything above speaks SQL.

export interface SqlClient {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs `fn` inside BEGIN/COMMIT on one connection; rolls back on throw. */
  transaction<T>(fn: (q: SqlClient['query']) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** PostgreSQL array literal for text-typed parameters, e.g. `$1::uuid[]`. Null stays NULL. */
export function pgArray(values: (string | number | null)[]): string {
  return (
    '{' +
    values
      .map((v) => (v === null ? 'NULL' : `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`))
      .join(',') +
    '}'
  );
}
