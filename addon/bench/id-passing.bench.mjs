// Which is cheaper to pass a descriptor into a raw Node-API call: a small integer (index into a
// per-instance table) or an external pointer? Prints min ns/call of each over several rounds.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const b = require('@micromegas/node').rawBinding;
const ext = b.makeExternal();
function measure(fn, n = 2_000_000, rounds = 9) {
  for (let i = 0; i < 50000; ++i) fn(i);
  let best = Infinity;
  for (let r = 0; r < rounds; ++r) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; ++i) fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}
const rows = {
  'floor(double)': measure((i) => b.floor(i)),
  'floorU32(small int id)': measure(() => b.floorU32(7)),
  'floorExternal(pointer)': measure(() => b.floorExternal(ext)),
};
for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(26)} ${v.toFixed(2)} ns`);
