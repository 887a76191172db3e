// SqlClient over a `pg` connection pool.

import pg from 'pg';
import type { SqlClient } from './sql.js';

export function pgClient(connectionString: string, max = 8): SqlClient {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5000, query_timeout: 30000 });
  // An idle client losing its connection (PostgreSQL restart) must not crash the process.
  pool.on('error', () => {});
  return {
    async query(text, params) {
      return (await pool.query(text, params as unknown[])).rows;
    },
    async transaction(fn) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const out = await fn(async (text, params) => (await c.query(text, params as unknown[])).rows);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}
