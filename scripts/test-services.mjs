// Starts the real services the tests need, on 127.0.0.1 and free ports:
//  - PostgreSQL 15 (Debian's server binaries), initdb into a temp dir owned by `postgres`
//    (postgres refuses to run as root, so it runs via `runuser -u postgres`);
//  - an S3-compatible server: moto (PyPI) in a venv under ~/.cache/micromegas/venv.
//    moto honours conditional PUT (If-None-Match: *), which create-only writes need.
// Usage: `const { env, stop } = await startServices({ log })`, or run this file to print
// the env as JSON and keep the services up until SIGINT/SIGTERM.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, chownSync, existsSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

const PG_BIN = process.env.MICROMEGAS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const VENV = join(homedir(), '.cache', 'micromegas', 'venv');
const MOTO_VERSION = '5.2.5';
const BUCKET = 'micromegas-test';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const isRoot = process.getuid?.() === 0;

function asPostgres(cmd, args) {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

async function waitFor(what, probe, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** PostgreSQL that can be stopped and started again on the same port and data. */
async function startPostgres(log) {
  const dir = mkdtempSync(join(tmpdir(), 'micromegas-pg-'));
  if (isRoot) {
    chmodSync(dir, 0o700);
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const [c, a] = asPostgres(join(PG_BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  execFileSync(c, a, { stdio: 'ignore' });
  const port = await freePort();
  let child = null;
  const start = async () => {
    const [cmd, args] = asPostgres(join(PG_BIN, 'postgres'), [
      '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200',
    ]);
    child = spawn(cmd, args, { stdio: 'ignore' });
    const [rc, ra] = asPostgres(join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']);
    await waitFor('postgres', () => {
      try {
        execFileSync(rc, ra, { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    log?.(`postgres on 127.0.0.1:${port}`);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = null;
    const exited = new Promise((r) => c.once('exit', r));
    // SIGQUIT = immediate shutdown (crash-like); committed data survives via WAL. It goes
    // to the postmaster itself (first line of postmaster.pid): runuser does not forward it.
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(postmaster, 'SIGQUIT');
    await exited;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function ensureMoto(log) {
  const bin = join(VENV, 'bin', 'moto_server');
  if (existsSync(bin)) return bin;
  log?.(`installing moto ${MOTO_VERSION} into ${VENV}`);
  execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(join(VENV, 'bin', 'pip'), ['install', '-q', `moto[server]==${MOTO_VERSION}`], { stdio: 'inherit' });
  return bin;
}

/**
 * moto keeps objects in memory, so an "outage" cannot be a restart. The S3 endpoint the
 * gateway sees is a TCP proxy in front of moto; `stop()` refuses and cuts connections,
 * `start()` lets them through again, and the stored objects survive.
 */
async function startS3(log) {
  const bin = ensureMoto(log);
  const motoPort = await freePort();
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(motoPort)], { stdio: 'ignore' });
  await waitFor('moto', () => tcpOpen(motoPort));
  const port = await freePort();
  let up = true;
  const conns = new Set();
  const proxy = net.createServer((c) => {
    if (!up) return c.destroy();
    const u = net.connect(motoPort, '127.0.0.1');
    conns.add(c).add(u);
    const drop = () => (c.destroy(), u.destroy(), conns.delete(c), conns.delete(u));
    c.on('error', drop).on('close', drop);
    u.on('error', drop).on('close', drop);
    c.pipe(u).pipe(c);
  });
  await new Promise((r) => proxy.listen(port, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${port}`;
  // Bucket creation through plain HTTP: moto does not check signatures.
  const res = await fetch(`${endpoint}/${BUCKET}`, { method: 'PUT' });
  if (!res.ok) throw new Error(`cannot create bucket: ${res.status} ${await res.text()}`);
  log?.(`moto S3 on ${endpoint} (moto itself on ${motoPort})`);
  return {
    endpoint,
    start: async () => {
      up = true;
    },
    stop: async () => {
      up = false;
      for (const c of conns) c.destroy();
      conns.clear();
    },
    async destroy() {
      up = false;
      for (const c of conns) c.destroy();
      await new Promise((r) => proxy.close(r));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function startServices({ log } = {}) {
  const [pg, s3] = await Promise.all([startPostgres(log), startS3(log)]);
  return {
    env: {
      MICROMEGAS_TEST_PG_URL: pg.url,
      MICROMEGAS_TEST_S3_ENDPOINT: s3.endpoint,
      MICROMEGAS_TEST_S3_BUCKET: BUCKET,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
    },
    /** Fault injection for outage tests (not part of the env contract). */
    pg,
    s3,
    async stop() {
      await Promise.allSettled([pg.destroy(), s3.destroy()]);
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const services = await startServices({ log: (m) => process.stderr.write(m + '\n') });
  process.stdout.write(JSON.stringify(services.env, null, 2) + '\n');
  const stop = () => services.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
