import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runChild } from './helpers/child';
import { gatewayUrl, stopGateway, TEST_API_KEY } from './helpers/gateway';
import { logs, measures, readCapture, spanEvents } from './helpers/decode';

after(stopGateway);

test('no-op mode: nothing configured, every call does nothing and costs no native call', async () => {
  const r = await runChild(`
    const ok = mm.init({});
    const log = mm.logger('x'); log.info('a'); log.error({ k: 1 }, 'b');
    mm.metric('m', 'u').record(1); mm.span('s', () => 1);
    mm.asyncSpan('a', async () => 1).then((v) => {
      console.log(JSON.stringify({ ok, enabled: mm.isEnabled(), same: log.info === log.trace, v, pid: mm.processId() }));
    });
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { ok: false, enabled: false, same: true, v: 1, pid: '' });
  assert.equal(r.capture.process, undefined);
  assert.equal(r.capture.files.length, 0);
});

test('native module missing: one warning, then no-ops', async () => {
  const r = await runChild(`
    const a = mm.init({ url: URL }); const b = mm.init({ url: URL });
    mm.logger('x').info('a'); mm.metric('m', 'u').record(1); mm.span('s', () => 1);
    console.log(JSON.stringify({ a, b, enabled: mm.isEnabled() }));
  `, { env: { MICROMEGAS_NODE_ADDON: '/nonexistent/micromegas_node.node' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { a: false, b: false, enabled: false });
  assert.equal(r.stderr.match(/native module unavailable/g)?.length, 1, r.stderr);
  assert.equal(r.capture.process, undefined);
  assert.equal(r.capture.files.length, 0);
});

test('env fallbacks: MICROMEGAS_TELEMETRY_URL, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, MICROMEGAS_PROCESS_PROPERTIES', async () => {
  const r = await runChild(`
    mm.init({ processProperties: { team: 'core' }, processMetrics: false });
    mm.logger('x').info('a');
  `, {
    env: {
      MICROMEGAS_TELEMETRY_URL: await gatewayUrl(), OTEL_SERVICE_NAME: 'checkout',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,region=eu%2Dwest', MICROMEGAS_PROCESS_PROPERTIES: 'build=42',
    },
  });
  assert.equal(r.status, 0, r.stderr);
  const props = r.capture.process!.properties as Record<string, string>;
  assert.equal(props['service.name'], 'checkout');
  assert.equal(props['deployment.environment'], 'prod');
  assert.equal(props.region, 'eu-west');
  assert.equal(props.team, 'core');
  assert.equal(props.build, '42');
  assert.deepEqual(logs(r.capture).map((l) => l.msg), ['a']); // exit flush
});

test('api key: init({ apiKey }) authenticates (over the env); a wrong key stores nothing and exits on time', async () => {
  const code = (key: string) => `
    mm.init({ url: URL, ${key ? `apiKey: ${JSON.stringify(key)}, ` : ''}processMetrics: false });
    mm.logger('x').info('authenticated?');
    const ok = mm.shutdownSync(3000);
    console.log(JSON.stringify({ ok }));
  `;
  const good = await runChild(code(TEST_API_KEY), { env: { MICROMEGAS_INGESTION_API_KEY: 'wrong' } });
  assert.equal(good.status, 0, good.stderr);
  assert.deepEqual(logs(good.capture).map((l) => l.msg), ['authenticated?']);
  const bad = await runChild(code(''), { env: { MICROMEGAS_INGESTION_API_KEY: 'wrong' } });
  assert.equal(bad.status, 0, bad.stderr);
  assert.match(bad.stderr, /insert_block dropped after 1 attempt\(s\): HTTP 401/, 'refused, not retried');
  assert.equal(bad.capture.process, undefined, 'the gateway stored nothing');
  assert.equal(bad.capture.files.length, 0);
});

test('directory sink (MICROMEGAS_TELEMETRY_DIR): request bodies as files instead of HTTP', async () => {
  const r = await runChild(`
    process.env.MICROMEGAS_TELEMETRY_DIR = DIR;
    mm.init({ processMetrics: false });
    mm.logger('x').info('to a file');
    mm.metric('m', 'u').record(2);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.capture.process, undefined, 'nothing went to the gateway');
  const files = readCapture(r.dir);
  assert.deepEqual(logs(files).map((l) => l.msg), ['to a file']);
  assert.deepEqual(measures(files).map((m) => [m.name, m.value]), [['m', 2]]);
});

