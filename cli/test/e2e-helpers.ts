// Plumbing for the end-to-end tests: the real `micromegas serve` as a child process, the
// game simulator and the Node demo app as clients, and what each client says it sent.
// Every child is spawned asynchronously and killed at the end (even when a test fails).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIMULATOR, query } from '../src/demo.js';

export { SIMULATOR, query };
export const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
export const DEMO_APP = fileURLToPath(new URL('../src/demo-app.js', import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- children: tracked so that cleanup() (and process exit) can kill whatever is left ----

interface Tracked {
  child: ChildProcess;
  group: boolean;
}
const live = new Set<Tracked>();

function killTracked(t: Tracked, signal: NodeJS.Signals): void {
  if (t.child.exitCode !== null || t.child.signalCode !== null || !t.child.pid) return;
  try {
    // A detached child leads its own process group: the simulator's forked processes go too.
    if (t.group) process.kill(-t.child.pid, signal);
    else t.child.kill(signal);
  } catch {}
}

/** Kills every child still running (and the processes a simulator forked). */
export function cleanup(): void {
  for (const t of live) killTracked(t, 'SIGKILL');
  live.clear();
}
process.on('exit', cleanup);

export interface Child {
  child: ChildProcess;
  output: string[];
  text(): string;
  /** Resolves with the exit code, or the signal name. */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, group: boolean): Child {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  const t = { child, group };
  live.add(t);
  const output: string[] = [];
  child.stdout!.on('data', (d) => output.push(String(d)));
  child.stderr!.on('data', (d) => output.push(String(d)));
  const exited = new Promise<number | string>((resolve, reject) => {
    child.once('error', reject);
    // 'close': the exit and every byte of output (forked children write to the same pipes).
    child.once('close', (code, signal) => {
      live.delete(t);
      resolve(code ?? signal ?? -1);
    });
  });
  return { child, output, text: () => output.join(''), exited, kill: (s) => killTracked(t, s) };
}

/** SIGTERM, then SIGKILL if the child is still there after graceMs; resolves once it is gone. */
export async function stop(c: Child, graceMs = 30_000): Promise<number | string> {
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
  try {
    return await c.exited;
  } finally {
    clearTimeout(timer);
  }
}

// ---- the server ----

/** A free loopback port: the test services' picker (scripts/test-services.mjs). */
export async function freePort(): Promise<number> {
  const services = new URL('../../../scripts/test-services.mjs', import.meta.url).href;
  const { freePort: pick } = (await import(services)) as { freePort: () => Promise<number> };
  return pick();
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** How a connection attempt ends: 'up' (an HTTP answer), or the socket error code. */
export async function probe(url: string): Promise<string> {
  try {
    await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
    return 'up';
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return cause?.code ?? (e as Error).name;
  }
}

export interface ServerChild extends Child {
  url: string;
}

/** `micromegas serve` in a child process; resolves once /health answers. */
export async function startServe(port: number, dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerChild> {
  const c = start(process.execPath, [MAIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...extra], env, false);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  let exit: number | string | undefined;
  c.exited.then((x) => (exit = x));
  for (;;) {
    if (exit !== undefined) throw new Error(`micromegas serve exited (${exit}):\n${c.text()}`);
    if ((await probe(url)) === 'up') break;
    if (Date.now() > deadline) {
      c.kill('SIGKILL');
      throw new Error(`micromegas serve did not answer /health within 120 s:\n${c.text()}`);
    }
    await sleep(50);
  }
  return { ...c, url };
}

// ---- clients and what they report ----

export interface SimTotals {
  processId: string;
  index: number;
  spans: number;
  logs: number;
  metrics: number;
  retries: number;
  blocksDropped: number;
}

/** One entry per simulated process, from its stats and MM_SIM_TOTALS lines. */
export function parseSim(stdout: string): SimTotals[] {
  const stats = new Map<string, { retries: number; dropped: number }>();
  // "process 3 (<uuid>): ...\n  recorded: ...\n  stats: ... retries R, blocks dropped D ..." is one write per process.
  for (const m of stdout.matchAll(/^process \d+ \(([0-9a-f-]{36})\):.*\n.*\n\s+stats: .*retries (\d+), blocks dropped (\d+)/gm)) {
    stats.set(m[1], { retries: Number(m[2]), dropped: Number(m[3]) });
  }
  return [...stdout.matchAll(/^MM_SIM_TOTALS spans=(\d+) logs=(\d+) metrics=(\d+) process_id=([0-9a-f-]{36}) index=(\d+)$/gm)].map((m) => ({
    spans: Number(m[1]),
    logs: Number(m[2]),
    metrics: Number(m[3]),
    processId: m[4],
    index: Number(m[5]),
    retries: stats.get(m[4])?.retries ?? -1,
    blocksDropped: stats.get(m[4])?.dropped ?? -1,
  }));
}

export function startSim(url: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return start(SIMULATOR, ['--url', url, ...args], env, true);
}

export interface AppTotals {
  processId: string;
  requests: number;
  logs: number;
  metrics: number;
  asyncSpans: number;
  blocksDropped: number;
  retries: number;
}

export function parseApp(stdout: string): AppTotals | null {
  const m = /^DEMO_APP_TOTALS (.*)$/m.exec(stdout);
  if (!m) return null;
  const kv = Object.fromEntries([...m[1].matchAll(/(\w+)=(\S+)/g)].map((x) => [x[1], x[2]]));
  return {
    processId: kv.process_id,
    requests: Number(kv.requests),
    logs: Number(kv.logs),
    metrics: Number(kv.metrics),
    asyncSpans: Number(kv.async_spans),
    blocksDropped: Number(kv.blocks_dropped),
    retries: Number(kv.retries),
  };
}

export function startDemoApp(url: string, seconds: number, env: NodeJS.ProcessEnv = {}): Child {
  return start(process.execPath, [DEMO_APP], { MICROMEGAS_TELEMETRY_URL: url, DEMO_SECONDS: String(seconds), ...env }, false);
}

// ---- SQL ----

/** A range that covers the whole test run. */
export function wholeRun(startedMs: number) {
  return { begin: new Date(startedMs - 3600_000).toISOString(), end: new Date(Date.now() + 3600_000).toISOString() };
}

export async function countBy(url: string, table: string, range: { begin: string; end: string }, where = 'true'): Promise<Map<string, number>> {
  const rows = await query(url, `SELECT process_id, count(*) AS n FROM ${table} WHERE ${where} GROUP BY process_id`, range);
  return new Map(rows.map((r) => [String(r.process_id), Number(r.n)]));
}

/** The measures a client recorded itself: the native core adds its own drop counters when it drops. */
export const OWN_MEASURES = "name NOT LIKE 'micromegas.telemetry.%'";

/** thread_spans of one process: the view is per stream, so one view_instance per cpu stream. */
export async function threadSpans(url: string, processId: string, range: { begin: string; end: string }): Promise<number> {
  const streams = await query(url, `SELECT stream_id FROM streams WHERE process_id = '${processId}' AND array_has(tags, 'cpu')`, range);
  let n = 0;
  for (const s of streams) {
    const [row] = await query(url, `SELECT count(*) AS n FROM view_instance('thread_spans', '${s.stream_id}')`, range);
    n += Number(row.n);
  }
  return n;
}
