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

test('metric expositions from several workers add up series by series', async () => {
  const { Metrics, mergeExpositions } = await import('../src/metrics.js');
  const a = new Metrics();
  const b = new Metrics();
  a.requests.inc({ route: 'insert_block', status: '200' }, 3);
  b.requests.inc({ route: 'insert_block', status: '200' }, 4);
  b.requests.inc({ route: 'ready', status: '503' });
  a.storage.observe({ kind: 'object_put' }, 0.002);
  b.storage.observe({ kind: 'object_put' }, 0.2);
  const merged = mergeExpositions([a.render(), b.render()]);
  assert.match(merged, /^gateway_http_requests_total\{route="insert_block",status="200"\} 7$/m);
  assert.match(merged, /^gateway_http_requests_total\{route="ready",status="503"\} 1$/m);
  assert.match(merged, /^gateway_storage_duration_seconds_bucket\{kind="object_put",le="0.0025"\} 1$/m);
  assert.match(merged, /^gateway_storage_duration_seconds_count\{kind="object_put"\} 2$/m);
  assert.equal(merged.match(/^# TYPE gateway_http_requests_total counter$/gm)!.length, 1);
});
