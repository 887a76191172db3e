// Shared test plumbing: real services (from the root runner's env, or started here),
// a no-keep-alive HTTP client, and gateway factories.

import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGateway, defaultConfig, silentLogger, type Gateway, type GatewayConfig } from '../src/index.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const gatewayBin = join(repoRoot, 'gateway', 'dist', 'src', 'main.js');

export interface Services {
  env: Record<string, string>;
  pg?: { stop(): Promise<void>; start(): Promise<void> };
  s3?: { stop(): Promise<void>; start(): Promise<void> };
  stop(): Promise<void>;
}

/** Uses the services the root runner started, or starts our own (standalone run). */
export async function getServices(): Promise<Services> {
  if (process.env.MICROMEGAS_TEST_PG_URL) {
    const env = Object.fromEntries(
      ['MICROMEGAS_TEST_PG_URL', 'MICROMEGAS_TEST_S3_ENDPOINT', 'MICROMEGAS_TEST_S3_BUCKET', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'].map(
        (k) => [k, process.env[k] ?? ''],
      ),
    );
    return { env, stop: async () => {} };
  }
  const mod = await import(pathToFileURL(join(repoRoot, 'scripts', 'test-services.mjs')).href);
  return mod.startServices({});
}

/** Points the AWS SDK at the test S3 server (the SDK reads these from the environment). */
export function useS3Env(env: Record<string, string>): void {
  process.env.AWS_ACCESS_KEY_ID = env.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = env.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_REGION = env.AWS_REGION;
  process.env.AWS_ENDPOINT_URL = env.MICROMEGAS_TEST_S3_ENDPOINT;
}

/** A fresh schema per gateway so suites sharing one PostgreSQL do not see each other. */
export async function freshDatabase(pgUrl: string): Promise<string> {
  const pg = (await import('pg')).default;
  const name = 'gw_' + Math.random().toString(36).slice(2, 10);
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(pgUrl);
  u.pathname = '/' + name;
  return u.toString();
}

const tempDirs: string[] = [];
process.on('exit', () => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A temporary directory removed when the test process exits. */
export function tempDir(prefix = 'micromegas-gw-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

export async function embeddedGateway(over: Partial<GatewayConfig> = {}): Promise<{ gw: Gateway; port: number; config: GatewayConfig }> {
  const config = defaultConfig({ dataDir: tempDir(), packMaxDelayMs: 5, ...over });
  const gw = await createGateway(config, { log: silentLogger });
  const port = await gw.listen();
  return { gw, port, config };
}

export interface Res {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** POST/GET without keep-alive, so a drained server has no idle connections left. */
export function request(port: number, path: string, body?: Buffer, headers: Record<string, string> = {}, method = body ? 'POST' : 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface Spawned {
  child: import('node:child_process').ChildProcess;
  port: number;
  logs: string[];
  exited: Promise<number | null>;
}

/** Runs the real CLI and waits for /health. */
export async function spawnGateway(args: string[], env: Record<string, string>): Promise<Spawned> {
  const { spawn } = await import('node:child_process');
  const { freePort } = await import(pathToFileURL(join(repoRoot, 'scripts', 'test-services.mjs')).href);
  const port: number = await freePort();
  const child = spawn(process.execPath, [gatewayBin, '--listen', `127.0.0.1:${port}`, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  child.stdout!.on('data', (d) => logs.push(String(d)));
  child.stderr!.on('data', (d) => logs.push(String(d)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${logs.join('')}`);
    try {
      if ((await request(port, '/health')).status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`gateway did not start: ${logs.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, logs, exited };
}

/**
 * Posts blocks from `concurrency` loops until `stop()` is called; records which block
 * ids were acknowledged (200) and every status seen. Network errors count as status 0.
 */
export function loadGenerator(port: () => number, processId: string, streamId: string, concurrency: number, size = 2048) {
  const acked: { blockId: string; payload: Buffer }[] = [];
  const statuses = new Map<number, number>();
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    const { blockBody } = await import('./fixtures.js');
    while (running) {
      const b = blockBody('rust', processId, streamId, { size });
      let status = 0;
      try {
        status = (await request(port(), '/ingestion/insert_block', b.body)).status;
      } catch {}
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 200) acked.push({ blockId: b.blockId, payload: b.expectedPayload });
      else await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    acked,
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
