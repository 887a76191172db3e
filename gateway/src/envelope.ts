// Turns decoded CBOR bodies into typed rows. Each failure is a one-line reason that
// names the field, so a client log says what to fix.

import { type CborMap, type CborValue, CborError, Reader, cborHead, decodeCbor, encodeCbor, latin1, type Encodable } from './cbor.js';
import { checkLz4Frame } from './lz4-frame.js';

export class BadRequest extends Error {}

export interface ProcessRow {
  process_id: string;
  exe: string;
  username: string;
  realname: string;
  computer: string;
  distro: string;
  cpu_brand: string;
  tsc_frequency: string;
  start_time: string;
  start_ticks: string;
  parent_process_id: string | null;
  properties: [string, string][];
}

export interface StreamRow {
  stream_id: string;
  process_id: string;
  dependencies_metadata: Buffer;
  objects_metadata: Buffer;
  tags: string[];
  properties: [string, string][];
}

export interface BlockRow {
  block_id: string;
  stream_id: string;
  process_id: string;
  begin_time: string;
  begin_ticks: string;
  end_time: string;
  end_ticks: string;
  nb_objects: number;
  object_offset: string;
  payload_size: number;
}

export interface Block {
  row: BlockRow;
  /**
   * Stored object, CBOR {"dependencies": bytes, "objects": bytes} as upstream stores it,
   * as parts that slice the request body (no copy of the payload bytes).
   */
  payload: Buffer[];
}

// Reserved prefix: clients may not set server-owned properties (upstream strips them too).
const RESERVED_PREFIX = 'micromegas.';

function root(body: Buffer, what: string): CborMap {
  if (body.length === 0) throw new BadRequest(`${what}: empty body`);
  let v: CborValue;
  try {
    v = decodeCbor(body);
  } catch (e) {
    if (e instanceof CborError) throw new BadRequest(`${what}: ${e.message}`);
    throw e;
  }
  if (!isMap(v)) throw new BadRequest(`${what}: body is not a CBOR map`);
  return v;
}

function isMap(v: CborValue): v is CborMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function field(m: CborMap, key: string, what: string): CborValue {
  const v = m[key];
  if (v === undefined && !(key in m)) throw new BadRequest(`${what}: missing field '${key}'`);
  return v;
}

function text(m: CborMap, key: string, what: string): string {
  const v = field(m, key, what);
  if (typeof v !== 'string') throw new BadRequest(`${what}: '${key}' must be a text string`);
  return v;
}

/**
 * A string PostgreSQL's text types take: no NUL (PostgreSQL text cannot hold U+0000) and, for a
 * VARCHAR(n) column, at most n characters (counted as PostgreSQL does, in code points).
 */
function checkPgText(v: string, name: string, what: string, maxChars = Infinity): string {
  if (v.indexOf('\u0000') >= 0) throw new BadRequest(`${what}: ${name} contains a NUL character (PostgreSQL text cannot hold it)`);
  if (v.length > maxChars) {
    let n = 0;
    for (const _ of v) n++;
    if (n > maxChars) throw new BadRequest(`${what}: ${name} is longer than ${maxChars} characters`);
  }
  return v;
}

/** The processes table's VARCHAR(255) columns. */
const VARCHAR_MAX = 255;

function pgText(m: CborMap, key: string, what: string, maxChars = Infinity): string {
  return checkPgText(text(m, key, what), `'${key}'`, what, maxChars);
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** Returns the integer as a decimal string (i64 range), exact for values past 2^53. */
function int(m: CborMap, key: string, what: string): string {
  const v = field(m, key, what);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'bigint') {
    const b = BigInt(v);
    if (b < I64_MIN || b > I64_MAX) throw new BadRequest(`${what}: '${key}' out of i64 range`);
    return b.toString();
  }
  throw new BadRequest(`${what}: '${key}' must be an integer`);
}

/**
 * Canonical hyphenated UUIDs (8-4-4-4-12 hex digits, any case), one lookup per character:
 * UUID_CLASS[position << 8 | char] is 0 for what belongs there ('-' at 8, 13, 18, 23, a digit or
 * 'a'-'f' elsewhere), 2 for 'A'-'F' (the id is then lowercased), 4 for anything else. Branch-free:
 * a per-position test cost more than the rest of the check.
 */
