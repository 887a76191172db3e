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
