// Closed doors, through the real CLI: auth off is fine on loopback only, --insecure-no-auth opens
// other addresses on purpose; --port is an alias for the port part of --listen.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkOpenDoor, isLoopback, loadConfig } from '../src/config.js';
import { authEnabled } from '../src/gateway.js';
import { gatewayBin, repoRoot, request, tempDir } from './helpers.js';

async function freePort(): Promise<number> {
  const { freePort } = await import(pathToFileURL(join(repoRoot, 'scripts', 'test-services.mjs')).href);
  return freePort();
}

/** Runs the CLI until it exits or answers /health on 127.0.0.1:`port`; always stops it. */
async function run(args: string[], port: number, env: Record<string, string> = {}): Promise<{ code: number | null; healthy: boolean; output: string }> {
  const child = spawn(process.execPath, [gatewayBin, '--data-dir', tempDir(), ...args], {
    env: { ...process.env, MICROMEGAS_API_KEYS: '', MICROMEGAS_INSECURE_NO_AUTH: '', MICROMEGAS_GATEWAY_LISTEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) return { code: child.exitCode, healthy: false, output };
      try {
        if ((await request(port, '/health')).status === 200) return { code: null, healthy: true, output };
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`neither exited nor healthy: ${output}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
}

test('no auth on a non-loopback address: refuses to start with a reason, unless --insecure-no-auth', async () => {
  const port = await freePort();
  const refused = await run(['--listen', `0.0.0.0:${port}`], port);
  assert.equal(refused.code, 1);
  assert.match(refused.output, /refusing to listen on 0\.0\.0\.0:\d+ without authentication: no API keys are configured[^]*--insecure-no-auth/);
  const viaDisable = await run(['--listen', `0.0.0.0:${port}`, '--disable-auth'], port);
  assert.equal(viaDisable.code, 1);
  assert.match(viaDisable.output, /--disable-auth is set/);

  assert.equal((await run(['--listen', `0.0.0.0:${port}`, '--insecure-no-auth'], port)).healthy, true);
  assert.equal((await run(['--listen', `0.0.0.0:${port}`], port, { MICROMEGAS_INSECURE_NO_AUTH: '1' })).healthy, true);
  // API keys configured: auth is on, any address is fine.
  assert.equal((await run(['--listen', `0.0.0.0:${port}`], port, { MICROMEGAS_API_KEYS: '[{"name":"a","key":"secret"}]' })).healthy, true);
  // Loopback with auth off: the embedded default, as before.
  assert.equal((await run(['--listen', `127.0.0.1:${port}`], port)).healthy, true);
});

test('the door check itself: which hosts are loopback, and when auth counts as on', () => {
  for (const h of ['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '[::]', '10.0.0.1', '128.0.0.1', '127.0.0.1.example.com', 'example.com', '']) assert.ok(!isLoopback(h), h);
  const cfg = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, env).config;
  const open = cfg(['--listen', '0.0.0.0:1']);
  assert.equal(authEnabled(open), false);
  assert.throws(() => checkOpenDoor(open, authEnabled(open)), /refusing to listen on 0\.0\.0\.0:1/);
  // A real PostgreSQL keeps its API keys there: auth is on, the door is closed.
  const pg = cfg(['--listen', '0.0.0.0:1', '--pg-url', 'postgres://x/y']);
  assert.equal(authEnabled(pg), true);
  checkOpenDoor(pg, true);
  const disabled = cfg(['--listen', '0.0.0.0:1', '--pg-url', 'postgres://x/y', '--disable-auth']);
  assert.throws(() => checkOpenDoor(disabled, authEnabled(disabled)), /--disable-auth is set/);
  checkOpenDoor(cfg(['--listen', '0.0.0.0:1', '--insecure-no-auth']), false);
});

test('--port: an alias for the port on 127.0.0.1; --listen names both and wins', async () => {
  const cfg = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, env).config;
  assert.deepEqual([cfg(['--port', '9123']).host, cfg(['--port', '9123']).port], ['127.0.0.1', 9123]);
  assert.equal(cfg(['--port=9124']).port, 9124);
  const both = cfg(['--listen', '0.0.0.0:9200', '--port', '9300']);
  assert.deepEqual([both.host, both.port], ['0.0.0.0', 9200]);
  const env = cfg(['--port', '9300'], { MICROMEGAS_GATEWAY_LISTEN: '127.0.0.2:9200' });
  assert.deepEqual([env.host, env.port], ['127.0.0.2', 9300]);
  for (const bad of ['x', '-1', '65536', '1.5', '']) assert.throws(() => cfg(['--port', bad]), /invalid port/, bad);
  assert.throws(() => cfg(['--listen', '127.0.0.1:http']), /invalid port/);

  const help = execFileSync(process.execPath, [gatewayBin, '--help']).toString();
  for (const s of ['--port <value>', '--insecure-no-auth', 'MICROMEGAS_INSECURE_NO_AUTH', '--max-buffered-body-bytes']) assert.ok(help.includes(s), `help mentions ${s}`);

  const port = await freePort();
  assert.equal((await run(['--port', String(port)], port)).healthy, true);
});