const UUID_CLASS = new Uint8Array(36 << 8).fill(4);
for (let i = 0; i < 36; i++) {
  const at = i << 8;
  if (i === 8 || i === 13 || i === 18 || i === 23) UUID_CLASS[at + 45] = 0;
  else {
    for (let c = 48; c <= 57; c++) UUID_CLASS[at + c] = 0;
    for (let c = 97; c <= 102; c++) UUID_CLASS[at + c] = 0;
    for (let c = 65; c <= 70; c++) UUID_CLASS[at + c] = 2;
  }
}

function uuid(m: CborMap, key: string, what: string): string {
  const v = text(m, key, what);
  let kinds = v.length === 36 ? 0 : 4;
  for (let i = 0; kinds < 4 && i < 36; i++) {
    const c = v.charCodeAt(i);
    kinds |= UUID_CLASS[(i << 8) | (c > 255 ? 0 : c)];
  }
  if (kinds & 4) throw new BadRequest(`${what}: '${key}' is not a valid uuid`);
  return kinds & 2 ? v.toLowerCase() : v;
}

// RFC 3339 with any offset; 'T', 't' or ' ' separator as chrono's parse_from_rfc3339 allows:
// YYYY-MM-DD[Tt ]HH:MM:SS[.f{1,9}](Z|z|+HH:MM|-HH:MM), read by hand (a regex with eight
// captures and a template string cost more than the rest of a block's validation).
const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Two ASCII digits at b[at] as a number, or -1. */
function d2(b: Uint8Array, at: number): number {
  const x = b[at] - 48;
  const y = b[at + 1] - 48;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

// What timeShape tells of a valid time besides where its fraction ends (the low 8 bits).
const AS_IS = 0x100; // 'T' separator, explicit offset, no leap second: PostgreSQL's form already
const ZULU = 0x200;
const LEAP_SECOND = 0x400;

/** timeShape's refusals: not RFC 3339 at all, or valid RFC 3339 that PostgreSQL's timestamptz refuses. */
const NOT_RFC3339 = -1;
const YEAR_ZERO = -2;
const OFFSET_RANGE = -3;
/** PostgreSQL takes UTC offsets up to ±15:59 (chrono up to ±23:59). */
const MAX_OFFSET_HOURS = 15;

/**
 * The shape of the RFC 3339 time in b[start, end), read in one pass over its bytes: the end of
 * its fraction (from start) and the flags above, or a negative refusal (above) when it is not one
 * or PostgreSQL's timestamptz would refuse it. The one check both the decoded-string path and the
 * in-place block reader use. Four-digit years bound the rest of the range: years 0001-9999 with
 * any offset up to ±15:59 are inside timestamptz's (4713 BC to 294276 AD); year 0000 is not a
 * year PostgreSQL reads (there is no year zero in AD/BC).
 */
function timeShape(b: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < 20) return NOT_RFC3339;
  const yh = d2(b, start), yl = d2(b, start + 2), mo = d2(b, start + 5), d = d2(b, start + 8);
  const h = d2(b, start + 11), mi = d2(b, start + 14), s = d2(b, start + 17);
  if ((yh | yl | mo | d | h | mi | s) < 0) return -1;
  if (b[start + 4] !== 45 || b[start + 7] !== 45 || b[start + 13] !== 58 || b[start + 16] !== 58) return -1;
  const sep = b[start + 10];
  if (sep !== 84 && sep !== 116 && sep !== 32) return -1; // 'T' 't' ' '
  let i = start + 19;
  if (b[i] === 46) { // '.'
    let j = i + 1;
    while (j < end && b[j] >= 48 && b[j] <= 57) j++;
    if (j - i - 1 < 1 || j - i - 1 > 9) return -1;
    i = j;
  }
  const fracEnd = i - start;
  const c = b[i];
  const zulu = c === 90 || c === 122; // 'Z' 'z'
  let offH = 0, offM = 0;
  if (zulu) i += 1;
  else if (c === 43 || c === 45) { // '+' '-'
    offH = d2(b, i + 1);
    offM = d2(b, i + 4);
    if (offH < 0 || offM < 0 || b[i + 3] !== 58) return -1;
    i += 6;
  } else return -1;
  if (i !== end) return -1;
  const y = yh * 100 + yl;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const daysInMonth = mo === 2 ? (leap ? 29 : 28) : DAYS[mo];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 60 || offH > 23 || offM > 59) return NOT_RFC3339;
  if (y === 0) return YEAR_ZERO;
  if (offH > MAX_OFFSET_HOURS) return OFFSET_RANGE;
  if (zulu) return fracEnd | ZULU | (s === 60 ? LEAP_SECOND : 0);
  return fracEnd | (s === 60 ? LEAP_SECOND : sep === 84 ? AS_IS : 0);
}

