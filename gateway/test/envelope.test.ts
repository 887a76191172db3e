// Envelope decoding and validation, without sockets or storage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { BadRequest, normalizeTime, parseBlock, parseBlockGeneric, parseProcess, parseStream, readBlockFast, type Block } from '../src/envelope.js';
import { decodeCbor, CborError, type CborMap } from '../src/cbor.js';
import { checkLz4Frame } from '../src/lz4-frame.js';
import { blockBody, definite, encodeIndefinite, lz4Frame, processBody, streamBody } from './fixtures.js';
import { repoRoot } from './helpers.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pid = randomUUID();
const sid = randomUUID();

function rejects(fn: () => unknown, reason: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof BadRequest && reason.test(e.message));
}

test('an Unreal-style block (indefinite lengths, uppercase id, Z ms times) decodes and re-encodes its payload', () => {
  const b = blockBody('unreal', pid, sid);
  const out = parseBlock(b.body);
  assert.equal(out.row.block_id, b.blockId);
  assert.equal(out.row.begin_time, '2026-08-21T16:53:44.000Z'.replace('Z', '+00:00'));
  assert.ok(Buffer.concat(out.payload).equals(b.expectedPayload));
  assert.equal(out.row.payload_size, b.expectedPayload.length);
});

test('a Rust-style block keeps nanosecond times with their offset', () => {
  const b = blockBody('rust', pid, sid);
  const out = parseBlock(b.body);
  assert.equal(out.row.end_time, '2026-08-21T18:53:45.123456789+02:00');
  assert.ok(Buffer.concat(out.payload).equals(b.expectedPayload));
});

test('a legacy payload given as an array of integers is stored as byte strings', () => {
  const legacy = blockBody('rust-legacy', pid, sid);
  assert.ok(Buffer.concat(parseBlock(legacy.body).payload).equals(legacy.expectedPayload));
});

test('ticks beyond 2^53 survive exactly', () => {
  const b = blockBody('rust', pid, sid, { over: { begin_ticks: 2n ** 62n + 1n, end_ticks: -(2n ** 62n) - 3n } });
  const out = parseBlock(b.body);
  assert.equal(out.row.begin_ticks, (2n ** 62n + 1n).toString());
  assert.equal(out.row.end_ticks, (-(2n ** 62n) - 3n).toString());
});

test('unknown keys are ignored and key order does not matter', () => {
  const body = definite({
    entries: [
      ['nb_objects', 1], ['future_field', [1, 2, { entries: [['x', null]] }]], ['object_offset', 7],
      ['payload', { entries: [['objects', lz4Frame(Buffer.from('o'))], ['dependencies', lz4Frame(Buffer.alloc(0))]] }],
      ['end_ticks', 2], ['end_time', '2026-01-01T00:00:01Z'], ['begin_ticks', 1], ['begin_time', '2026-01-01T00:00:00Z'],
      ['process_id', pid], ['stream_id', sid], ['block_id', sid.toUpperCase()],
    ],
  });
  const out = parseBlock(body);
  assert.equal(out.row.object_offset, '7');
  // Stored order is always dependencies then objects, whatever the client sent.
  const stored = decodeCbor(Buffer.concat(out.payload)) as Record<string, Buffer>;
  assert.deepEqual(Object.keys(stored), ['dependencies', 'objects']);
});

test('processes: Unreal empty parent and Rust null parent both mean none; reserved properties are dropped', () => {
  for (const style of ['rust', 'unreal'] as const) {
    const p = parseProcess(processBody(style, pid.toUpperCase()));
    assert.equal(p.process_id, pid);
    assert.equal(p.parent_process_id, null);
    assert.deepEqual(p.properties, [['build-version', '1.2.3']]);
  }
  const parent = randomUUID();
  assert.equal(parseProcess(processBody('rust', pid, { parent_process_id: parent.toUpperCase() })).parent_process_id, parent);
});

test('streams: UDT arrays are re-encoded definite-length in upstream field order, unknown keys dropped', () => {
  const rust = parseStream(streamBody('rust', pid, sid));
  const unreal = parseStream(streamBody('unreal', pid, sid));
  assert.equal(rust.dependencies_metadata[0], 0x81); // definite array of 1
  assert.ok(rust.dependencies_metadata.equals(unreal.dependencies_metadata));
  const udts = decodeCbor(rust.objects_metadata) as Record<string, unknown>[];
  assert.deepEqual(Object.keys(udts[0]), ['name', 'size', 'members', 'is_reference']);
  assert.deepEqual(rust.tags, ['log']);
});

