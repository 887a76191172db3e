// SqlClient over PGlite, the embedded default: PostgreSQL in WebAssembly on a local
// directory. One connection, so calls are serialised by PGlite itself.

import { PGlite } from '@electric-sql/pglite';
import type { SqlClient } from './sql.js';

export async function pgliteClient(dataDir: string): Promise<SqlClient> {
  const db = await PGlite.create(dataDir);
  return {
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
