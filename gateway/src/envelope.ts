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
  if (!(key in m)) throw new BadRequest(`${what}: missing field '${key}'`);
  return m[key];
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

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Canonical hyphenated UUID in any case; stored lowercase. */
function uuid(m: CborMap, key: string, what: string): string {
  const v = text(m, key, what);
  if (!UUID_RE.test(v)) throw new BadRequest(`${what}: '${key}' is not a valid uuid`);
  return v.toLowerCase();
}

// RFC 3339 with any offset; 'T', 't' or ' ' separator as chrono's parse_from_rfc3339 allows.
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function time(m: CborMap, key: string, what: string): string {
  const v = text(m, key, what);
  const t = TIME_RE.exec(v);
  if (!t) throw new BadRequest(`${what}: '${key}' is not an RFC 3339 time`);
  const y = +t[1], mo = +t[2], d = +t[3], h = +t[4], mi = +t[5], s = +t[6];
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const daysInMonth = mo === 2 ? (leap ? 29 : 28) : DAYS[mo];
  const off = t[8].length === 6 ? t[8] : '+00:00';
  const offOk = +off.slice(1, 3) < 24 && +off.slice(4, 6) < 60;
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 60 || !offOk) {
    throw new BadRequest(`${what}: '${key}' is not an RFC 3339 time`);
  }
  // Normalised for PostgreSQL: 'T' separator, explicit offset, leap second clamped as chrono does.
  const sec = s === 60 ? '59' : t[6];
  const frac = s === 60 ? '.999999' : (t[7] ?? '');
  return `${t[1]}-${t[2]}-${t[3]}T${t[4]}:${t[5]}:${sec}${frac}${off}`;
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
  for (const [name, buf] of [['dependencies', dependencies], ['objects', objects]] as const) {
    const bad = checkLz4Frame(buf);
    if (bad) throw new BadRequest(`${what}: payload.${name}: ${bad}`);
  }
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
      payload_size: payload.reduce((n, b) => n + b.length, 0),
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
