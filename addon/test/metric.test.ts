import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runChild } from './helpers/child';
import { stopGateway } from './helpers/gateway';
import { measures } from './helpers/decode';

after(stopGateway);

test('integer and float metrics with names, units, targets and properties', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const lat = mm.metric('http.latency', 'ms');
    lat.record(12.5); lat.record(0.25);
    const bytes = mm.metric('http.bytes', 'bytes', { integer: true, target: 'net' });
    bytes.record(1024); bytes.record(2 ** 40);
    mm.metric('http.requests', 'count', { integer: true }).with({ route: '/a', code: 200 }).record(3);
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  const m = measures(r.capture).map((x) => [x.type, x.name, x.unit, x.target, x.value]);
  assert.deepEqual(m, [
    ['FloatMetricEvent', 'http.latency', 'ms', 'js', 12.5],
    ['FloatMetricEvent', 'http.latency', 'ms', 'js', 0.25],
    ['IntegerMetricEvent', 'http.bytes', 'bytes', 'net', 1024n],
    ['IntegerMetricEvent', 'http.bytes', 'bytes', 'net', 2n ** 40n],
    ['TaggedIntegerMetricEvent', 'http.requests', 'count', 'js', 3n],
  ]);
  assert.deepEqual(measures(r.capture)[4].properties, { route: '/a', code: '200' });
  const times = measures(r.capture).map((x) => x.time);
  for (let i = 1; i < times.length; ++i) assert.ok(times[i] >= times[i - 1], 'ordered timestamps');
});

test('process metrics: event loop, heap, rss and gc pauses are sampled', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: 50 });
    let junk = []; for (let i = 0; i < 2e5; ++i) junk.push({ i }); junk = null;
    if (global.gc) global.gc();
    setTimeout(() => mm.shutdownSync(5000), 300);
  `, { args: ['--expose-gc'] });
  assert.equal(r.status, 0, r.stderr);
  const names = new Set(measures(r.capture).map((x) => x.name));
  for (const n of ['nodejs.heap.used', 'nodejs.rss', 'nodejs.eventloop.delay.p99', 'nodejs.gc.pause']) assert.ok(names.has(n), n);
});