/** `v`, a time of that shape, in the form PostgreSQL takes (leap second clamped as chrono does). */
function normalized(v: string, shape: number): string {
  if (shape & AS_IS) return v;
  const fracEnd = shape & 0xff;
  const leap = (shape & LEAP_SECOND) !== 0;
  const sec = leap ? '59' : v.slice(17, 19);
  const frac = leap ? '.999999' : v.slice(19, fracEnd);
  return `${v.slice(0, 10)}T${v.slice(11, 17)}${sec}${frac}${shape & ZULU ? '+00:00' : v.slice(fracEnd)}`;
}

/**
 * The time normalised for PostgreSQL ('T' separator, explicit offset, leap second clamped
 * as chrono does), the input itself when it is already in that form; null when it is not
 * an RFC 3339 time.
 */
export function normalizeTime(v: string): string | null {
  const shape = shapeOf(v);
  return shape < 0 ? null : normalized(v, shape);
}

function shapeOf(v: string): number {
  // Every character of a valid time is ASCII; past that, a latin1 copy could alias a digit.
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) >= 0x80) return NOT_RFC3339;
  return timeShape(Buffer.from(v, 'latin1'), 0, v.length);
}

function time(m: CborMap, key: string, what: string): string {
  const v = text(m, key, what);
  const shape = shapeOf(v);
  if (shape === YEAR_ZERO) throw new BadRequest(`${what}: '${key}' has year 0000, outside PostgreSQL's timestamptz range (years 0001-9999 are accepted)`);
  if (shape === OFFSET_RANGE) throw new BadRequest(`${what}: '${key}' has a UTC offset beyond ±15:59 (PostgreSQL's limit)`);
  if (shape < 0) throw new BadRequest(`${what}: '${key}' is not an RFC 3339 time`);
  return normalized(v, shape);
}

function properties(m: CborMap, key: string, what: string): [string, string][] {
  const v = field(m, key, what);
  if (!isMap(v)) throw new BadRequest(`${what}: '${key}' must be a map`);
  const out: [string, string][] = [];
  // A printable name for a hostile key (a NUL in it, or kilobytes of it), built only for an error.
  const name = (k: string) => `property '${k.replace(/\u0000/g, '\\0').slice(0, 100)}'`;
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new BadRequest(`${what}: ${name(k)} must be a text string`);
    if (k.indexOf('\u0000') >= 0) throw new BadRequest(`${what}: ${name(k)}: key contains a NUL character (PostgreSQL text cannot hold it)`);
    if (x.indexOf('\u0000') >= 0) throw new BadRequest(`${what}: ${name(k)}: value contains a NUL character (PostgreSQL text cannot hold it)`);
    if (!k.startsWith(RESERVED_PREFIX)) out.push([k, x]);
  }
  return out;
}

export function parseProcess(body: Buffer): ProcessRow {
  const what = 'insert_process';
  const m = root(body, what);
  const parent = field(m, 'parent_process_id', what);
  let parent_process_id: string | null = null;
  if (parent !== null && parent !== undefined && parent !== '') {
    parent_process_id = uuid(m, 'parent_process_id', what);
  }
  return {
    process_id: uuid(m, 'process_id', what),
    exe: pgText(m, 'exe', what, VARCHAR_MAX),
    username: pgText(m, 'username', what, VARCHAR_MAX),
    realname: pgText(m, 'realname', what, VARCHAR_MAX),
    computer: pgText(m, 'computer', what, VARCHAR_MAX),
    distro: pgText(m, 'distro', what, VARCHAR_MAX),
    cpu_brand: pgText(m, 'cpu_brand', what, VARCHAR_MAX),
    tsc_frequency: int(m, 'tsc_frequency', what),
    start_time: time(m, 'start_time', what),
    start_ticks: int(m, 'start_ticks', what),
    parent_process_id,
    properties: properties(m, 'properties', what),
  };
}