test('bad input gets a one-line reason naming the problem', () => {
  rejects(() => parseBlock(Buffer.alloc(0)), /empty body/);
  rejects(() => parseBlock(Buffer.from([0xa1])), /truncated/);
  rejects(() => parseBlock(definite([1, 2])), /not a CBOR map/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { block_id: 'nope' } }).body), /'block_id' is not a valid uuid/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { begin_time: '2026-02-30T00:00:00Z' } }).body), /'begin_time' is not an RFC 3339 time/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { end_time: '2026-01-01 00:00:00' } }).body), /'end_time' is not an RFC 3339/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { nb_objects: 2 ** 31 } }).body), /i32/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { begin_ticks: 'x' } }).body), /'begin_ticks' must be an integer/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { payload: { entries: [['objects', Buffer.alloc(0)]] } } }).body), /missing field 'dependencies'/);
  rejects(() => parseBlock(blockBody('rust', pid, sid, { over: { payload: { entries: [['dependencies', [1, 300]], ['objects', Buffer.alloc(0)]] } } }).body), /is not a byte/);
  rejects(() => parseProcess(processBody('rust', pid, { start_time: 5 })), /'start_time' must be a text string/);
  rejects(() => parseStream(definite({ entries: [['stream_id', sid]] })), /missing field/);
});

test('LZ4 frame structure is checked: magic, header checksum, truncation, trailing bytes', () => {
  const good = lz4Frame(Buffer.from('hello world'), 0x44);
  assert.equal(checkLz4Frame(good), null);
  assert.equal(checkLz4Frame(lz4Frame(Buffer.alloc(200000), 0x60)), null);
  assert.equal(checkLz4Frame(lz4Frame(Buffer.alloc(0), 0x44)), null);
  const badMagic = Buffer.from(good);
  badMagic[0] = 0x05;
  assert.match(checkLz4Frame(badMagic)!, /magic/);
  const badHc = Buffer.from(good);
  badHc[6] ^= 0xff;
  assert.match(checkLz4Frame(badHc)!, /header checksum/);
  assert.match(checkLz4Frame(good.subarray(0, good.length - 3))!, /truncated/);
  assert.match(checkLz4Frame(Buffer.concat([good, Buffer.from([0])]))!, /trailing/);
  const b = blockBody('rust', pid, sid, { over: { payload: { entries: [['dependencies', badHc], ['objects', good]] } } });
  rejects(() => parseBlock(b.body), /payload\.dependencies: lz4: frame header checksum mismatch/);
});

test('indefinite byte strings in the payload are accepted', () => {
  const frame = lz4Frame(Buffer.from('chunked'));
  const chunked = Buffer.concat([Buffer.from([0x5f]), definite(Buffer.from(frame.subarray(0, 5))), definite(Buffer.from(frame.subarray(5))), Buffer.from([0xff])]);
  const fields = parseBlock(blockBody('rust', pid, sid).body).row;
  const body = encodeIndefinite({
    entries: [
      ...Object.entries({ block_id: fields.block_id, stream_id: sid, process_id: pid, begin_time: '2026-01-01T00:00:00Z', end_time: '2026-01-01T00:00:00Z', begin_ticks: 0, end_ticks: 0, object_offset: 0, nb_objects: 0 }),
      ['payload', { entries: [['dependencies', frame], ['objects', frame]] }],
    ],
  });
  // Splice an indefinite byte string in place of the first frame encoding.
  const first = definite(frame);
  const i = body.indexOf(first);
  const spliced = Buffer.concat([body.subarray(0, i), chunked, body.subarray(i + first.length)]);
  assert.ok(Buffer.concat(parseBlock(spliced).payload).equals(Buffer.concat(parseBlock(body).payload)));
});

