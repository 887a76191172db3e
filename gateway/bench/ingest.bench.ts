// Ingestion benchmark. Prints a table and writes bench/results/gateway.json at the repo
// root as [{case, value, unit, peer, peer_value, ratio}] with ratio = ours / peer, every
// peer measured in the same run.
//  1. HTTP layer: uWS vs node:http, same decode, storage stubbed, server pinned to CPU 0,
//     wrk pinned to CPU 1 (the same for both servers). The server's and wrk's CPU time are
//     read from /proc, so rates are also given per server CPU-second (robust when other jobs
//     share the machine), and both CPU shares are printed: a server below 1 core with wrk
//     near 1 core means the load generator, not the server, set the rate. Each pair runs
//     BENCH_REPEAT times (default 4) interleaved, ours then peer; the table has the mean,
//     the notes every run's ratio. At 1 KiB both servers also run with no decode at all
//     (every request answered 200 unread): the HTTP layers' own ratio, the ceiling of the
//     same-decode ratio. Bare uWS.js (no adapter: body read, 200 after one resolved promise,
//     as a server acknowledging after an async write must) gives the most any adapter on
//     uWS.js can reach.
//  2. End to end: packed gateway vs upstream layout (one object per block), embedded
//     default and PostgreSQL + S3 (moto), driven by a Node client with distinct blocks.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tmpdir, cpus } from 'node:os';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { blockBody } from '../test/fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const gatewayBin = join(repoRoot, 'gateway', 'dist', 'src', 'main.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 4));
/** `http`: only the HTTP-layer cases (their rows replace the same cases in gateway.json). */
const ONLY = process.env.BENCH_ONLY ?? '';
const pinned = cpus().length >= 2;

interface Row {
  case: string;
  value: number;
  unit: string;
  peer: string;
  peer_value: number;
  ratio: number;
}
const rows: Row[] = [];
const tmpFiles: string[] = [];
process.on('exit', () => tmpFiles.forEach((f) => rmSync(f, { force: true })));
const notes: string[] = [];

function add(c: string, unit: string, value: number, peer: string, peerValue: number) {
  rows.push({ case: c, value: round(value), unit, peer, peer_value: round(peerValue), ratio: round(peerValue ? value / peerValue : 0) });
}
const round = (x: number) => Math.round(x * 1000) / 1000;

async function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; out: string[] }> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  return { child, out };
}

