// Opens the configured metadata database and object store (embedded default when
// nothing is configured) and applies migrations.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayConfig } from './config.js';
import { LocalDirStore } from './store/local-dir.js';
import { S3Store } from './store/s3.js';
import type { ObjectStore } from './store/objects.js';
import { pgClient } from './store/pg.js';
import { pgliteClient } from './store/pglite.js';
import type { SqlClient } from './store/sql.js';
import { migrate } from './store/migrations.js';

export function openObjectStore(config: Pick<GatewayConfig, 'objectStoreUri' | 'dataDir'>): ObjectStore {
  const uri = config.objectStoreUri;
  if (!uri) return new LocalDirStore(join(config.dataDir, 'objects'));
  if (uri.startsWith('file://')) return new LocalDirStore(fileURLToPath(uri));
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (s3) return new S3Store({ bucket: s3[1], prefix: s3[2] });
  throw new Error(`unsupported object store URI '${uri}' (use file:///dir or s3://bucket/prefix)`);
}

export async function openDatabase(config: Pick<GatewayConfig, 'pgUrl' | 'dataDir' | 'pgPoolSize'>): Promise<SqlClient> {
  if (!config.pgUrl) mkdirSync(config.dataDir, { recursive: true });
  const db = config.pgUrl ? pgClient(config.pgUrl, config.pgPoolSize) : await pgliteClient(join(config.dataDir, 'pglite'));
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
  return db;
}
