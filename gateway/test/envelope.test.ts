// Envelope decoding and validation, without sockets or storage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { BadRequest, parseBlock, parseProcess, parseStream } from '../src/envelope.js';
import { decodeCbor, CborError } from '../src/cbor.js';
import { checkLz4Frame } from '../src/lz4-frame.js';
import { blockBody, definite, encodeIndefinite, lz4Frame, processBody, streamBody } from './fixtures.js';

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
