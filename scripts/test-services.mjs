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
import { Worker } from 'node:worker_threads';

const PG_BIN = process.env.MICROMEGAS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const VENV = join(homedir(), '.cache', 'micromegas', 'venv');
const MOTO_VERSION = '5.2.5';
const BUCKET = 'micromegas-test';

/** A free loopback port below Linux's ephemeral range (32768+). A port the kernel hands out for
 * listen(0) comes from that range, and an outgoing connection's local end could take it before
 * the server binds it (a CI run lost a test to that once). */
export async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
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
 * The S3 TCP proxy runs in its own worker thread. It must not depend on the caller's event
 * loop: the root runner starts the services and then blocks in spawnSync() while the test
 * suites run, and a proxy on that (blocked) loop would accept connections and never forward
 * a byte, so every S3 request through it hangs until the SDK's request timeout.
 */
const PROXY_WORKER = `
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
let up = true;
const conns = new Set();
const proxy = net.createServer((c) => {
  if (!up) return c.destroy();
  const u = net.connect(workerData.motoPort, '127.0.0.1');
  conns.add(c).add(u);
  const drop = () => (c.destroy(), u.destroy(), conns.delete(c), conns.delete(u));
  c.on('error', drop).on('close', drop);
  u.on('error', drop).on('close', drop);
  c.pipe(u).pipe(c);
});
proxy.listen(0, '127.0.0.1', () => parentPort.postMessage({ listening: proxy.address().port }));
parentPort.on('message', ({ id, cmd }) => {
  const done = () => parentPort.postMessage({ id });
  if (cmd === 'start') {
    up = true;
    return done();
  }
  up = false;
  for (const c of conns) c.destroy();
  conns.clear();
  if (cmd === 'close') return proxy.close(() => (done(), parentPort.close()));
  done();
});
`;

function startProxy(motoPort) {
  return new Promise((resolve, reject) => {
    // A data: URL is always an ES module, whatever --input-type the caller was started with.
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(PROXY_WORKER)}`), { workerData: { motoPort } });
    // Never keeps the caller alive by itself; destroy() closes it explicitly.
    worker.unref();
    let next = 0;
    const pending = new Map();
    const call = (cmd) =>
      new Promise((res) => {
        const id = ++next;
        pending.set(id, res);
        worker.postMessage({ id, cmd });
      });
    worker.once('error', reject);
    worker.on('message', (m) => {
      if (m.listening) {
        resolve({ port: m.listening, start: () => call('start'), stop: () => call('stop'), close: () => call('close').then(() => worker.terminate()) });
      } else {
        pending.get(m.id)?.();
        pending.delete(m.id);
      }
    });
  });
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
  let proxy;
  let endpoint;
  try {
    await waitFor('moto', () => tcpOpen(motoPort));
    proxy = await startProxy(motoPort);
    endpoint = `http://127.0.0.1:${proxy.port}`;
    // Bucket creation through plain HTTP: moto does not check signatures.
    const res = await fetch(`${endpoint}/${BUCKET}`, { method: 'PUT' });
    if (!res.ok) throw new Error(`cannot create bucket: ${res.status} ${await res.text()}`);
  } catch (e) {
    await proxy?.close().catch(() => {});
    child.kill('SIGTERM');
    throw e;
  }
  log?.(`moto S3 on ${endpoint} (moto itself on ${motoPort})`);
  return {
    endpoint,
    start: () => proxy.start(),
    stop: () => proxy.stop(),
    async destroy() {
      await proxy.close();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function startServices({ log } = {}) {
  const started = await Promise.allSettled([startPostgres(log), startS3(log)]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // Do not leave a half-started pair running behind a failed start.
    await Promise.allSettled(started.filter((r) => r.status === 'fulfilled').map((r) => r.value.destroy()));
    throw failed.reason;
  }
  const [pg, s3] = started.map((r) => r.value);
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
