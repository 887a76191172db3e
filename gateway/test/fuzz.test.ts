// Property-based fuzz of everything that reads client bytes before storage: the CBOR reader,
// the envelope (process, stream, block; fast and generic block paths) and the LZ4 frame check.
// Inputs: random bytes, and truncations and mutations of the golden vectors. Properties: only
// the module's typed error is ever thrown (CborError, BadRequest; the frame check returns a
// reason), each call finishes quickly, and what is decoded is bounded by the input's size.
// `npm test` runs a bounded number of cases; MICROMEGAS_FUZZ_CASES raises it (scripts/fuzz.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { CborError, decodeCbor, type CborValue } from '../src/cbor.js';
import { BadRequest, parseBlock, parseBlockGeneric, parseProcess, parseStream, readBlockFast } from '../src/envelope.js';
import { checkLz4Frame } from '../src/lz4-frame.js';
import { blockBody, lz4Frame, processBody, streamBody } from './fixtures.js';
import { repoRoot } from './helpers.js';

const CASES = Number(process.env.MICROMEGAS_FUZZ_CASES) || 5000;
/** A fixed seed unless one is given, so a failure in `npm test` reproduces. */
const SEED = Number(process.env.MICROMEGAS_FUZZ_SEED) || 0x5eed23;
/** Far above what a call on these inputs (under 400 KB) takes; a loop or a blow-up passes it. */
const SLOW_MS = 500;

function vectors(): Buffer[] {
  const dir = join(repoRoot, 'unreal-plugin-protocol', 'vectors');
  const out: Buffer[] = [];
  if (existsSync(join(dir, 'manifest.json'))) {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { vectors: { body: string }[] };
    for (const v of m.vectors) if (v.body) out.push(readFileSync(join(dir, v.body)));
  }
  const pid = randomUUID();
  const sid = randomUUID();
  out.push(processBody('rust', pid), processBody('unreal', pid), streamBody('rust', pid, sid), streamBody('unreal', pid, sid));
  for (const style of ['rust', 'unreal', 'rust-legacy'] as const) out.push(blockBody(style, pid, sid, { size: 200 }).body);
  out.push(lz4Frame(Buffer.from('hello hello hello'), 0x64), lz4Frame(Buffer.alloc(70_000, 7), 0x74));
  return out;
}
const GOLDEN = vectors();

