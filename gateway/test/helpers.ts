// Shared test plumbing: real services (from the root runner's env, or started here),
// a no-keep-alive HTTP client, and gateway factories.

import http from 'node:http';
import { mkdtempSync } from 'node:fs';
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

export function tempDir(prefix = 'micromegas-gw-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
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
