// Versioned schema. Tables and column order follow upstream micromegas (positional
// readers depend on it); blocks gains payload_object/payload_offset for packing.
// Applied under pg_advisory_xact_lock(0) so concurrent gateways migrate once.

import type { SqlClient } from './sql.js';

const MIGRATIONS: string[] = [
  // v1: upstream's data-lake tables (its schema v1..v4 folded together) plus packing columns.
  `
  CREATE TYPE micromegas_property AS (key TEXT, value TEXT);
  CREATE TABLE processes(
    process_id UUID, exe VARCHAR(255), username VARCHAR(255), realname VARCHAR(255),
    computer VARCHAR(255), distro VARCHAR(255), cpu_brand VARCHAR(255),
    tsc_frequency BIGINT, start_time TIMESTAMPTZ, start_ticks BIGINT,
    insert_time TIMESTAMPTZ, parent_process_id UUID, properties micromegas_property[]);
  CREATE TABLE streams(
    stream_id UUID, process_id UUID, dependencies_metadata BYTEA, objects_metadata BYTEA,
    tags TEXT[], properties micromegas_property[], insert_time TIMESTAMPTZ,
    format TEXT NOT NULL DEFAULT 'micromegas-transit');
  CREATE TABLE blocks(
    block_id UUID, stream_id UUID, process_id UUID, begin_time TIMESTAMPTZ,
    begin_ticks BIGINT, end_time TIMESTAMPTZ, end_ticks BIGINT, nb_objects INT,
    object_offset BIGINT, payload_size BIGINT, insert_time TIMESTAMPTZ,
    payload_object TEXT, payload_offset BIGINT);
  CREATE INDEX parent_process_id ON processes(parent_process_id);
  CREATE INDEX process_start_time ON processes(start_time);
  CREATE INDEX process_insert_time ON processes(insert_time);
  CREATE UNIQUE INDEX processes_process_id_unique ON processes(process_id);
  CREATE INDEX stream_process_id ON streams(process_id);
  CREATE INDEX stream_insert_time ON streams(insert_time);
  CREATE UNIQUE INDEX streams_stream_id_unique ON streams(stream_id);
  CREATE INDEX block_stream_id ON blocks(stream_id);
  CREATE INDEX block_begin_time ON blocks(begin_time);
  CREATE INDEX block_end_time ON blocks(end_time);
  CREATE INDEX block_insert_time ON blocks(insert_time);
  CREATE UNIQUE INDEX blocks_block_id_unique ON blocks(block_id);
  `,
  // v2: ingestion API keys, stored as SHA-256 hashes only (upstream's v5 table).
  `
  CREATE TABLE ingestion_api_keys(
    key_id UUID PRIMARY KEY, key_hash BYTEA UNIQUE NOT NULL, name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), created_by TEXT,
    last_used_at TIMESTAMPTZ, revoked_at TIMESTAMPTZ, revoked_by TEXT);
  `,
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.length;

export async function migrate(db: SqlClient): Promise<number> {
  return db.transaction(async (q) => {
    await q('SELECT pg_advisory_xact_lock(0)');
    await q('CREATE TABLE IF NOT EXISTS migration(version INTEGER)');
    const rows = await q<{ version: number }>('SELECT version FROM migration');
    let version = rows.length ? Number(rows[0].version) : 0;
    if (!rows.length) await q('INSERT INTO migration VALUES (0)');
    if (version > LATEST_SCHEMA_VERSION) {
      throw new Error(`database schema v${version} is newer than this gateway (v${LATEST_SCHEMA_VERSION})`);
    }
    for (; version < LATEST_SCHEMA_VERSION; version++) {
      for (const stmt of MIGRATIONS[version].split(';').map((s) => s.trim()).filter(Boolean)) {
        await q(stmt);
      }
      await q('UPDATE migration SET version = $1', [version + 1]);
    }
    return version;
  });
}