function bool(m: CborMap, key: string, what: string): boolean {
  const v = field(m, key, what);
  if (typeof v !== 'boolean') throw new BadRequest(`${what}: '${key}' must be a boolean`);
  return v;
}

function uint(m: CborMap, key: string, what: string): number | bigint {
  const v = field(m, key, what);
  if ((typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n)) return v;
  throw new BadRequest(`${what}: '${key}' must be an unsigned integer`);
}

function array(m: CborMap, key: string, what: string): CborValue[] {
  const v = field(m, key, what);
  if (!Array.isArray(v)) throw new BadRequest(`${what}: '${key}' must be an array`);
  return v;
}

/** Re-encodes UDTs with upstream's field order (reflect.rs), dropping unknown keys. */
function udts(m: CborMap, key: string, what: string): Buffer {
  const out: Encodable[] = array(m, key, what).map((u, i) => {
    const w = `${what}: ${key}[${i}]`;
    if (!isMap(u)) throw new BadRequest(`${w} must be a map`);
    const members: Encodable[] = array(u, 'members', w).map((mb, j) => {
      const wm = `${w}.members[${j}]`;
      if (!isMap(mb)) throw new BadRequest(`${wm} must be a map`);
      return {
        entries: [
          ['name', text(mb, 'name', wm)],
          ['type_name', text(mb, 'type_name', wm)],
          ['offset', uint(mb, 'offset', wm)],
          ['size', uint(mb, 'size', wm)],
          ['is_reference', bool(mb, 'is_reference', wm)],
        ],
      };
    });
    return {
      entries: [
        ['name', text(u, 'name', w)],
        ['size', uint(u, 'size', w)],
        ['members', members],
        ['is_reference', bool(u, 'is_reference', w)],
      ],
    };
  });
  return Buffer.concat(encodeCbor(out));
}

export function parseStream(body: Buffer): StreamRow {
  const what = 'insert_stream';
  const m = root(body, what);
  const tags = array(m, 'tags', what).map((t) => {
    if (typeof t !== 'string') throw new BadRequest(`${what}: 'tags' must hold text strings`);
    return checkPgText(t, 'a tag', what);
  });
  return {
    stream_id: uuid(m, 'stream_id', what),
    process_id: uuid(m, 'process_id', what),
    dependencies_metadata: udts(m, 'dependencies_metadata', what),
    objects_metadata: udts(m, 'objects_metadata', what),
    tags,
    properties: properties(m, 'properties', what),
  };
}

/** A payload buffer arrives as a byte string (current) or an array of u8 (Rust <= 0.28). */
function bytes(m: CborMap, key: string, what: string): Buffer {
  const v = field(m, key, what);
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) {
    const out = Buffer.allocUnsafe(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255) {
        throw new BadRequest(`${what}: '${key}'[${i}] is not a byte`);
      }
      out[i] = x;
    }
    return out;
  }
  throw new BadRequest(`${what}: '${key}' must be a byte string or an array of bytes`);
}

/** Validates and converts one insert_block body; a bad one throws BadRequest with the reason. */
export function parseBlock(body: Buffer): Block {
  return readBlockFast(body) ?? parseBlockGeneric(body);
}