test('random and hostile bytes never escape as anything but BadRequest', () => {
  const hostile: Buffer[] = [
    Buffer.alloc(100000, 0x81), // 100k nested arrays
    Buffer.from([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // 2^64-byte string
    Buffer.from([0xbf, 0x61, 0x61]), // unterminated indefinite map
    Buffer.from([0x7f, 0x41, 0x00, 0xff]), // byte chunk inside a text string
    Buffer.from([0x62, 0xc3, 0x28]), // invalid UTF-8
  ];
  const seed = blockBody('unreal', pid, sid).body;
  for (let i = 0; i < 2000; i++) {
    const m = Buffer.from(seed);
    for (let k = 0; k < 4; k++) m[(i * 7919 + k * 104729) % m.length] = randomBytes(1)[0];
    hostile.push(m, randomBytes(i % 64), seed.subarray(0, i % seed.length));
  }
  for (const body of hostile) {
    for (const parse of [parseBlock, parseProcess, parseStream]) {
      try {
        parse(body);
      } catch (e) {
        assert.ok(e instanceof BadRequest, `unexpected ${(e as Error).stack}`);
        assert.ok(!(e as Error).message.includes('\n'));
      }
    }
  }
  assert.throws(() => decodeCbor(Buffer.alloc(100, 0x81)), CborError);
});

// The regex definition the hand-written time parser replaced, narrowed to what PostgreSQL's
// timestamptz reads (no year 0000, offsets up to ±15:59); both must agree on every input.
function referenceTime(v: string): string | null {
  const t = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/.exec(v);
  if (!t) return null;
  const y = +t[1], mo = +t[2], d = +t[3], h = +t[4], mi = +t[5], s = +t[6];
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const daysInMonth = mo === 2 ? (leap ? 29 : 28) : [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo];
  const off = t[8].length === 6 ? t[8] : '+00:00';
  const offOk = +off.slice(1, 3) <= 15 && +off.slice(4, 6) < 60;
  if (y === 0) return null;
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 60 || !offOk) return null;
  const sec = s === 60 ? '59' : t[6];
  const frac = s === 60 ? '.999999' : (t[7] ?? '');
  return `${t[1]}-${t[2]}-${t[3]}T${t[4]}:${t[5]}:${sec}${frac}${off}`;
}

test('RFC 3339 times: the hand parser agrees with the regex definition', () => {
  const seeds = [
    '2026-08-21T16:53:44.000000001+00:00', '2026-08-21T16:53:45.500Z', '2026-08-21t16:53:45z', '2026-08-21 16:53:45-07:30',
    '2024-02-29T23:59:60.5+14:00', '2023-02-29T00:00:00Z', '2026-12-31T23:59:59.123456789-23:59', '2026-01-01T00:00:00.1234567890Z',
    '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:00:00+24:00', '2026-01-01T00:00:00+00:60',
    '2026-01-01T00:00:00', '2026-01-01T00:00:00.Z', '2026-01-01T00:00:00+0000', '2026-01-01T00:00:00Z ', '１２３４-01-01T00:00:00Z', '',
    '0000-01-01T00:00:00Z', '0001-01-01T00:00:00+15:59', '9999-12-31T23:59:59.999999999-15:59', '2026-01-01T00:00:00-16:00',
  ];
  const alphabet = '0123456789-:.TtZz +x';
  const inputs = [...seeds];
  let r = 12345;
  const rand = (n: number) => ((r = (Math.imul(r, 1103515245) + 12345) >>> 0) % n);
  for (const seed of seeds) {
    for (let i = 0; i < 400; i++) {
      const chars = [...seed];
      const edits = 1 + rand(2);
      for (let k = 0; k < edits; k++) {
        const at = rand(chars.length + 1);
        const op = rand(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[rand(alphabet.length)]);
        else chars[at] = alphabet[rand(alphabet.length)];
      }
      inputs.push(chars.join(''));
    }
  }
  let valid = 0;
  for (const v of inputs) {
    const want = referenceTime(v);
    assert.equal(normalizeTime(v), want, JSON.stringify(v));
    if (want !== null) valid++;
  }
  assert.ok(valid > 100, `only ${valid} valid inputs exercised`);
});

test('decoded maps inherit nothing: __proto__ and constructor keys are plain own fields', () => {
  const m = decodeCbor(definite({ entries: [['__proto__', 5], ['constructor', 'x'], ['a', 1]] })) as Record<string, unknown>;
  assert.deepEqual(Object.keys(m), ['__proto__', 'constructor', 'a']);
  assert.equal(m.__proto__, 5);
  assert.equal(m.constructor, 'x');
  const empty = decodeCbor(definite({ entries: [] })) as Record<string, unknown>;
  assert.ok(!('toString' in empty) && !('hasOwnProperty' in empty) && !('constructor' in empty));
  // A key seen before comes from the intern table; a colliding new key must not alias it.
  for (let i = 0; i < 2000; i++) {
    const k = `k${i}`;
    assert.deepEqual(Object.keys(decodeCbor(definite({ entries: [[k, i]] })) as object), [k]);
  }
});

// The fast reader only shortcuts what the generic path would accept: whenever it answers,
// the generic path must accept the same body with the same row and stored bytes.
test('the block fast path agrees with the generic path on vectors, fixtures and mutations', () => {
  const dir = join(repoRoot, 'unreal-plugin-protocol', 'vectors');
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { vectors: { route: string; body: string }[] };
  const vectors = manifest.vectors.filter((v) => v.route === 'insert_block').map((v) => readFileSync(join(dir, v.body)));
  const fixtures = [
    blockBody('rust', pid, sid).body,
    blockBody('unreal', pid, sid).body,
    blockBody('rust-legacy', pid, sid).body,
    blockBody('rust', pid, sid, { size: 300_000 }).body,
    blockBody('rust', pid, sid, { over: { begin_ticks: -5, end_ticks: 2 ** 40, object_offset: 2 ** 32 - 1, nb_objects: -1 } }).body,
    blockBody('rust', pid, sid, { over: { begin_ticks: 2n ** 62n } }).body,
    blockBody('rust', pid, sid, { over: { extra: 'ignored' } }).body,
  ];
  const generic = (b: Buffer): Block | null => {
    try {
      return parseBlockGeneric(b);
    } catch (e) {
      assert.ok(e instanceof BadRequest);
      return null;
    }
  };
  const same = (fast: Block, slow: Block) => {
    assert.deepEqual(fast.row, slow.row);
    assert.ok(Buffer.concat(fast.payload).equals(Buffer.concat(slow.payload)));
  };
  let taken = 0;
  const bodies = [...vectors, ...fixtures];
  for (const seed of [...vectors, ...fixtures.slice(0, 2)]) {
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(seed);
      m[(i * 7919) % Math.min(m.length, 400)] = randomBytes(1)[0]; // the envelope, not deep in the payload
      bodies.push(m);
    }
  }
  for (const body of bodies) {
    const fast = readBlockFast(body);
    const slow = generic(body);
    if (fast === null) continue;
    taken++;
    assert.ok(slow !== null, 'the fast path accepted a body the generic path rejects');
    same(fast, slow);
  }
  // Both producers' usual shapes take the fast path, and the Rust one stores a single slice of the body.
  for (const body of [fixtures[0], fixtures[1], fixtures[3], fixtures[4]]) assert.ok(readBlockFast(body) !== null);
  assert.equal(readBlockFast(fixtures[0])!.payload.length, 1);
  // Every golden vector the generic path accepts takes the fast path, except the legacy
  // payload given as arrays of integers.
  for (const v of vectors) {
    if (generic(v) === null) continue;
    const legacy = Array.isArray(((decodeCbor(v) as CborMap).payload as CborMap).dependencies);
    if (!legacy) assert.ok(readBlockFast(v) !== null);
  }
  assert.ok(taken > 0);
});