/** Mutations of a golden vector: truncation, byte flips, insertions, deletions, splices of another vector. */
const mutated: fc.Arbitrary<Buffer> = fc
  .record({
    seed: fc.integer({ min: 0, max: GOLDEN.length - 1 }),
    other: fc.integer({ min: 0, max: GOLDEN.length - 1 }),
    edits: fc.array(
      fc.oneof(
        fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
        fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
        fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
        fc.record({ op: fc.constant('splice' as const), at: fc.nat(), from: fc.nat(), n: fc.integer({ min: 1, max: 256 }) }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map(({ seed, other, edits }) => {
    let b = Buffer.from(GOLDEN[seed]);
    for (const e of edits) {
      const at = b.length ? e.at % (b.length + 1) : 0;
      if (e.op === 'truncate') b = b.subarray(0, at);
      else if (e.op === 'set' && at < b.length) b[at] = e.byte;
      else if (e.op === 'insert') b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
      else if (e.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.n)]);
      else if (e.op === 'splice') {
        const src = GOLDEN[other];
        const from = src.length ? e.from % src.length : 0;
        b = Buffer.concat([b.subarray(0, at), src.subarray(from, from + e.n), b.subarray(at)]);
      }
    }
    return Buffer.from(b);
  });

const random: fc.Arbitrary<Buffer> = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));
/** Bytes that start like CBOR maps and arrays, so random input gets past the first byte more often. */
const cborish: fc.Arbitrary<Buffer> = fc
  .tuple(fc.constantFrom(0xa1, 0xa9, 0xaa, 0xbf, 0x9f, 0x84, 0xd9, 0x7f, 0x5f), fc.uint8Array({ maxLength: 256 }))
  .map(([h, rest]) => Buffer.concat([Buffer.from([h]), rest]));
/** One byte changed: most of these stay well-formed, so the accepting paths get hostile values too. */
const flipped: fc.Arbitrary<Buffer> = fc
  .tuple(fc.integer({ min: 0, max: GOLDEN.length - 1 }), fc.nat(), fc.integer({ min: 0, max: 255 }))
  .map(([seed, at, byte]) => {
    const b = Buffer.from(GOLDEN[seed]);
    b[at % b.length] = byte;
    return b;
  });
const anyInput = fc.oneof(
  { weight: 3, arbitrary: mutated },
  { weight: 2, arbitrary: flipped },
  { weight: 1, arbitrary: random },
  { weight: 1, arbitrary: cborish },
);

/** Bytes and items a decoded value holds: strings and buffers by length, one per array/map entry. */
function footprint(v: CborValue, depth = 0): number {
  assert.ok(depth <= 70, 'nesting beyond the cap');
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v.length;
  if (Array.isArray(v)) return v.reduce<number>((n, x) => n + 1 + footprint(x, depth + 1), 1);
  if (v !== null && typeof v === 'object') {
    let n = 1;
    for (const [k, x] of Object.entries(v)) n += 1 + k.length + footprint(x, depth + 1);
    return n;
  }
  return 1;
}

/** Runs fn; only `allowed` errors may escape, and it must be quick. */
function typed<T>(what: string, input: Buffer, allowed: (new (...a: never[]) => Error)[], fn: () => T): T | undefined {
  const t0 = performance.now();
  try {
    return fn();
  } catch (e) {
    if (!allowed.some((c) => e instanceof c)) {
      throw new Error(`${what} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} on ${input.toString('hex').slice(0, 400)}`);
    }
    return undefined;
  } finally {
    const ms = performance.now() - t0;
    assert.ok(ms < SLOW_MS, `${what} took ${ms.toFixed(0)} ms on ${input.length} bytes`);
  }
}

const params = { numRuns: CASES, seed: SEED };

test('CBOR reader: any bytes decode or throw CborError, and decode to no more than the input holds', () => {
  fc.assert(
    fc.property(anyInput, (input) => {
      const v = typed('decodeCbor', input, [CborError], () => decodeCbor(input));
      // Non-text map keys are kept as short strings (a 3-byte half-float key prints as up to ~20 characters).
      if (v !== undefined) assert.ok(footprint(v) <= 8 * input.length + 16, `footprint ${footprint(v)} from ${input.length} bytes`);
    }),
    params,
  );
});

test('envelope: process, stream and block bodies parse or throw BadRequest, never anything else', () => {
  let runs = 0;
  let accepted = 0;
  fc.assert(
    fc.property(anyInput, (input) => {
      runs++;
      const proc = typed('parseProcess', input, [BadRequest], () => parseProcess(input));
      const stream = typed('parseStream', input, [BadRequest], () => parseStream(input));
      const block = typed('parseBlock', input, [BadRequest], () => parseBlock(input));
      if (proc || stream || block) accepted++;
      if (block) {
        // The stored payload is the body's payload bytes plus at most a re-encoded map head.
        assert.ok(block.row.payload_size <= input.length + 32, `payload ${block.row.payload_size} from ${input.length} bytes`);
        assert.ok(block.row.nb_objects >= -(2 ** 31) && block.row.nb_objects < 2 ** 31);
      }
    }),
    params,
  );
  // Mutations keep some bodies valid: the accepting paths are exercised, not only the refusals.
  process.stdout.write(`envelope fuzz: ${runs} cases, ${accepted} accepted\n`);
  assert.ok(runs >= CASES && accepted >= runs / 50, `${accepted} of ${runs} accepted`);
});

test('block fast path: whatever it accepts, the generic path accepts identically', () => {
  fc.assert(
    fc.property(anyInput, (input) => {
      const fast = typed('readBlockFast', input, [], () => readBlockFast(input));
      if (!fast) return;
      const generic = parseBlockGeneric(input); // must not throw: the fast path accepted it
      assert.deepEqual(fast.row, generic.row);
      assert.ok(Buffer.concat(fast.payload).equals(Buffer.concat(generic.payload)));
    }),
    params,
  );
});

test('LZ4 frame check: returns null or a reason for any bytes, never throws; null only for whole frames', () => {
  const frames = GOLDEN.filter((b) => checkLz4Frame(b) === null);
  assert.ok(frames.length >= 2, 'golden frames');
  const lz4Input = fc.oneof(
    anyInput,
    fc.tuple(fc.constantFrom(...frames), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([f, at, byte]) => {
      const b = Buffer.from(f);
      b[at % b.length] = byte;
      return b;
    }),
    fc.tuple(fc.constantFrom(...frames), fc.nat()).map(([f, n]) => f.subarray(0, n % f.length)),
  );
  fc.assert(
    fc.property(lz4Input, fc.nat(), (input, cut) => {
      const reason = typed('checkLz4Frame', input, [], () => checkLz4Frame(input));
      assert.ok(reason === null || (typeof reason === 'string' && reason.startsWith('lz4: ')), String(reason));
      // A frame is exactly its bytes: a strict prefix of a valid frame is never valid.
      if (reason === null && input.length > 0) assert.notEqual(checkLz4Frame(input, 0, cut % input.length), null);
    }),
    params,
  );
});

test('golden vectors themselves still parse (the seeds of the mutations are meaningful)', () => {
  const parsed = GOLDEN.filter((b) => {
    for (const f of [parseBlock, parseProcess, parseStream]) {
      try {
        f(b);
        return true;
      } catch {}
    }
    return false;
  });
  assert.ok(parsed.length >= 7, `${parsed.length} of ${GOLDEN.length} seeds parse`);
});