/** The reference path: generic CBOR decode, then field by field with a reason for each failure. */
export function parseBlockGeneric(body: Buffer): Block {
  const what = 'insert_block';
  const m = root(body, what);
  const p = field(m, 'payload', what);
  if (!isMap(p)) throw new BadRequest(`${what}: 'payload' must be a map`);
  const dependencies = bytes(p, 'dependencies', `${what}: payload`);
  const objects = bytes(p, 'objects', `${what}: payload`);
  let bad = checkLz4Frame(dependencies);
  if (bad) throw new BadRequest(`${what}: payload.dependencies: ${bad}`);
  bad = checkLz4Frame(objects);
  if (bad) throw new BadRequest(`${what}: payload.objects: ${bad}`);
  const nb = Number(int(m, 'nb_objects', what));
  if (nb < -(2 ** 31) || nb >= 2 ** 31) throw new BadRequest(`${what}: 'nb_objects' out of i32 range`);
  const payload = encodePayload(dependencies, objects);
  return {
    row: {
      block_id: uuid(m, 'block_id', what),
      stream_id: uuid(m, 'stream_id', what),
      process_id: uuid(m, 'process_id', what),
      begin_time: time(m, 'begin_time', what),
      begin_ticks: int(m, 'begin_ticks', what),
      end_time: time(m, 'end_time', what),
      end_ticks: int(m, 'end_ticks', what),
      nb_objects: nb,
      object_offset: int(m, 'object_offset', what),
      payload_size: sizeOf(payload),
    },
    payload,
  };
}

/** Bytes in the stored payload's parts. */
function sizeOf(parts: Buffer[]): number {
  let n = 0;
  for (let i = 0; i < parts.length; i++) n += parts[i].length;
  return n;
}

/** {"dependencies": bytes, "objects": bytes} as ciborium writes it, as parts. */
function encodePayload(dependencies: Buffer, objects: Buffer): Buffer[] {
  return [MAP2_DEPS_KEY, cborHead(2, dependencies.length), dependencies, OBJECTS_KEY, cborHead(2, objects.length), objects];
}

const MAP2_DEPS_KEY = Buffer.concat([Buffer.from([0xa2]), ...encodeCbor('dependencies')]);
const OBJECTS_KEY = Buffer.concat(encodeCbor('objects'));

// ---- insert_block fast path ----
// Nearly every block arrives in one of two shapes (ciborium's definite map or the Unreal
// plugin's indefinite one) with the ten upstream fields. This reader walks such a body in
// place: no intermediate map, no string for a payload, and the payload stored as one slice
// of the body when it is already in the stored encoding. On anything else (an unknown or
// repeated key, a bigint, an odd head, any invalid value) it returns null and
// parseBlockGeneric decides, so accepted blocks and error reasons are the generic path's.

const BLOCK_ID = 0, STREAM_ID = 1, PROCESS_ID = 2, BEGIN_TIME = 3, END_TIME = 4;
const BEGIN_TICKS = 5, END_TICKS = 6, OBJECT_OFFSET = 7, NB_OBJECTS = 8, PAYLOAD = 9;
/** Field names by index (the constants above). */
const BLOCK_KEY_NAMES = ['block_id', 'stream_id', 'process_id', 'begin_time', 'end_time', 'begin_ticks', 'end_ticks', 'object_offset', 'nb_objects', 'payload'];
const ALL_BLOCK_KEYS = (1 << BLOCK_KEY_NAMES.length) - 1;
const BLOCK_KEY_BYTES = BLOCK_KEY_NAMES.map((k) => Buffer.from(k, 'latin1'));

/**
 * The index of the block field whose text key starts at r.pos (consumed), or -1 and
 * nothing consumed. Picked by length and first letter, then compared byte for byte:
 * cheaper than building or interning a string.
 */
function blockKeyAt(r: Reader): number {
  const b = r.buf;
  const at = r.pos;
  const n = b[at] - 0x60;
  if (n < 7 || n > 13 || at + 1 + n > b.length) return -1;
  const c = b[at + 1];
  let idx = -1;
  switch (n) {
    case 7: idx = PAYLOAD; break;
    case 8: idx = c === 98 ? BLOCK_ID : END_TIME; break; // 'b'
    case 9: idx = c === 115 ? STREAM_ID : END_TICKS; break; // 's'
    case 10: idx = c === 112 ? PROCESS_ID : c === 98 ? BEGIN_TIME : NB_OBJECTS; break; // 'p' 'b'
    case 11: idx = BEGIN_TICKS; break;
    case 13: idx = OBJECT_OFFSET; break;
  }
  if (idx < 0) return -1;
  const want = BLOCK_KEY_BYTES[idx];
  if (want.length !== n) return -1;
  for (let i = 0; i < n; i++) if (b[at + 1 + i] !== want[i]) return -1;
  r.pos = at + 1 + n;
  return idx;
}