// The fast path reads the usual time form and repeated stream and process ids without the
// generic path's steps: it must answer exactly what the generic path does, or defer to it.
test('the block fast path reads times and repeated ids as the generic path does', () => {
  const times = [
    '2026-12-05T10:09:51.123456789+00:00', '2026-12-05T10:09:51+05:30', '2026-12-05T10:09:51.5-11:45',
    '2024-02-29T23:59:59+00:00', '2026-12-05T10:09:51Z', '2026-12-05t10:09:51-01:00', '2026-12-05 10:09:51+00:00',
    '2016-12-31T23:59:60+00:00', '2023-02-29T10:00:00+00:00', '2026-13-05T10:09:51+00:00', '2026-00-05T10:09:51+00:00',
    '2026-04-31T10:09:51+00:00', '2026-12-05T24:00:00+00:00', '2026-12-05T10:60:51+00:00', '2026-12-05T10:09:51.+00:00',
    '2026-12-05T10:09:51.1234567890+00:00', '2026-12-05T10:09:51+24:00', '2026-12-05T10:09:51+00:60',
    '2026-12-05T10:09:51+0000', '2026-12-05T10:09:51.5+00:00x', '2026-12-05T10:09:51.5+00:0', '２026-12-05T10:09:51+00:00',
  ];
  let fastTaken = 0;
  for (const t of times) {
    const body = blockBody('rust', pid, sid, { over: { begin_time: t, end_time: t } }).body;
    let slow: Block | null = null;
    try {
      slow = parseBlockGeneric(body);
    } catch (e) {
      assert.ok(e instanceof BadRequest);
    }
    const fast = readBlockFast(body);
    if (fast === null) continue;
    fastTaken++;
    assert.ok(slow !== null, `the fast path accepted ${t}`);
    assert.deepEqual(fast.row, slow.row, t);
  }
  assert.ok(fastTaken >= 4, `only ${fastTaken} times took the fast path`);
  // Upper then lower case, then again: a remembered id answers what a first read does.
  const upper = sid.toUpperCase();
  for (const id of [upper, sid, upper, sid, `${sid.slice(0, 35)}g`, `${sid.slice(0, 35)}g`]) {
    const body = blockBody('rust', id, id).body;
    const fast = readBlockFast(body);
    if (id.endsWith('g')) {
      assert.equal(fast, null);
      assert.throws(() => parseBlock(body), /'stream_id' is not a valid uuid/);
    } else {
      assert.equal(fast!.row.stream_id, sid);
      assert.equal(fast!.row.process_id, sid);
    }
  }
});
