// Turns decoded CBOR bodies into typed rows. Each failure is a one-line reason that
// names the field, so a client log says what to fix.

import { type CborMap, type CborValue, CborError, cborHead, decodeCbor, encodeCbor, type Encodable } from './cbor.js';
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

/** 1 for '0'-'9' and 'a'-'f', 2 for 'A'-'F', 0 otherwise (char codes < 128). */
const HEX = new Uint8Array(128);
for (let c = 48; c <= 57; c++) HEX[c] = 1;
for (let c = 97; c <= 102; c++) HEX[c] = 1;
for (let c = 65; c <= 70; c++) HEX[c] = 2;

/** Canonical hyphenated UUID (8-4-4-4-12 hex digits) in any case; stored lowercase. */
function uuid(m: CborMap, key: string, what: string): string {
  const v = text(m, key, what);
  let kinds = 0;
  let ok = v.length === 36;
  for (let i = 0; ok && i < 36; i++) {
    const c = v.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) ok = c === 45;
    else {
      const k = c < 128 ? HEX[c] : 0;
      ok = k !== 0;
      kinds |= k;
    }
  }
  if (!ok) throw new BadRequest(`${what}: '${key}' is not a valid uuid`);
  return kinds & 2 ? v.toLowerCase() : v;
}

// RFC 3339 with any offset; 'T', 't' or ' ' separator as chrono's parse_from_rfc3339 allows:
// YYYY-MM-DD[Tt ]HH:MM:SS[.f{1,9}](Z|z|+HH:MM|-HH:MM), read by hand (a regex with eight
// captures and a template string cost more than the rest of a block's validation).
const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Two ASCII digits at i as a number, or -1. */
function d2(v: string, i: number): number {
  const a = v.charCodeAt(i) - 48;
  const b = v.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The time normalised for PostgreSQL ('T' separator, explicit offset, leap second clamped
 * as chrono does), the input itself when it is already in that form; null when it is not
 * an RFC 3339 time.
 */
export function normalizeTime(v: string): string | null {
  const n = v.length;
  if (n < 20) return null;
  const yh = d2(v, 0), yl = d2(v, 2), mo = d2(v, 5), d = d2(v, 8), h = d2(v, 11), mi = d2(v, 14), s = d2(v, 17);
  if ((yh | yl | mo | d | h | mi | s) < 0) return null;
  if (v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58) return null;
  const sep = v.charCodeAt(10);
  if (sep !== 84 && sep !== 116 && sep !== 32) return null; // 'T' 't' ' '
  let i = 19;
  if (v.charCodeAt(i) === 46) { // '.'
    let j = i + 1;
    for (; j < n; j++) {
      const c = v.charCodeAt(j);
      if (c < 48 || c > 57) break;
    }
    if (j - i - 1 < 1 || j - i - 1 > 9) return null;
    i = j;
  }
  const fracEnd = i;
  const c = v.charCodeAt(i);
  const zulu = c === 90 || c === 122; // 'Z' 'z'
  let offH = 0, offM = 0;
  if (zulu) i += 1;
  else if (c === 43 || c === 45) { // '+' '-'
    offH = d2(v, i + 1);
    offM = d2(v, i + 4);
    if (offH < 0 || offM < 0 || v.charCodeAt(i + 3) !== 58) return null;
    i += 6;
  } else return null;
  if (i !== n) return null;
  const y = yh * 100 + yl;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const daysInMonth = mo === 2 ? (leap ? 29 : 28) : DAYS[mo];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 60 || offH > 23 || offM > 59) return null;
  if (!zulu && sep === 84 && s !== 60) return v;
  const sec = s === 60 ? '59' : v.slice(17, 19);
  const frac = s === 60 ? '.999999' : v.slice(19, fracEnd);
  return `${v.slice(0, 10)}T${v.slice(11, 17)}${sec}${frac}${zulu ? '+00:00' : v.slice(fracEnd)}`;
}

function time(m: CborMap, key: string, what: string): string {
  const t = normalizeTime(text(m, key, what));
  if (t === null) throw new BadRequest(`${what}: '${key}' is not an RFC 3339 time`);
  return t;
}

function properties(m: CborMap, key: string, what: string): [string, string][] {
  const v = field(m, key, what);
  if (!isMap(v)) throw new BadRequest(`${what}: '${key}' must be a map`);
  const out: [string, string][] = [];
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new BadRequest(`${what}: property '${k}' must be a text string`);
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
    exe: text(m, 'exe', what),
    username: text(m, 'username', what),
    realname: text(m, 'realname', what),
    computer: text(m, 'computer', what),
    distro: text(m, 'distro', what),
    cpu_brand: text(m, 'cpu_brand', what),
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
    return t;
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

export function parseBlock(body: Buffer): Block {
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
  let payloadSize = 0;
  for (let i = 0; i < payload.length; i++) payloadSize += payload[i].length;
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
      payload_size: payloadSize,
    },
    payload,
  };
}

/** {"dependencies": bytes, "objects": bytes} as ciborium writes it, as parts. */
function encodePayload(dependencies: Buffer, objects: Buffer): Buffer[] {
  return [MAP2_DEPS_KEY, cborHead(2, dependencies.length), dependencies, OBJECTS_KEY, cborHead(2, objects.length), objects];
}

const MAP2_DEPS_KEY = Buffer.concat([Buffer.from([0xa2]), ...encodeCbor('dependencies')]);
const OBJECTS_KEY = Buffer.concat(encodeCbor('objects'));
