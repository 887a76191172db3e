// Configuration: flags over env over defaults, and the CLI's --help.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../src/config.js';
import { gatewayBin } from './helpers.js';

test('flags win over env, env over defaults; no database means the embedded default', () => {
  const env = { MICROMEGAS_SQL_CONNECTION_STRING: 'postgres://env/db', MICROMEGAS_GATEWAY_MAX_BODY_BYTES: '2048', MICROMEGAS_API_KEYS: '[{"name":"a","key":"k"}]' };
  const { config } = loadConfig(['--listen', '0.0.0.0:9100', '--max-body-bytes=4096', '--disable-auth'], env);
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.port, 9100);
  assert.equal(config.pgUrl, 'postgres://env/db');
  assert.equal(config.maxBodyBytes, 4096);
  assert.equal(config.disableAuth, true);
  assert.deepEqual(config.apiKeys, [{ name: 'a', key: 'k' }]);
  const d = loadConfig([], {}).config;
  assert.equal(d.pgUrl, undefined);
  assert.equal(d.dataDir, './data');
  assert.equal(d.maxBodyBytes, 100 * 1024 * 1024);
});

test('bad configuration is refused with a reason', () => {
  assert.throws(() => loadConfig(['--nope'], {}), /unknown option --nope/);
  assert.throws(() => loadConfig(['--max-body-bytes', 'lots'], {}), /non-negative number/);
  assert.throws(() => loadConfig([], { MICROMEGAS_API_KEYS: '{"name":"a"}' }), /JSON array/);
});

test('the CLI prints help listing every flag and its env var', () => {
  const help = execFileSync(process.execPath, [gatewayBin, '--help']).toString();
  for (const s of ['--pg-url', 'MICROMEGAS_SQL_CONNECTION_STRING', '--object-store', 'MICROMEGAS_OBJECT_STORE_URI', 'keys create', 'MICROMEGAS_API_KEYS']) {
    assert.ok(help.includes(s), `help mentions ${s}`);
  }
});
