// Metadata rows in PostgreSQL (or PGlite). Inserts are idempotent (ON CONFLICT DO
// NOTHING); blocks are inserted many per statement through unnest().

import type { BlockRow, ProcessRow, StreamRow } from '../envelope.js';
import { isDataError, pgArray, type SqlClient } from './sql.js';

export interface StoredBlock extends BlockRow {
  /** Pack object key, or null for upstream's one-object-per-block layout. */
  payload_object: string | null;
  payload_offset: number | null;
}

const PROPS = (k: number, v: number) =>
  `(SELECT coalesce(array_agg(ROW(k, v)::micromegas_property ORDER BY n), '{}')
     FROM unnest($${k}::text[], $${v}::text[]) WITH ORDINALITY AS t(k, v, n))`;

/** Rows a write refused, by block id, each with the reason its client is told (a 400). */
export type RefusedRows = Map<string, string>;

/** An insert_stream naming a stream that already belongs to another process. */
export class StreamOwnedElsewhere extends Error {}

const belongsTo = (stream: string, process: string) => `stream ${stream} belongs to process ${process}`;

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

  /**
   * Throws StreamOwnedElsewhere when the stream exists under another process, or when blocks
   * already stored for it (a block may precede its stream) name another process: the first claim
   * wins. A retry of the same stream is fine.
   */
  async insertStream(s: StreamRow): Promise<void> {
    // One statement; the owner is read only when the insert did not happen (the snapshot predates it).
    const owner = await this.db.query<{ process_id: string }>(
      `WITH claimed AS (
         SELECT process_id FROM blocks WHERE stream_id = $1::uuid AND process_id <> $2::uuid LIMIT 1),
       ins AS (
         INSERT INTO streams
         SELECT $1::uuid, $2::uuid, $3::bytea, $4::bytea, $5::text[], ${PROPS(6, 7)}, now(), 'micromegas-transit'
         WHERE NOT EXISTS (SELECT 1 FROM claimed)
         ON CONFLICT (stream_id) DO NOTHING RETURNING 1)
       SELECT process_id::text FROM streams WHERE stream_id = $1::uuid AND NOT EXISTS (SELECT 1 FROM ins)
       UNION ALL SELECT process_id::text FROM claimed`,
      [
        s.stream_id, s.process_id, s.dependencies_metadata, s.objects_metadata, pgArray(s.tags),
        pgArray(s.properties.map((x) => x[0])), pgArray(s.properties.map((x) => x[1])),
      ],
    );
    const other = owner.find((o) => o.process_id !== s.process_id)?.process_id;
    if (other) throw new StreamOwnedElsewhere(belongsTo(s.stream_id, other));
  }

  /**
   * Inserts the batch; the rows it refuses are left out and returned with their reason (null when
   * none): a block whose stream is stored under another process, or (found by splitting the batch)
   * a row PostgreSQL refuses as data (SQLSTATE class 22/23). Any other error fails the whole batch.
   * Duplicates (retries) are dropped by the unique index.
   */
  async insertBlocks(rows: StoredBlock[]): Promise<RefusedRows | null> {
    const refused: RefusedRows = new Map();
    await this.insertOrSplit(rows, refused);
    return refused.size ? refused : null;
  }

  /** Halves a batch that PostgreSQL refused as data until the rows at fault stand alone: a few
   * statements per bad row (log2 of the batch), and every good row written. */
  private async insertOrSplit(rows: StoredBlock[], refused: RefusedRows): Promise<void> {
    if (!rows.length) return;
    try {
      for (const f of await this.insertBatch(rows)) refused.set(f.block_id, belongsTo(f.stream_id, f.owner));
    } catch (e) {
      if (!isDataError(e)) throw e;
      if (rows.length === 1) {
        refused.set(rows[0].block_id, `PostgreSQL refused the block: ${e.message}`);
        return;
      }
      const mid = rows.length >> 1;
      await this.insertOrSplit(rows.slice(0, mid), refused);
      await this.insertOrSplit(rows.slice(mid), refused);
    }
  }

  /** One statement: inserts the rows whose stream is unknown or theirs, returns the others. A block
   * may arrive before its stream (upstream accepts that), so an unknown stream is not refused. */
  private async insertBatch(rows: StoredBlock[]): Promise<{ block_id: string; stream_id: string; owner: string }[]> {
    const col = <K extends keyof StoredBlock>(k: K) => pgArray(rows.map((r) => r[k] as string | number | null));
    this.blockInserts++;
    return this.db.query(
      `WITH t AS (
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::int8[], $6::timestamptz[],
                              $7::int8[], $8::int4[], $9::int8[], $10::int8[], $11::text[], $12::int8[])
                AS t(b, s, p, bt, bk, et, ek, n, oo, ps, po, pf)),
       foreign_rows AS (
         SELECT t.b, t.s, st.process_id AS owner FROM t JOIN streams st ON st.stream_id = t.s WHERE st.process_id <> t.p),
       ins AS (
         INSERT INTO blocks (block_id, stream_id, process_id, begin_time, begin_ticks, end_time, end_ticks,
                             nb_objects, object_offset, payload_size, insert_time, payload_object, payload_offset)
         SELECT b, s, p, bt, bk, et, ek, n, oo, ps, now(), po, pf
         FROM t WHERE NOT EXISTS (SELECT 1 FROM foreign_rows f WHERE f.b = t.b)
         ON CONFLICT (block_id) DO NOTHING)
       SELECT b::text AS block_id, s::text AS stream_id, owner::text AS owner FROM foreign_rows`,
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
