import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { runChild } from './helpers/child';
import { stopGateway } from './helpers/gateway';
import { logs, spanEvents } from './helpers/decode';

after(stopGateway);

test('synchronous thread spans nest on the cpu stream', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    mm.span('outer', () => { mm.span('inner', () => { mm.logger('app').info('inside inner'); }); });
    const s = mm.spanScope('handle'); s.begin(); s.end();
    mm.shutdownSync(5000);
  `);
  assert.equal(r.status, 0, r.stderr);
  const spans = spanEvents(r.capture);
  assert.deepEqual(spans.map((x) => [x.type, x.name]), [
    ['BeginThreadSpanEvent', 'outer'], ['BeginThreadSpanEvent', 'inner'], ['EndThreadSpanEvent', 'inner'],
    ['EndThreadSpanEvent', 'outer'], ['BeginThreadSpanEvent', 'handle'], ['EndThreadSpanEvent', 'handle'],
  ]);
  for (let i = 1; i < spans.length; ++i) assert.ok(spans[i].time >= spans[i - 1].time, 'ordered timestamps');
  // One clock for every stream: the log recorded inside 'inner' falls between its begin and end.
  const [inside] = logs(r.capture);
  assert.equal(inside.msg, 'inside inner');
  assert.ok(spans[1].time <= inside.time && inside.time <= spans[2].time);
});

test('async spans nest across awaits with parent ids and depths', async () => {
  const r = await runChild(`
    mm.init({ url: URL, processMetrics: false });
    const tick = () => new Promise((res) => setTimeout(res, 5));
    const child = mm.traced('child', async (x) => { await tick(); return x * 2; });
    (async () => {
      const v = await mm.asyncSpan('root', async () => {
        await tick();
        const [a, b] = await Promise.all([child(1), child(2)]);   // siblings, both under root
        await mm.asyncSpan('after', async () => { await tick(); await mm.asyncSpan('deep', () => tick()); });
        return a + b;
      });
      if (v !== 6) throw new Error('traced lost the result');
      await mm.asyncSpan('second-root', async () => {});
      mm.shutdownSync(5000);
    })();
  `);
  assert.equal(r.status, 0, r.stderr);
  const ev = spanEvents(r.capture).filter((x) => x.type.includes('Async'));
  const begins = new Map(ev.filter((x) => x.type === 'BeginAsyncSpanEvent').map((x) => [x.name + ':' + x.span_id, x]));
  const byName = (n: string) => [...begins.values()].filter((x) => x.name === n);
  const [root] = byName('root');
  assert.equal(root.parent_span_id, 0n);
  assert.equal(root.depth, 0);
  const children = byName('child');
  assert.equal(children.length, 2);
  for (const c of children) {
    assert.equal(c.parent_span_id, root.span_id);
    assert.equal(c.depth, 1);
  }
  const [after] = byName('after');
  const [deep] = byName('deep');
  assert.equal(after.parent_span_id, root.span_id);
  assert.equal(deep.parent_span_id, after.span_id);
  assert.equal(deep.depth, 2);
  assert.equal(byName('second-root')[0].parent_span_id, 0n);
  // every begin has an end with the same ids, later in time
  const ends = ev.filter((x) => x.type === 'EndAsyncSpanEvent');
  assert.equal(ends.length, begins.size);
  for (const e of ends) {
    const b = begins.get(e.name + ':' + e.span_id)!;
    assert.ok(b, 'end matches a begin');
    assert.equal(e.parent_span_id, b.parent_span_id);
    assert.equal(e.depth, b.depth);
    assert.ok(e.time >= b.time);
  }
  for (let i = 1; i < ev.length; ++i) assert.ok(ev[i].time >= ev[i - 1].time, 'ordered timestamps');
});

test('async spans: interleaved concurrent trees, rejections, sync results and throws, thenables, workers', async () => {
  const r = await runChild(`
    const { Worker } = require('node:worker_threads');
    mm.init({ url: URL, processMetrics: false });
    const tick = () => new Promise((res) => setImmediate(res));
    // Two trees whose awaits interleave: each child, opened after awaits, must find its own root.
    const tree = (name) => mm.asyncSpan(name, async () => {
      for (let i = 0; i < 3; ++i) { await tick(); await mm.asyncSpan(name + '.child', async () => { await tick(); }); }
    });
    const worker = () => new Promise((res) => new Worker(
      "const mm = require('@micromegas/node'); mm.asyncSpan('w', async () => { await null; await mm.asyncSpan('w.child', async () => {}); });",
      { eval: true }).on('exit', res));
    (async () => {
      await Promise.all([tree('a'), tree('b'), worker()]);
      const out = [];
      await mm.asyncSpan('rejects', async () => { await tick(); throw new Error('no'); }).catch((e) => out.push(e.message));
      try { mm.asyncSpan('throws', () => { throw new Error('sync'); }); } catch (e) { out.push(e.message); }
      out.push(mm.asyncSpan('sync', () => 42));
      const thenable = { then(ok) { setImmediate(() => ok('thenable')); } };
      out.push(await mm.asyncSpan('thenable', () => thenable));
      const obj = { k: 7, get: mm.traced('traced', async function () { await tick(); return this.k; }) };
      out.push(await obj.get());
      console.log(JSON.stringify(out));
      mm.shutdownSync(5000);
    })();
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ['no', 'sync', 42, 'thenable', 7]);
  const ev = spanEvents(r.capture).filter((x) => x.type.includes('Async'));
  const begins = ev.filter((x) => x.type === 'BeginAsyncSpanEvent');
  const ends = ev.filter((x) => x.type === 'EndAsyncSpanEvent');
  const ids = begins.map((b) => b.span_id);
  assert.equal(new Set(ids).size, ids.length, 'span ids unique across threads');
  assert.equal(ends.length, begins.length, 'every span ended, rejected and throwing ones included');
  assert.deepEqual(ends.map((e) => e.span_id).sort(), [...ids].sort(), 'each span ended exactly once');
  const byId = new Map(begins.map((b) => [b.span_id, b]));
  const endOf = new Map(ends.map((e) => [e.span_id, e]));
  for (const b of begins) {
    // A span ends after it begins and after every child of it ends.
    assert.ok(endOf.get(b.span_id)!.time >= b.time);
    for (const c of begins.filter((x) => x.parent_span_id === b.span_id)) assert.ok(endOf.get(c.span_id)!.time <= endOf.get(b.span_id)!.time);
  }
  for (const e of ends) {
    const b = byId.get(e.span_id)!;
    assert.equal(e.name, b.name);
    assert.equal(e.parent_span_id, b.parent_span_id);
    assert.equal(e.depth, b.depth);
    assert.equal(e.thread, b.thread);
  }
  for (const root of ['a', 'b']) {
    const [b] = begins.filter((x) => x.name === root);
    const children = begins.filter((x) => x.name === root + '.child');
    assert.equal(children.length, 3);
    for (const c of children) assert.deepEqual([c.parent_span_id, c.depth], [b.span_id, 1], `${root}.child under ${root}`);
  }
  const [w] = begins.filter((x) => x.name === 'w');
  const [wc] = begins.filter((x) => x.name === 'w.child');
  assert.notEqual(w.thread, begins.find((x) => x.name === 'a')!.thread, 'the worker records on its own stream');
  assert.deepEqual([w.parent_span_id, wc.parent_span_id, wc.depth], [0n, w.span_id, 1]);
  for (const n of ['rejects', 'throws', 'sync', 'thenable', 'traced']) {
    assert.equal(begins.filter((x) => x.name === n).length, 1, n);
    assert.equal(ends.filter((x) => x.name === n).length, 1, n);
  }
});
