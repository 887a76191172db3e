// Metadata rows in PostgreSQL (or PGlite). Inserts are idempotent (ON CONFLICT DO
// NOTHING); blocks are inserted many per statement through unnest().

import type { BlockRow, ProcessRow, StreamRow } from '../envelope.js';
import { pgArray, type SqlClient } from './sql.js';

export interface StoredBlock extends BlockRow {
  /** Pack object key, or null for upstream's one-object-per-block layout. */
  payload_object: string | null;
  payload_offset: number | null;
}

const PROPS = (k: number, v: number) =>
  `(SELECT coalesce(array_agg(ROW(k, v)::micromegas_property ORDER BY n), '{}')
     FROM unnest($${k}::text[], $${v}::text[]) WITH ORDINALITY AS t(k, v, n))`;

export class Metadata {
  /** Count of INSERT statements into blocks, for "rows per INSERT". */
  blockInserts = 0;

  constructor(readonly db: SqlClient) {}

  async insertProcess(p: ProcessRow): Promise<void> {
    await this.db.query(
      `INSERT INTO processes VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11, ${PROPS(12, 13)})
       ON CONFLICT (process_id) DO NOTHING`,
      [
        p.process_id, p.exe, p.username, p.realname, p.computer, p.distro, p.cpu_brand,
        p.tsc_frequency, p.start_time, p.start_ticks, p.parent_process_id,
        pgArray(p.properties.map((x) => x[0])), pgArray(p.properties.map((x) => x[1])),
      ],
    );
  }

  async insertStream(s: StreamRow): Promise<void> {
    await this.db.query(
      `INSERT INTO streams VALUES ($1, $2, $3, $4, $5::text[], ${PROPS(6, 7)}, now(), 'micromegas-transit')
       ON CONFLICT (stream_id) DO NOTHING`,
      [
        s.stream_id, s.process_id, s.dependencies_metadata, s.objects_metadata, pgArray(s.tags),
        pgArray(s.properties.map((x) => x[0])), pgArray(s.properties.map((x) => x[1])),
      ],
    );
  }

  /** One statement for the whole batch; duplicates (retries) are dropped by the unique index. */
  async insertBlocks(rows: StoredBlock[]): Promise<void> {
    if (!rows.length) return;
    const col = <K extends keyof StoredBlock>(k: K) => pgArray(rows.map((r) => r[k] as string | number | null));
    this.blockInserts++;
    await this.db.query(
      `INSERT INTO blocks (block_id, stream_id, process_id, begin_time, begin_ticks, end_time, end_ticks,
                           nb_objects, object_offset, payload_size, insert_time, payload_object, payload_offset)
       SELECT b, s, p, bt, bk, et, ek, n, oo, ps, now(), po, pf
       FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::int8[], $6::timestamptz[],
                   $7::int8[], $8::int4[], $9::int8[], $10::int8[], $11::text[], $12::int8[])
            AS t(b, s, p, bt, bk, et, ek, n, oo, ps, po, pf)
       ON CONFLICT (block_id) DO NOTHING`,
      [
        col('block_id'), col('stream_id'), col('process_id'), col('begin_time'), col('begin_ticks'),
        col('end_time'), col('end_ticks'), col('nb_objects'), col('object_offset'), col('payload_size'),
        col('payload_object'), col('payload_offset'),
      ],
    );
  }

  async getBlock(blockId: string): Promise<StoredBlock | null> {
    const rows = await this.db.query<StoredBlock>(
      `SELECT block_id::text, stream_id::text, process_id::text, begin_time::text, begin_ticks::text,
              end_time::text, end_ticks::text, nb_objects, object_offset::text, payload_size::int8::float8 AS payload_size,
              payload_object, payload_offset::float8 AS payload_offset
       FROM blocks WHERE block_id = $1`,
      [blockId],
    );
    return rows[0] ?? null;
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }
}
