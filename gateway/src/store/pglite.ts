// SqlClient over PGlite, the embedded default: PostgreSQL in WebAssembly on a local
// directory. One connection, so calls are serialised by PGlite itself.

import { PGlite } from '@electric-sql/pglite';
import type { SqlClient } from './sql.js';

/** `pglite` is the instance itself, for the all-in-one server to share over a loopback socket. */
export async function pgliteClient(dataDir: string): Promise<SqlClient & { pglite: PGlite }> {
  const db = await PGlite.create(dataDir);
  return {
    pglite: db,
    async query(text, params) {
      return (await db.query(text, params)).rows as never[];
    },
    async transaction(fn) {
      return db.transaction(async (tx) => fn(async (text, params) => (await tx.query(text, params)).rows as never[]));
    },
    async close() {
      await db.close();
    },
  };
}
