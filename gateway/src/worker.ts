// One gateway per worker thread. The parent sends 'drain' on SIGTERM, and relays
// /metrics requests so any worker can answer with the sum over all workers.

import { parentPort, workerData } from 'node:worker_threads';
import { createGateway, type Gateway } from './gateway.js';
import { jsonLogger } from './log.js';
import type { GatewayConfig } from './config.js';

const waiting = new Map<number, (text: string) => void>();
let nextId = 0;
let gw: Gateway | null = null;

// Asks the parent to gather every worker's exposition; falls back to ours after 1 s.
const renderMetrics = () =>
  new Promise<string>((resolve) => {
    const id = nextId++;
    const timer = setTimeout(() => (waiting.delete(id), resolve(gw!.metrics.render())), 1000);
    waiting.set(id, (text) => (clearTimeout(timer), resolve(text)));
    parentPort!.postMessage({ type: 'metrics', id });
  });

parentPort!.on('message', (m: string | { type: string; id: number; text?: string }) => {
  if (m === 'drain') gw?.close().then(() => process.exit(0), () => process.exit(1));
  else if (typeof m === 'object' && m.type === 'render') parentPort!.postMessage({ type: 'rendered', id: m.id, text: gw?.metrics.render() ?? '' });
  else if (typeof m === 'object' && m.type === 'merged') waiting.get(m.id)?.(m.text!), waiting.delete(m.id);
});

gw = await createGateway(workerData as GatewayConfig, { log: jsonLogger({ pid: process.pid, worker: true }), renderMetrics });
const port = await gw.listen();
parentPort!.postMessage({ type: 'listening', port });
