import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runChild } from './helpers/child';
import { stopGateway } from './helpers/gateway';
import { logs, spanEvents } from './helpers/decode';

after(stopGateway);

test('worker threads record on their own cpu streams (distinct thread-id)', async () => {
  const r = await runChild(`
    const { Worker } = require('node:worker_threads');
    mm.init({ url: URL, processMetrics: false });
    mm.span('main-span', () => {});
    const code = "const mm = require('@micromegas/node'); mm.span('worker-span', () => {}); mm.logger('w').info('from worker');";
    let left = 2;
    for (let i = 0; i < 2; ++i) {
      new Worker(code, { eval: true }).on('exit', () => { if (--left === 0) mm.shutdownSync(5000); });
    }
  `);
  assert.equal(r.status, 0, r.stderr);
  const spans = spanEvents(r.capture);
  const threads = new Map<string, Set<string>>();
  for (const s of spans) {
    if (!threads.has(s.name)) threads.set(s.name, new Set());
    threads.get(s.name)!.add(s.thread);
  }
  assert.equal(threads.get('main-span')!.size, 1);
  assert.equal(threads.get('worker-span')!.size, 2, 'two workers, two cpu streams');
  const mainThread = [...threads.get('main-span')!][0];
  assert.ok(!threads.get('worker-span')!.has(mainThread));
  const names = [...r.capture.streams.values()].filter((s) => s.tags.includes('cpu')).map((s) => s.properties['thread-name']).sort();
  assert.ok(names.includes('main'), names.join(','));
  assert.ok(names.filter((n) => /^worker-\d+$/.test(n)).length === 2, names.join(','));
  assert.equal(logs(r.capture).filter((l) => l.msg === 'from worker').length, 2);
});
