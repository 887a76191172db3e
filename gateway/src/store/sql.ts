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

/**
 * An error PostgreSQL raised because of the data in the statement (SQLSTATE class 22, data
 * exception, or 23, integrity constraint violation), not because the database is unreachable:
 * the client sent something the column cannot hold, and retrying cannot help.
 */
export function isDataError(e: unknown): e is Error & { code: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