async function waitHealth(port: number) {
  for (let i = 0; i < 300; i++) {
    try {
      const s = await get(port, '/health');
      if (s.status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on ${port} did not come up`);
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

async function freePort(): Promise<number> {
  const mod = await import(pathToFileURL(join(repoRoot, 'scripts', 'test-services.mjs')).href);
  return mod.freePort();
}

/** utime + stime of a process, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15, USER_HZ = 100
}

function parseWrk(out: string) {
  const unit = (v: string, u: string) => Number(v) * ({ us: 1e-3, ms: 1, s: 1000 } as Record<string, number>)[u];
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
  const p = (q: string) => {
    const m = new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? unit(m[1], m[2]) : NaN;
  };
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw non-2xx replies:\n${out}`);
  return { rps, p50: p('50'), p99: p('99') };
}

/** One wrk run against a stub server; returns req/s, latencies and the server's and wrk's CPU time. */
async function httpLayer(kind: 'uws' | 'node', body: Buffer, mode: 'decode' | 'no-decode' | 'bare' | 'bare-decode' = 'decode') {
  const port = await freePort();
  const server = await start(pinned ? 'taskset' : process.execPath, [...(pinned ? ['-c', '0', process.execPath] : []), join(here, 'stub-server.js'), kind, String(port), mode]);
  await waitHealth(port);
  const bodyFile = join(tmpdir(), `gw-bench-${randomUUID()}.cbor`);
  writeFileSync(bodyFile, body);
  const lua = join(tmpdir(), `gw-bench-${randomUUID()}.lua`);
  tmpFiles.push(bodyFile, lua);
  writeFileSync(lua, `wrk.method = "POST"\nlocal f = io.open("${bodyFile}", "rb")\nwrk.body = f:read("*a")\nf:close()\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  const cpu0 = cpuSeconds(server.child.pid!);
  const wrkArgs = ['-t1', '-c50', `-d${SECONDS}s`, '--latency', '-s', lua, `http://127.0.0.1:${port}/ingestion/insert_block`];
  const before = Date.now();
  // wrk's own CPU, sampled from /proc while it runs (the last sample is within 100 ms of its end).
  let client = { cpu: 0, wall: 0 };
  const out = await new Promise<string>((resolve, reject) => {
    const w = spawn(pinned ? 'taskset' : 'wrk', pinned ? ['-c', '1', 'wrk', ...wrkArgs] : wrkArgs);
    const sampler = setInterval(() => {
      try {
        client = { cpu: cpuSeconds(w.pid!), wall: (Date.now() - before) / 1000 };
      } catch {}
    }, 100);
    let s = '';
    w.stdout.on('data', (d) => (s += d));
    w.on('exit', (code) => (clearInterval(sampler), code === 0 ? resolve(s) : reject(new Error(`wrk exited ${code}`))));
  });
  const wall = (Date.now() - before) / 1000;
  const cpu = cpuSeconds(server.child.pid!) - cpu0;
  server.child.kill('SIGKILL');
  const r = parseWrk(out);
  const total = Number(/(\d+) requests in/.exec(out)![1]);
  // Requests per CPU-second of the server: "per core" even when other jobs share the machine.
  return { ...r, wall, cpu, perCpuSecond: total / cpu, clientShare: client.wall ? client.cpu / client.wall : NaN };
}

/** Node client for end-to-end runs: distinct blocks, `concurrency` keep-alive sockets. */
async function endToEnd(port: number, bodies: Buffer[], concurrency: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const post = (body: Buffer) =>
    new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/ingestion/insert_block', method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', () => resolve(0));
      req.end(body);
    });
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline && next < bodies.length) {
        const b = bodies[next++];
        const s = process.hrtime.bigint();
        const status = await post(b);
        if (status === 200) lat.push(Number(process.hrtime.bigint() - s) / 1e6);
        else errors++;
      }
    }),
  );
  const secs = (Date.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const metrics = (await get(port, '/metrics')).body;
  const gauge = (n: string) => Number(new RegExp(`^${n} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
  return {
    rps: lat.length / secs,
    p50: lat[Math.floor(lat.length * 0.5)],
    p99: lat[Math.floor(lat.length * 0.99)],
    errors,
    objectsPerBlock: gauge('gateway_objects_written_total') / lat.length,
    rowsPerInsert: lat.length / gauge('gateway_block_insert_statements_total'),
  };
}

async function runGateway(args: string[], env: NodeJS.ProcessEnv) {
  const port = await freePort();
  const g = await start(process.execPath, [gatewayBin, '--listen', `127.0.0.1:${port}`, '--disable-auth', ...args], env);
  await waitHealth(port).catch((e) => {
    throw new Error(`${e.message}: ${g.out.join('')}`);
  });
  return { port, stop: () => g.child.kill('SIGKILL') };
}

async function main() {
  const pid = randomUUID();
  const sid = randomUUID();
  let wrkOk = true;
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (e) {
    wrkOk = (e as { status?: number }).status !== undefined; // wrk --version exits 1 but exists
  }
  if (!wrkOk) notes.push('wrk not installed: HTTP-layer cases skipped (apt-get install wrk)');
  else {
    type Run = Awaited<ReturnType<typeof httpLayer>>;
    const mean = (runs: Run[], f: (r: Run) => number) => runs.reduce((n, r) => n + f(r), 0) / runs.length;
    for (const size of [1024, 65536]) {
      const body = blockBody('rust', pid, sid, { size }).body;
      const label = size === 1024 ? '1KiB' : '64KiB';
      const ours: Run[] = [];
      const peer: Run[] = [];
      for (let i = 0; i < REPEAT; i++) {
        ours.push(await httpLayer('uws', body));
        peer.push(await httpLayer('node', body));
      }
      const rps = (r: Run) => r.rps;
      const perCpu = (r: Run) => r.perCpuSecond;
      add(`insert_block ${label} stubbed storage, req/s (server pinned to 1 core)`, 'req/s', mean(ours, rps), 'node:http same decode', mean(peer, rps));
      add(`insert_block ${label} stubbed storage, req per server CPU-second`, 'req/cpu-s', mean(ours, perCpu), 'node:http same decode', mean(peer, perCpu));
      add(`insert_block ${label} stubbed storage, payload MB per server CPU-second`, 'MB/cpu-s', (mean(ours, perCpu) * body.length) / 1e6, 'node:http same decode', (mean(peer, perCpu) * body.length) / 1e6);
      const share = (r: Run) => `${(r.cpu / r.wall).toFixed(2)}/${r.clientShare.toFixed(2)}`;
      for (let i = 0; i < REPEAT; i++) {
        notes.push(
          `${label} run ${i + 1}/${REPEAT}: req/s ratio ${(ours[i].rps / peer[i].rps).toFixed(2)} (${ours[i].rps.toFixed(0)} vs ${peer[i].rps.toFixed(0)}), ` +
            `per CPU-second ${(ours[i].perCpuSecond / peer[i].perCpuSecond).toFixed(2)}; server/wrk CPU cores: uWS ${share(ours[i])}, node:http ${share(peer[i])} ` +
            '(server 1.00 = saturated; below with wrk near 1.00 means the load generator limited it)',
        );
      }
      if (size === 1024) {
        // The ceiling of the ratio above: both servers answering without decoding anything.
        const bare: Run[] = [];
        const bareNode: Run[] = [];
        for (let i = 0; i < REPEAT; i++) {
          bare.push(await httpLayer('uws', body, 'no-decode'));
          bareNode.push(await httpLayer('node', body, 'no-decode'));
        }
        add(`insert_block ${label} no decode (HTTP layer only), req per server CPU-second`, 'req/cpu-s', mean(bare, perCpu), 'node:http no decode', mean(bareNode, perCpu));
        // uWS.js without our adapter (body read, 200 after one resolved promise), without and with
        // the same decode: the most any adapter on uWS.js can reach, and so the ceiling of each
        // ratio above on this machine.
        const raw: Run[] = [];
        const rawDecode: Run[] = [];
        const peerDecode: Run[] = [];
        for (let i = 0; i < REPEAT; i++) {
          raw.push(await httpLayer('uws', body, 'bare'));
          rawDecode.push(await httpLayer('uws', body, 'bare-decode'));
          peerDecode.push(await httpLayer('node', body));
        }
        add(`insert_block ${label} bare uWS.js, no adapter, async 200, req per server CPU-second`, 'req/cpu-s', mean(raw, perCpu), 'node:http no decode', mean(bareNode, perCpu));
        add(`insert_block ${label} our adapter, no decode, req per server CPU-second`, 'req/cpu-s', mean(bare, perCpu), 'bare uWS.js, async 200', mean(raw, perCpu));
        add(`insert_block ${label} bare uWS.js, no adapter, same decode, req per server CPU-second`, 'req/cpu-s', mean(rawDecode, perCpu), 'node:http same decode', mean(peerDecode, perCpu));
        add(`insert_block ${label} our adapter, same decode, req per server CPU-second`, 'req/cpu-s', mean(ours, perCpu), 'bare uWS.js, same decode', mean(rawDecode, perCpu));
      }
      add(`insert_block ${label} stubbed storage, p50 latency`, 'ms', mean(ours, (r) => r.p50), 'node:http same decode', mean(peer, (r) => r.p50));
      add(`insert_block ${label} stubbed storage, p99 latency`, 'ms', mean(ours, (r) => r.p99), 'node:http same decode', mean(peer, (r) => r.p99));
    }
  }
  if (ONLY === 'http') return finish(true);

  // End to end: distinct 1 KiB blocks so nothing is deduplicated.
  const bodies = Array.from({ length: 60000 }, () => blockBody('rust', pid, sid, { size: 1024 }).body);
  const e2e = async (name: string, args: () => string[], env: NodeJS.ProcessEnv) => {
    const packed = await runGateway([...args(), '--pack-max-delay-ms', '50'], env);
    const ours = await endToEnd(packed.port, bodies.slice(0, 30000), 64);
    packed.stop();
    const single = await runGateway([...args(), '--pack-max-bytes', '0'], env);
    const peer = await endToEnd(single.port, bodies.slice(30000), 64);
    single.stop();
    const peerName = 'same gateway, one object per block (upstream layout)';
    add(`e2e ${name} 1KiB blocks/s`, 'blocks/s', ours.rps, peerName, peer.rps);
    add(`e2e ${name} p50 latency`, 'ms', ours.p50, peerName, peer.p50);
    add(`e2e ${name} p99 latency`, 'ms', ours.p99, peerName, peer.p99);
    add(`e2e ${name} objects written per block`, 'objects/block', ours.objectsPerBlock, peerName, peer.objectsPerBlock);
    add(`e2e ${name} rows per INSERT`, 'rows', ours.rowsPerInsert, peerName, peer.rowsPerInsert);
    if (ours.errors || peer.errors) notes.push(`${name}: non-200 replies ours=${ours.errors} peer=${peer.errors}`);
  };
  const dirs: string[] = [];
  const dir = () => (dirs.push(join(tmpdir(), `gw-bench-${randomUUID()}`)), dirs[dirs.length - 1]);
  process.on('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  await e2e('embedded', () => ['--data-dir', dir()], process.env);

  const services = await (await import(pathToFileURL(join(repoRoot, 'scripts', 'test-services.mjs')).href)).startServices({});
  try {
    const env = { ...process.env, ...services.env, AWS_ENDPOINT_URL: services.env.MICROMEGAS_TEST_S3_ENDPOINT };
    await e2e('postgres+s3', () => ['--pg-url', services.env.MICROMEGAS_TEST_PG_URL, '--object-store', `s3://${services.env.MICROMEGAS_TEST_S3_BUCKET}/${randomUUID()}`], env);
  } finally {
    await services.stop();
  }

  return finish(false);
}

function finish(partial: boolean) {
  const outDir = join(repoRoot, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'gateway.json');
  let out = rows;
  if (partial) {
    // Keep the cases this run did not measure.
    let old: Row[] = [];
    try {
      old = JSON.parse(readFileSync(file, 'utf8')) as Row[];
    } catch {}
    const mine = new Set(rows.map((r) => r.case));
    out = [...rows, ...old.filter((r) => !mine.has(r.case))];
  }
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  const w = Math.max(...rows.map((r) => r.case.length));
  process.stdout.write(`${'case'.padEnd(w)}  ${'ours'.padStart(12)}  ${'peer'.padStart(12)}  ${'ratio'.padStart(7)}  unit / peer\n`);
  for (const r of rows) {
    process.stdout.write(`${r.case.padEnd(w)}  ${String(r.value).padStart(12)}  ${String(r.peer_value).padStart(12)}  ${String(r.ratio).padStart(7)}  ${r.unit} / ${r.peer}\n`);
  }
  process.stdout.write(`server pinned to CPU 0 and wrk to CPU 1: ${pinned}; ${SECONDS} s per run, ${REPEAT} runs per HTTP-layer pair\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  process.stdout.write(`wrote ${file}${partial ? ' (HTTP-layer cases only; other cases kept)' : ''}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(String(e?.stack ?? e) + '\n');
    process.exit(1);
  },
);
