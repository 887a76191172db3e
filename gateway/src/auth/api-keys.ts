// API-key authentication: keys from MICROMEGAS_API_KEYS (compared in constant time on
// their SHA-256 digests) and keys minted into ingestion_api_keys (only hashes stored).
// Validated DB lookups are cached briefly so a revocation takes effect within the TTL.

import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { SqlClient } from '../store/sql.js';

export class AuthUnavailable extends Error {}

export interface EnvKey {
  name: string;
  key: string;
}

export function parseEnvKeys(json: string | undefined): EnvKey[] {
  if (!json) return [];
  const v = JSON.parse(json) as unknown;
  if (!Array.isArray(v) || !v.every((k) => typeof k?.name === 'string' && typeof k?.key === 'string')) {
    throw new Error('MICROMEGAS_API_KEYS must be a JSON array of {"name", "key"}');
  }
  return v as EnvKey[];
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

const CACHE_TTL_MS = 10_000;
const CACHE_MAX = 10_000;

export class ApiKeyAuth {
  private readonly envDigests: { name: string; digest: Buffer }[];
  private readonly cache = new Map<string, { name: string | null; until: number }>();

  constructor(envKeys: EnvKey[], private readonly db: SqlClient | null) {
    this.envDigests = envKeys.map((k) => ({ name: k.name, digest: sha256(k.key) }));
  }

  /** Returns the key name, or null when the header holds no valid key. */
  async check(authorization: string | undefined): Promise<string | null> {
    if (!authorization?.startsWith('Bearer ')) return null;
    const digest = sha256(authorization.slice(7));
    let match: string | null = null;
    // Compare against every env key so timing does not reveal which one matched.
    for (const k of this.envDigests) if (timingSafeEqual(k.digest, digest)) match = k.name;
    if (match || !this.db) return match;
    const hex = digest.toString('hex');
    const hit = this.cache.get(hex);
    if (hit && hit.until > Date.now()) return hit.name;
    let rows: { key_id: string; name: string }[];
    try {
      rows = await this.db.query(
        'SELECT key_id::text, name FROM ingestion_api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
        [digest],
      );
    } catch (e) {
      throw new AuthUnavailable(String(e));
    }
    const name = rows[0]?.name ?? null;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(hex, { name, until: Date.now() + CACHE_TTL_MS });
    if (rows[0]) {
      // Refreshed at most once per cache period per key.
      this.db.query('UPDATE ingestion_api_keys SET last_used_at = now() WHERE key_id = $1', [rows[0].key_id]).catch(() => {});
    }
    return name;
  }
}

export interface KeyInfo {
  key_id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** Mints a key; the clear text is returned once and never stored. */
export async function createKey(db: SqlClient, name: string, by: string): Promise<{ key_id: string; key: string }> {
  const key = 'mmk_' + randomBytes(32).toString('base64url');
  const key_id = randomUUID();
  await db.query('INSERT INTO ingestion_api_keys(key_id, key_hash, name, created_by) VALUES ($1, $2, $3, $4)', [
    key_id,
    sha256(key),
    name,
    by,
  ]);
  return { key_id, key };
}

export async function listKeys(db: SqlClient): Promise<KeyInfo[]> {
  return db.query<KeyInfo>(
    `SELECT key_id::text, name, created_at::text, last_used_at::text, revoked_at::text
     FROM ingestion_api_keys ORDER BY created_at`,
  );
}

/** Revokes by key id or by name; returns how many keys were revoked. */
export async function revokeKey(db: SqlClient, idOrName: string, by: string): Promise<number> {
  const rows = await db.query(
    `UPDATE ingestion_api_keys SET revoked_at = now(), revoked_by = $2
     WHERE revoked_at IS NULL AND (key_id::text = lower($1) OR name = $1) RETURNING key_id`,
    [idOrName, by],
  );
  return rows.length;
}