/** Definite map entry count, or -1 for an indefinite map (ends at a 0xff break), or -2. */
function mapHead(r: Reader): number {
  const b = r.buf;
  if (r.pos >= b.length) return -2;
  const h = b[r.pos++];
  if (h === 0xbf) return -1;
  return h >= 0xa0 && h < 0xb8 ? h - 0xa0 : -2;
}

/** The argument of the CBOR head at r.pos when it is below 2^53, r.pos then past it; else -1 and r.pos kept. */
function headArg(r: Reader): number {
  const b = r.buf;
  const info = b[r.pos] & 31;
  let n: number;
  let at = r.pos + 1;
  if (info < 24) n = info;
  else if (info === 24 && at < b.length) n = b[at++];
  else if (info === 25 && at + 2 <= b.length) (n = (b[at] << 8) | b[at + 1]), (at += 2);
  else if (info === 26 && at + 4 <= b.length) (n = b.readUInt32BE(at)), (at += 4);
  else if (info === 27 && at + 8 <= b.length) (n = b.readUInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4)), (at += 8);
  else return -1;
  if (n >= Number.MAX_SAFE_INTEGER) return -1; // a bigint: the generic path keeps it exact
  r.pos = at;
  return n;
}

/** End of a definite text or byte string of `major` at r.pos (the head consumed), or -1. */
function stringEnd(r: Reader, major: number): number {
  const b = r.buf;
  if (r.pos >= b.length || b[r.pos] >> 5 !== major) return -1;
  const n = headArg(r);
  return n < 0 || r.pos + n > b.length ? -1 : r.pos + n;
}

/** An integer that fits a double exactly (major 0 or 1), or NaN. */
function smallInt(r: Reader): number {
  const b = r.buf;
  if (r.pos >= b.length) return NaN;
  const major = b[r.pos] >> 5;
  if (major > 1) return NaN;
  const n = headArg(r);
  if (n < 0) return NaN;
  return major === 0 ? n : -1 - n;
}

/** A lowercase canonical uuid read from ASCII bytes, or null. */
function uuidAt(b: Buffer, start: number, end: number): string | null {
  if (end - start !== 36) return null;
  let kinds = 0;
  for (let i = 0; i < 36; i++) kinds |= UUID_CLASS[(i << 8) | b[start + i]];
  if (kinds & 4) return null;
  const s = latin1(b, start, end);
  return kinds & 2 ? s.toLowerCase() : s;
}

// Stream and process ids repeat on every block of a stream: the ids last read, in slots picked by
// four of their bytes, skip the check and the string copy (a hit is one 36-byte compare). Block
// ids never repeat and are always read.
const ID_SLOTS = 64;
const idBytes = new Uint8Array(ID_SLOTS * 36);
const idText: (string | null)[] = new Array<string | null>(ID_SLOTS).fill(null);

function repeatedUuidAt(b: Buffer, start: number, end: number): string | null {
  if (end - start !== 36) return null;
  const slot = (b[start] * 31 + b[start + 1] * 7 + b[start + 34] * 3 + b[start + 35]) & (ID_SLOTS - 1);
  const at = slot * 36;
  const known = idText[slot];
  if (known !== null) {
    let i = 0;
    while (i < 36 && b[start + i] === idBytes[at + i]) i++;
    if (i === 36) return known;
  }
  const v = uuidAt(b, start, end);
  if (v !== null) {
    for (let i = 0; i < 36; i++) idBytes[at + i] = b[start + i];
    idText[slot] = v;
  }
  return v;
}

function timeAt(b: Buffer, start: number, end: number): string | null {
  const shape = timeShape(b, start, end);
  return shape < 0 ? null : normalized(latin1(b, start, end), shape);
}

const DEPENDENCIES = 'dependencies';
const OBJECTS = 'objects';

