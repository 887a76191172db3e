// Fault injection: object-store outage, PostgreSQL outage, kill -9 under load. The
// invariant in every case: a block that got a 200 is stored and reads back intact.
// These tests stop and start services, so they always start their own.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { createGateway, defaultConfig, readBlockPayload, silentLogger, type Gateway, type GatewayConfig } from '../src/index.js';
import { freshDatabase, loadGenerator, repoRoot, request, spawnGateway, tempDir, until, useS3Env, type Services } from './helpers.js';

let services: Services;
const pid = randomUUID();
const sid = randomUUID();

before(async () => {
  const mod = await import(pathToFileURL(join(repoRoot, 'scripts', 'test-services.mjs')).href);
  services = await mod.startServices({});
  useS3Env(services.env);
});
after(async () => services?.stop());

async function assertAllStored(config: Partial<GatewayConfig>, acked: { blockId: string; payload: Buffer }[]) {
  const reader = await createGateway(defaultConfig({ disableAuth: true, ...config }), { log: silentLogger });
  try {
    for (const a of acked) {
      const row = await reader.metadata.getBlock(a.blockId);
      assert.ok(row, `acknowledged block ${a.blockId} has a row`);
      assert.ok((await readBlockPayload(reader.objects, row)).equals(a.payload), `block ${a.blockId} reads back intact`);
    }
  } finally {
    await reader.close();
  }
}

async function outage(which: 'pg' | 's3') {
  const config = defaultConfig({
    pgUrl: await freshDatabase(services.env.MICROMEGAS_TEST_PG_URL),
    objectStoreUri: `s3://${services.env.MICROMEGAS_TEST_S3_BUCKET}/${randomUUID()}`,
    disableAuth: true,
    packMaxDelayMs: 20,
  });
  const gw: Gateway = await createGateway(config, { log: silentLogger });
  const port = await gw.listen();
  const load = loadGenerator(() => port, pid, sid, 16);
  try {
    await until('blocks flowing', () => load.acked.length >= 100);
    await services[which]!.stop();
    const ackedBefore = load.acked.length;
    await until('clients see 503 during the outage', () => (load.statuses.get(503) ?? 0) >= 20);
    await until('/ready reports the outage', async () => (await request(port, '/ready')).status === 503);
    if (which === 'pg') {
      // Key store down: an unknown key is "unavailable" (retryable), not "invalid".
      // Shares gw's stores (gw closes them).
      const authed = await createGateway({ ...config, disableAuth: false }, { log: silentLogger, db: gw.metadata.db, objects: gw.objects });
      const r = await authed.handle({ method: 'POST', path: '/ingestion/insert_block', authorization: 'Bearer mmk_unknown', body: Buffer.from([0xa0]) });
      assert.deepEqual([r.status, r.body], [503, 'auth provider unavailable']);
    }
    await services[which]!.start();
    await until('blocks flowing again', () => load.acked.length >= ackedBefore + 200, 60000);
  } finally {
    await load.stop();
    await gw.close();
  }
  process.stdout.write(`# ${which} outage: statuses ${JSON.stringify(Object.fromEntries(load.statuses))}\n`);
  assert.deepEqual([...load.statuses.keys()].filter((s) => s !== 200 && s !== 503), [], 'only 200 or 503');
  await assertAllStored(config, load.acked);
}

test('object-store outage mid-stream: clients get 503, and after recovery no acknowledged block is missing', () => outage('s3'));

test('PostgreSQL outage mid-stream: clients get 503, and after recovery no acknowledged block is missing', () => outage('pg'));

async function killUnderLoad(args: string[], config: Partial<GatewayConfig>) {
  let g = await spawnGateway(args, {});
  let port = g.port;
  const load = loadGenerator(() => port, pid, sid, 32);
  await until('blocks flowing', () => load.acked.length >= 300);
  g.child.kill('SIGKILL');
  await g.exited;
  const ackedAtKill = load.acked.length;
  g = await spawnGateway(args, {});
  port = g.port;
  await until('blocks flowing after restart', () => load.acked.length >= ackedAtKill + 100, 60000);
  await load.stop();
  g.child.kill('SIGTERM');
  assert.equal(await g.exited, 0);
  process.stdout.write(`# kill -9: ${load.acked.length} acknowledged, statuses ${JSON.stringify(Object.fromEntries(load.statuses))}\n`);
  await assertAllStored(config, load.acked);
}

test('kill -9 of the gateway (PostgreSQL + S3) under load: every acknowledged block is there after restart', async () => {
  const pgUrl = await freshDatabase(services.env.MICROMEGAS_TEST_PG_URL);
  const objectStoreUri = `s3://${services.env.MICROMEGAS_TEST_S3_BUCKET}/${randomUUID()}`;
  await killUnderLoad(['--pg-url', pgUrl, '--object-store', objectStoreUri, '--disable-auth', '--pack-max-delay-ms', '20'], { pgUrl, objectStoreUri });
});

test('kill -9 of the gateway (embedded default) under load: every acknowledged block is there after restart', async () => {
  const dataDir = tempDir();
  await killUnderLoad(['--data-dir', dataDir, '--pack-max-delay-ms', '20'], { dataDir });
});
