// What reading a 24-char string argument costs in a raw Node-API call, each way Node-API offers
// (UTF-8, Latin-1, UTF-16 to a stack buffer, or only its length), next to the empty call taking a
// double. Prints min ns/call of each over several rounds, round-robin so all see the same load.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const b = require('@micromegas/node').rawBinding;
const ascii = Array.from({ length: 64 }, (_, i) => `dynamic message #${String(i).padStart(7, '0')}`);
const wide = ascii.map((s) => s.replace('message', 'méssage'));
const cases = {
  'floor(double)': (i) => b.floor(i),
  'utf8, ascii': (i) => b.floorStringUtf8(ascii[i & 63]),
  'latin1, ascii': (i) => b.floorStringLatin1(ascii[i & 63]),
  'utf16, ascii': (i) => b.floorStringUtf16(ascii[i & 63]),
  'length only, ascii': (i) => b.floorStringLength(ascii[i & 63]),
  'utf8, non-ascii': (i) => b.floorStringUtf8(wide[i & 63]),
  'utf16, non-ascii': (i) => b.floorStringUtf16(wide[i & 63]),
};
const best = {};
for (const [k, fn] of Object.entries(cases)) {
  for (let i = 0; i < 50000; ++i) fn(i);
  best[k] = Infinity;
}
for (let r = 0; r < 15; ++r) {
  for (const [k, fn] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 200_000; ++i) fn(i);
    best[k] = Math.min(best[k], Number(process.hrtime.bigint() - t0) / 200_000);
  }
}
for (const [k, v] of Object.entries(best)) console.log(`${k.padEnd(22)} ${v.toFixed(2)} ns`);
