import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runChild } from './helpers/child';
import { stopGateway } from './helpers/gateway';
import { logs } from './helpers/decode';

after(stopGateway);

test('levels, targets, static and dynamic messages, properties, disabled levels', async () => {
  const r = await runChild(`
    mm.init({ url: URL, level: 'debug', processMetrics: false });
    const log = mm.logger('app');
    log.fatal('f'); log.error('e'); log.warn('w'); log.info('i'); log.debug('d'); log.trace('never');
    log.info('i');                                        // second use of an interned message
    mm.logger({ target: 'quiet', level: 'warn' }).info('filtered');
    log.write('info', 'dynamic ' + 42);
    log.info('with props', { user: 'ada', n: 3 });
    log.warn({ route: '/x' }, 'pino order');
    mm.logger('http').error('other target');
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  const got = logs(r.capture).map((l) => [l.level, l.target, l.msg]);
  assert.deepEqual(got, [
    [1, 'app', 'f'], [2, 'app', 'e'], [3, 'app', 'w'], [4, 'app', 'i'], [5, 'app', 'd'], [4, 'app', 'i'],
    [4, 'app', 'dynamic 42'], [4, 'app', 'with props'], [3, 'app', 'pino order'], [2, 'http', 'other target'],
  ]);
  const l = logs(r.capture);
  assert.equal(l[0].type, 'LogStaticStrEvent');
  assert.equal(l[6].type, 'LogStringEventV2');
  assert.deepEqual(l[7].properties, { user: 'ada', n: '3' });
  assert.deepEqual(l[8].properties, { route: '/x' });
  for (let i = 1; i < l.length; ++i) assert.ok(l[i].time >= l[i - 1].time, 'timestamps ordered');
});

test('dynamic messages arrive as UTF-8 whatever their characters', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const log = mm.logger('utf');
    for (const m of ['plain ascii', 'café crème', 'Ελληνικά', '日本語のログ', 'emoji 😀 pair', 'lone \\ud800 surrogate', '']) log.write('info', m);
    log.info('props ünïcode', { clé: 'välue' });
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(logs(r.capture).map((l) => l.msg), [
    'plain ascii', 'café crème', 'Ελληνικά', '日本語のログ', 'emoji 😀 pair', 'lone \ufffd surrogate', '', 'props ünïcode',
  ]);
  assert.deepEqual(logs(r.capture)[7].properties, { clé: 'välue' });
});

test('over-long messages are truncated at 16384 bytes with a marker', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const log = mm.logger('big');
    log.write('info', 'x'.repeat(100000));
    log.write('info', 'é'.repeat(9000));   // 18000 bytes of 2-byte characters
    log.write('info', 'y'.repeat(16384));  // exactly at the limit: kept whole
    log.write('info', '😀'.repeat(5000));  // surrogate pairs, 4 bytes each in UTF-8
    log.write('info', '€'.repeat(20000));  // longer than the native copy buffer, 3 bytes each
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  const [a, b, c, d, e] = logs(r.capture);
  assert.ok(a.msg.endsWith('...[truncated]'));
  assert.ok(Buffer.byteLength(a.msg) <= 16384 + '...[truncated]'.length);
  assert.ok(a.msg.startsWith('x'.repeat(1000)));
  assert.ok(b.msg.endsWith('...[truncated]'));
  assert.ok(!b.msg.includes('\ufffd'), 'cut at a UTF-8 boundary');
  assert.equal(c.msg, 'y'.repeat(16384));
  for (const [x, ch] of [[d, '😀'], [e, '€']] as const) {
    assert.ok(x.msg.endsWith('...[truncated]'));
    const kept = x.msg.slice(0, -'...[truncated]'.length);
    assert.equal(kept, ch.repeat(kept.length / ch.length), 'cut between whole characters');
    assert.ok(Buffer.byteLength(x.msg) <= 16384 && Buffer.byteLength(kept) > 16384 - 20);
  }
});

test('pino destination: a pino logger records through micromegas', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const pino = require('pino');
    const p = pino({ level: 'debug', name: 'svc' }, mm.micromegasDestination());
    p.info('hello from pino'); p.debug({ reqId: 7 }, 'with fields'); p.trace('filtered by pino');
    p.error(new Error('boom'));
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  const l = logs(r.capture);
  assert.deepEqual(l.map((x) => [x.level, x.target, x.msg]), [[4, 'svc', 'hello from pino'], [5, 'svc', 'with fields'], [2, 'svc', 'boom']]);
  assert.deepEqual(l[1].properties, { reqId: '7' });
  assert.ok(String(l[2].properties?.err).includes('boom'));
});

test('console capture records console output and can be restored', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const restore = mm.captureConsole();
    console.log('hello %s', 'world'); console.error('bad', 1);
    restore();
    console.log('not captured');
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hello world/);
  assert.deepEqual(logs(r.capture).map((x) => [x.level, x.target, x.msg]), [[4, 'console', 'hello world'], [2, 'console', 'bad 1']]);
});
