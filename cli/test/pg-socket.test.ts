// The embedded PostgreSQL (PGlite, served to the Rust engine) is reachable only by this user's
// processes: a Unix socket in a 0700 directory, no TCP port. PGlite checks no password, so a
// loopback port would let any local process read and write every row, API keys or not.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { silentLogger } from '@micromegas/gateway';
import { serve, type Server } from '../src/serve.js';
import { query } from '../src/demo.js';

let server: Server | undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'mm-pgsocket-'));
before(async () => {
  server = await serve(['--listen', '127.0.0.1:0', '--data-dir', dataDir], silentLogger);
});
after(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const socketDir = () => {
  assert.ok(server?.sqlSocketDir, 'serve reports the directory of its PostgreSQL socket');
  return server.sqlSocketDir;
};

/** TCP ports this process listens on, from /proc: a socket's inode links its fd to its table row. */
function listeningTcpPorts(): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {} // an fd closed while listing
  }
  const ports = new Set<number>();
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const row of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const f = row.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex, st 0A is LISTEN, f[9] the inode.
      if (f[3] === '0A' && inodes.has(f[9])) ports.add(parseInt(f[1].split(':')[1], 16));
    }
  }
  return [...ports];
}

test('the server listens on one TCP port, its HTTP one: PostgreSQL has none', async () => {
  const httpPort = Number(new URL(server!.url).port);
  assert.deepEqual(listeningTcpPorts(), [httpPort]);
  // And the engine, which reads PostgreSQL through the socket, answers SQL.
  const rows = await query(server!.url, 'SELECT count(*) AS n FROM processes');
  assert.equal(Number(rows[0].n), 0);
});

test("the socket lives in a directory only this user can open (0700) and is itself 0600", () => {
  const dir = socketDir();
  const d = statSync(dir);
  assert.ok(d.isDirectory());
  assert.equal(d.mode & 0o777, 0o700, `mode of ${dir}`);
  assert.equal(d.uid, process.getuid!());
  const s = statSync(join(dir, '.s.PGSQL.5432'));
  assert.ok(s.isSocket());
  assert.equal(s.mode & 0o777, 0o600);
  assert.equal(s.uid, process.getuid!());
});

test('a PostgreSQL client of this user connects through it (libpq host=<dir>), as the Rust engine does', async () => {
  const client = new pg.Client({ host: socketDir(), user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT 1 AS one');
    assert.equal(rows[0].one, 1);
  } finally {
    await client.end();
  }
});

test('a process of another user cannot connect (EACCES)', { skip: process.getuid!() !== 0 && 'switching to another user needs root; the mode test above covers the rule' }, async () => {
  // `nobody` (uid 65534) opens the socket the engine uses.
  const script = `
    const net = require('node:net');
    const s = net.connect(process.argv[1]);
    s.on('connect', () => { console.log('connected'); process.exit(0); });
    s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', script, join(socketDir(), '.s.PGSQL.5432')], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, out);
  assert.equal(out.trim(), 'EACCES');
});

test('closing the server removes the socket and its directory', async () => {
  const dir = socketDir();
  await server!.close();
  server = undefined;
  assert.equal(existsSync(dir), false);
});
