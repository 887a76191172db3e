// One gateway per worker thread; the parent sends 'drain' on SIGTERM.

import { parentPort, workerData } from 'node:worker_threads';
import { createGateway } from './gateway.js';
import { jsonLogger } from './log.js';
import type { GatewayConfig } from './config.js';

const gw = await createGateway(workerData as GatewayConfig, { log: jsonLogger({ pid: process.pid, worker: true }) });
const port = await gw.listen();
parentPort!.postMessage({ port });
parentPort!.on('message', (m) => {
  if (m === 'drain') gw.close().then(() => process.exit(0), () => process.exit(1));
});