test('shutdown flushes, and recording after shutdown is a no-op', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const log = mm.logger('x'); const m = mm.metric('m', 'u');
    log.info('before');
    mm.shutdown({ deadlineMs: 5000 }).then((ok) => {
      log.info('after'); m.record(1); mm.span('s', () => {}); mm.rawBinding.logString(0, 'raw after');
      console.log(JSON.stringify({ ok, enabled: mm.isEnabled() }));
    });
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { ok: true, enabled: false });
  assert.deepEqual(logs(r.capture).map((l) => l.msg), ['before']);
});

test('exit flush: events recorded right before process.exit() arrive', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    mm.logger('x').info('last words');
    mm.span('s', () => {});
    process.exit(3);
  `);
  assert.equal(r.status, 3, r.stderr);
  assert.deepEqual(logs(r.capture).map((l) => l.msg), ['last words']);
  assert.equal(spanEvents(r.capture).length, 2);
});

test('crash flush: an uncaught exception is logged as fatal with its stack before the process dies', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    mm.logger('x').info('working');
    function deepFunction() { throw new Error('kaboom'); }
    setTimeout(deepFunction, 1);
  `);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /kaboom/);
  const l = logs(r.capture);
  assert.equal(l[0].msg, 'working');
  const fatal = l.find((x) => x.level === 1)!;
  assert.ok(fatal, 'fatal log recorded');
  assert.equal(fatal.target, 'nodejs');
  assert.match(fatal.msg, /uncaughtException: Error: kaboom/);
  assert.match(fatal.msg, /deepFunction/);
});

test('unhandled rejection is logged as fatal too', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    Promise.reject(new Error('rejected!'));
  `);
  assert.notEqual(r.status, 0);
  assert.ok(logs(r.capture).some((x) => x.level === 1 && /rejected!/.test(x.msg)));
});

test('SIGTERM without an app handler: flush, then die by the signal', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    mm.logger('x').info('terminated');
    setTimeout(() => process.kill(process.pid, 'SIGTERM'), 10);
    setTimeout(() => {}, 10000);
  `);
  assert.equal(r.signal, 'SIGTERM');
  assert.deepEqual(logs(r.capture).map((l) => l.msg), ['terminated']);
});

test('SIGTERM with an app handler: the app decides, we only flush', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const t = setTimeout(() => {}, 10000);
    process.on('SIGTERM', () => { mm.logger('x').info('app handler ran'); clearTimeout(t); });
    mm.logger('x').info('before');
    setTimeout(() => process.kill(process.pid, 'SIGTERM'), 10);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.signal, null);
  assert.deepEqual(logs(r.capture).map((l) => l.msg), ['before', 'app handler ran']);
});

test('wrong argument types throw TypeError with a clear message, never abort', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const b = mm.rawBinding;
    const out = [];
    const tryIt = (f) => { try { f(); out.push('no error'); } catch (e) { out.push(e.name + ': ' + e.message); } };
    const id = b.internLog(4, 't', 'm');
    tryIt(() => b.logString(id, 42));
    tryIt(() => b.logStatic('zero'));
    tryIt(() => b.logStatic(12345));
    tryIt(() => b.metricFloat(0, 'x'));
    tryIt(() => b.internLog(9, 't', 'm'));
    tryIt(() => b.asyncSpanBegin({}, 0, 0));
    tryIt(() => mm.metric(1, 'u'));
    tryIt(() => mm.init('nope'));
    tryIt(() => mm.span('s', 5));
    tryIt(() => mm.metric('m', 'u').record('12'));
    tryIt(() => mm.logger('t').write('info', { not: 'a string' }));
    tryIt(() => mm.logger('t').write('loud', 'x'));
    console.log(JSON.stringify(out));
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    'TypeError: logString: message must be a string',
    'TypeError: logStatic: expected a log descriptor id',
    'RangeError: logStatic: expected a log descriptor id',
    'TypeError: metric: value must be a number',
    'RangeError: internLog: level must be 1 (fatal) .. 6 (trace)',
    'TypeError: asyncSpanBegin: expected a span descriptor id',
    'TypeError: metric: name must be a string',
    'TypeError: init: options must be an object',
    'TypeError: span: fn must be a function',
    'TypeError: metric.record: value must be a number',
    'TypeError: log: message must be a string',
    'TypeError: unknown level loud; expected one of fatal, error, warn, info, debug, trace',
  ]);
});

test('require and import share one instance', async () => {
  const r = await runChild(`
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('@micromegas/node');
    mm.init({ url: URL, processMetrics: false });
    console.log(JSON.stringify({ same: cjs.logger === mm.logger, enabledViaCjs: cjs.isEnabled() }));
    cjs.logger('esm').info('one instance');
  `, { esm: true });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { same: true, enabledViaCjs: true });
  assert.deepEqual(logs(r.capture).map((l) => l.msg), ['one instance']);
});
