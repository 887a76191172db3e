// The `keys` command of both bins (micromegas-gateway, micromegas): mint, list and revoke API keys.
import { userInfo } from 'node:os';
import type { GatewayConfig } from './config.js';
import { openDatabase } from './storage.js';
import { createKey, listKeys, revokeKey } from './auth/api-keys.js';

/** `<program> keys create <name> | list | revoke <id|name>`: API keys minted into the database
 * (only their hashes are stored). Returns the exit code. */
export async function keysCommand(config: GatewayConfig, args: string[], program: string): Promise<number> {
  const [cmd, arg] = args;
  if (!config.pgUrl) {
    // The embedded default checks MICROMEGAS_API_KEYS only: a key minted into PGlite would never be asked for.
    process.stderr.write(`${program} keys: minted keys live in PostgreSQL; give --pg-url (env MICROMEGAS_SQL_CONNECTION_STRING). The embedded default checks MICROMEGAS_API_KEYS only.\n`);
    return 2;
  }
  const db = await openDatabase(config);
  try {
    if (cmd === 'create' && arg) {
      const k = await createKey(db, arg, userInfo().username);
      process.stdout.write(JSON.stringify(k) + '\n');
    } else if (cmd === 'list') {
      for (const k of await listKeys(db)) process.stdout.write(JSON.stringify(k) + '\n');
    } else if (cmd === 'revoke' && arg) {
      const n = await revokeKey(db, arg, userInfo().username);
      process.stdout.write(JSON.stringify({ revoked: n }) + '\n');
      if (!n) return 1;
    } else {
      process.stderr.write(`usage: ${program} keys create <name> | list | revoke <id|name>\n`);
      return 2;
    }
    return 0;
  } finally {
    await db.close();
  }
}
