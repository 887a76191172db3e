#!/usr/bin/env node
// CLI: parse config, wire the gateway (or worker threads), handle signals. No logic here.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkOpenDoor, loadConfig, helpText, type GatewayConfig } from './config.js';
import { authEnabled, createGateway } from './gateway.js';
import { openDatabase } from './storage.js';
import { keysCommand } from './keys-command.js';
import { jsonLogger } from './log.js';
import { mergeExpositions } from './metrics.js';

const log = jsonLogger({ pid: process.pid });

async function serveSingle(config: GatewayConfig): Promise<void> {
  const gw = await createGateway(config, { log });
  await gw.listen();
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    log.info('SIGTERM: draining');
    gw.close().then(() => process.exit(0), () => process.exit(1));
  });
  process.on('SIGINT', () => process.exit(130)); // upstream: SIGINT exits at once
}

/** Several uWS apps, one per worker thread, listening on the same port (SO_REUSEPORT). */
async function serveWorkers(config: GatewayConfig, n: number): Promise<void> {
  await openDatabase(config).then((db) => db.close()); // migrate once, before workers race
  const workers: Worker[] = [];
  // /metrics from any worker: gather every worker's text, sum it, send it back.
  let scrape = 0;
  const scrapes = new Map<number, { from: Worker; id: number; texts: string[] }>();
  const onMessage = (w: Worker, m: { type: string; id: number; text?: string }) => {
    if (m.type === 'metrics') {
      const s = scrape++;
      scrapes.set(s, { from: w, id: m.id, texts: [] });
      for (const x of workers) x.postMessage({ type: 'render', id: s });
    } else if (m.type === 'rendered') {
      const s = scrapes.get(m.id);
      if (!s) return;
      s.texts.push(m.text ?? '');
      if (s.texts.length === workers.length) {
        scrapes.delete(m.id);
        s.from.postMessage({ type: 'merged', id: s.id, text: mergeExpositions(s.texts) });
      }
    }
  };
  const start = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: { ...config, port } });
      w.on('message', (m) => (m.type === 'listening' ? resolve(m.port) : onMessage(w, m)));
      w.once('error', reject);
      w.once('exit', (code) => {
        if (code !== 0) reject(new Error(`worker exited with ${code}`));
      });
      workers.push(w);
    });
  const port = await start(config.port);
  await Promise.all(Array.from({ length: n - 1 }, () => start(port)));
  log.info('workers listening', { workers: n, port });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    log.info('SIGTERM: draining workers');
    Promise.all(workers.map((w) => new Promise((r) => (w.once('exit', r), w.postMessage('drain'))))).then(() =>
      process.exit(0),
    );
  });
  process.on('SIGINT', () => process.exit(130));
}

async function main(): Promise<number | undefined> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText() + '\n');
    return 0;
  }
  const { config, args } = loadConfig(argv);
  if (args[0] === 'keys') return keysCommand(config, args.slice(1), 'micromegas-gateway');
  if (args.length) throw new Error(`unexpected argument '${args[0]}' (see --help)`);
  checkOpenDoor(config, authEnabled(config));
  const n = config.workers === 0 ? availableParallelism() : config.workers;
  if (n > 1 && !config.pgUrl) log.info('embedded PGlite is single-connection: running one worker');
  if (n > 1 && config.pgUrl) await serveWorkers(config, n);
  else await serveSingle(config);
  return undefined;
}

main().then(
  (code) => {
    if (code !== undefined) process.exit(code);
  },
  (e) => {
    log.error('fatal', { error: String(e instanceof Error ? e.message : e) });
    process.exit(1);
  },
);