export function readBlockFast(body: Buffer): Block | null {
  const r = new Reader(body);
  const count = mapHead(r);
  if (count === -2) return null;
  let seen = 0;
  let blockId = '', streamId = '', processId = '', beginTime = '', endTime = '';
  let beginTicks = 0, endTicks = 0, objectOffset = 0, nb = 0;
  let payload: Buffer[] | null = null;
  for (let i = 0; count < 0 || i < count; i++) {
    if (count < 0 && body[r.pos] === 0xff) {
      r.pos++;
      break;
    }
    const idx = blockKeyAt(r);
    if (idx < 0 || seen & (1 << idx)) return null;
    seen |= 1 << idx;
    if (idx <= END_TIME) {
      const end = stringEnd(r, 3);
      if (end < 0) return null;
      const start = r.pos;
      r.pos = end;
      const v = idx === BLOCK_ID ? uuidAt(body, start, end) : idx <= PROCESS_ID ? repeatedUuidAt(body, start, end) : timeAt(body, start, end);
      if (v === null) return null;
      if (idx === BLOCK_ID) blockId = v;
      else if (idx === STREAM_ID) streamId = v;
      else if (idx === PROCESS_ID) processId = v;
      else if (idx === BEGIN_TIME) beginTime = v;
      else endTime = v;
    } else if (idx === PAYLOAD) {
      payload = payloadAt(r);
      if (payload === null) return null;
    } else {
      const v = smallInt(r);
      if (v !== v) return null;
      if (idx === BEGIN_TICKS) beginTicks = v;
      else if (idx === END_TICKS) endTicks = v;
      else if (idx === OBJECT_OFFSET) objectOffset = v;
      else nb = v;
    }
  }
  if (seen !== ALL_BLOCK_KEYS || r.pos !== body.length || payload === null) return null;
  if (nb < -(2 ** 31) || nb >= 2 ** 31) return null;
  return {
    row: {
      block_id: blockId,
      stream_id: streamId,
      process_id: processId,
      begin_time: beginTime,
      begin_ticks: String(beginTicks),
      end_time: endTime,
      end_ticks: String(endTicks),
      nb_objects: nb,
      object_offset: String(objectOffset),
      payload_size: sizeOf(payload),
    },
    payload,
  };
}

/**
 * The payload map {dependencies, objects} of two definite byte strings holding valid LZ4
 * frames, as stored parts: one slice of the body when it is already ciborium's encoding
 * (definite map, that key order, minimal heads), else re-encoded around the two slices.
 */
function payloadAt(r: Reader): Buffer[] | null {
  const b = r.buf;
  const mapStart = r.pos;
  const count = mapHead(r);
  if (count === -2) return null;
  let depsHead = -1, depsStart = -1, depsEnd = -1, objsHead = -1, objsStart = -1, objsEnd = -1;
  for (let i = 0; count < 0 || i < count; i++) {
    if (count < 0 && b[r.pos] === 0xff) {
      r.pos++;
      break;
    }
    const k = r.key();
    const head = r.pos;
    const end = stringEnd(r, 2);
    if (end < 0) return null;
    if (k === DEPENDENCIES && depsHead < 0) (depsHead = head), (depsStart = r.pos), (depsEnd = end);
    else if (k === OBJECTS && objsHead < 0) (objsHead = head), (objsStart = r.pos), (objsEnd = end);
    else return null;
    r.pos = end;
  }
  if (depsHead < 0 || objsHead < 0) return null;
  if (checkLz4Frame(b, depsStart, depsEnd) !== null || checkLz4Frame(b, objsStart, objsEnd) !== null) return null;
  const stored =
    count === 2 && depsHead === mapStart + 1 + 1 + DEPENDENCIES.length && objsHead === depsEnd + 1 + OBJECTS.length &&
    depsStart - depsHead === headSize(depsEnd - depsStart) && objsStart - objsHead === headSize(objsEnd - objsStart);
  if (stored) return [b.subarray(mapStart, objsEnd)];
  return encodePayload(b.subarray(depsStart, depsEnd), b.subarray(objsStart, objsEnd));
}

/** Bytes of a minimal CBOR head for length n (what ciborium writes). */
const headSize = (n: number) => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
