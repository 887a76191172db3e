import { isUtf8 } from 'node:buffer';

// Minimal CBOR (RFC 8949) reader and the few writers the gateway needs.
// Untrusted input: every read is bounds-checked and nesting is capped, so a
// hostile body yields a CborError, never a crash or a stack overflow.

export class CborError extends Error {}

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Buffer
  | CborValue[]
  | CborMap;

/** Maps decode to an object with no Object.prototype in its chain; non-text keys are kept stringified. */
export interface CborMap {
  [key: string]: CborValue;
}

// Object.create(null) objects start in V8's dictionary mode (slow to build and read). An
// instance of a constructor whose prototype is itself prototype-less stays a fast object
// with shared hidden classes, yet inherits nothing: no `__proto__` setter, no `toString`,
// so `'constructor' in m` is false and a `__proto__` key is an ordinary own property.
const MapObject = function MapObject(this: CborMap) {} as unknown as { new (): CborMap };
MapObject.prototype = Object.create(null);

const MAX_DEPTH = 64;
const BREAK = Symbol('break');

/** Exported for envelope.ts's block fast path (it reads heads and interned keys itself). */
export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new CborError(
        `cbor: truncated at offset ${this.pos} (need ${n} bytes, have ${this.buf.length - this.pos})`,
      );
    }
  }

  /** Reads the argument of a head byte; returns a number when safe, else a bigint. */
  arg(info: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1);
        return this.buf[this.pos++];
      case 25: {
        this.need(2);
        const v = this.buf.readUInt16BE(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.buf.readUInt32BE(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.buf.readBigUInt64BE(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      default:
        throw new CborError(`cbor: reserved additional info ${info} at offset ${this.pos - 1}`);
    }
  }

  length(info: number): number {
    const n = this.arg(info);
    if (typeof n === 'bigint' || n > this.buf.length) {
      throw new CborError(`cbor: length ${n} exceeds body size at offset ${this.pos}`);
    }
    return n;
  }

  /** Concatenates the chunks of an indefinite byte or text string. */
  chunks(major: number): Buffer {
    const parts: Buffer[] = [];
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++];
      if (b === 0xff) return Buffer.concat(parts);
      if (b >> 5 !== major || (b & 31) === 31) {
        throw new CborError(`cbor: bad chunk in indefinite string at offset ${this.pos - 1}`);
      }
      const n = this.length(b & 31);
      this.need(n);
      parts.push(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
    }
  }

  item(depth: number): CborValue | typeof BREAK {
    if (depth > MAX_DEPTH) throw new CborError(`cbor: nesting deeper than ${MAX_DEPTH}`);
    this.need(1);
    const head = this.buf[this.pos++];
    const major = head >> 5;
    const info = head & 31;
    switch (major) {
      case 0:
        return this.arg(info);
      case 1: {
        const n = this.arg(info);
        return typeof n === 'bigint' || n > Number.MAX_SAFE_INTEGER - 1 ? -1n - BigInt(n) : -1 - n;
      }
      case 2:
      case 3: {
        if (info === 31) {
          const bytes = this.chunks(major);
          return major === 2 ? bytes : decodeUtf8(bytes, this.pos);
        }
        const n = this.length(info);
        this.need(n);
        const start = this.pos;
        this.pos += n;
        if (major === 2) return this.buf.subarray(start, this.pos);
        return this.text(start, this.pos);
      }
      case 4: {
        const out: CborValue[] = [];
        if (info === 31) {
          for (;;) {
            const v = this.item(depth + 1);
            if (v === BREAK) return out;
            out.push(v);
          }
        }
        const n = this.length(info);
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
        return out;
      }
      case 5: {
        const out = new MapObject();
        const indefinite = info === 31;
        const n = indefinite ? Infinity : this.length(info);
        for (let i = 0; i < n; i++) {
          const k = this.key() ?? this.item(depth + 1);
          if (k === BREAK) {
            if (indefinite) return out;
            throw new CborError('cbor: unexpected break in map');
          }
          const v = this.value(depth + 1);
          out[mapKey(k)] = v;
        }
        return out;
      }
      case 6:
        this.arg(info); // tags carry no meaning for the envelope; keep the tagged item
        return this.value(depth + 1);
      default:
        return this.simple(info);
    }
  }

  /** Keys and ids are short ASCII: read them without an intermediate Buffer. */
  text(start: number, end: number): string {
    const b = this.buf;
    for (let i = start; i < end; i++) {
      if (b[i] >= 0x80) return decodeUtf8(b.subarray(start, end), end);
    }
    return latin1(b, start, end);
  }

  /**
   * A short ASCII text map key (the envelope's field names), returned from the intern
   * cache when the same bytes were seen before; null when the next item is anything
   * else, and then nothing is consumed.
   */
  key(): string | null {
    const b = this.buf;
    const at = this.pos;
    if (at >= b.length) return null;
    const head = b[at];
    const n = head - 0x60; // major 3, length < 24 in the head byte
    if (n < 1 || n > 23 || at + 1 + n > b.length) return null;
    const start = at + 1;
    const end = start + n;
    let h = n;
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c >= 0x80) return null;
      h = (Math.imul(h, 31) + c) | 0;
    }
    const slot = (h ^ (h >>> 9)) & (KEY_CACHE_SIZE - 1);
    let s = keyCache[slot];
    if (s === undefined || s.length !== n || !sameAscii(s, b, start)) {
      s = latin1(b, start, end);
      keyCache[slot] = s; // fixed size: hostile keys only evict, never grow it
    }
    this.pos = end;
    return s;
  }

  value(depth: number): CborValue {
    const v = this.item(depth);
    if (v === BREAK) throw new CborError(`cbor: unexpected break at offset ${this.pos - 1}`);
    return v;
  }

  simple(info: number): CborValue | typeof BREAK {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24:
        this.need(1);
        this.pos++;
        return undefined;
      case 25: {
        this.need(2);
        const v = readHalf(this.buf.readUInt16BE(this.pos));
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.buf.readFloatBE(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.buf.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      }
      case 31:
        return BREAK;
      default:
        if (info < 20) return undefined;
        throw new CborError(`cbor: reserved simple value ${info} at offset ${this.pos - 1}`);
    }
  }
}

interface LatinSlicer {
  /** Buffer's own latin1 decoder (what toString('latin1', ...) calls after its checks). */
  latin1Slice(start: number, end: number): string;
}

// latin1Slice is not documented; should a Node release drop it, fall back to toString.
export const latin1: (b: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as unknown as Partial<LatinSlicer>).latin1Slice === 'function'
    ? (b, start, end) => (b as unknown as LatinSlicer).latin1Slice(start, end)
    : (b, start, end) => b.toString('latin1', start, end);

// Direct-mapped intern table for map keys: a body has a dozen keys drawn from a few dozen
// names, so nearly every key is a hit and costs a hash and a compare instead of a string.
const KEY_CACHE_SIZE = 256;
const keyCache: (string | undefined)[] = new Array(KEY_CACHE_SIZE).fill(undefined);

function sameAscii(s: string, b: Buffer, start: number): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== b[start + i]) return false;
  return true;
}

/** Envelope keys are text; other key types are kept under a name no field uses. */
function mapKey(k: CborValue): string {
  if (typeof k === 'string') return k;
  if (k === null || typeof k !== 'object') return `\u0000${String(k)}`;
  return '\u0000complex';
}

// isUtf8 + toString is several times faster than a fatal TextDecoder on short keys.
function decodeUtf8(bytes: Buffer, pos: number): string {
  if (!isUtf8(bytes)) throw new CborError(`cbor: invalid UTF-8 in text string ending at offset ${pos}`);
  return bytes.toString('utf8');
}

function readHalf(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (mant + 1024) * 2 ** (exp - 25);
}

/** Decodes exactly one CBOR item spanning the whole buffer. */
export function decodeCbor(buf: Buffer): CborValue {
  const r = new Reader(buf);
  const v = r.value(0);
  if (r.pos !== buf.length) {
    throw new CborError(`cbor: ${buf.length - r.pos} trailing bytes after offset ${r.pos}`);
  }
  return v;
}

// ---- writers: definite lengths, minimal-width heads (what ciborium emits) ----

export function cborHead(major: number, n: number): Buffer {
  return head(major, n);
}

function head(major: number, n: number): Buffer {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.allocUnsafe(3);
    b[0] = m | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  if (n < 0x100000000) {
    const b = Buffer.allocUnsafe(5);
    b[0] = m | 26;
    b.writeUInt32BE(n, 1);
    return b;
  }
  const b = Buffer.allocUnsafe(9);
  b[0] = m | 27;
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}

export type Encodable =
  | number
  | bigint
  | string
  | boolean
  | null
  | Buffer
  | Encodable[]
  | { entries: [string, Encodable][] };

/** Encodes with definite lengths; maps are given as ordered entries to keep key order exact. */
export function encodeCbor(v: Encodable, out: Buffer[] = []): Buffer[] {
  if (v === null) out.push(Buffer.from([0xf6]));
  else if (typeof v === 'boolean') out.push(Buffer.from([v ? 0xf5 : 0xf4]));
  else if (typeof v === 'number' || typeof v === 'bigint') {
    if (typeof v === 'number' && !Number.isInteger(v)) {
      const b = Buffer.allocUnsafe(9);
      b[0] = 0xfb;
      b.writeDoubleBE(v, 1);
      out.push(b);
    } else if (v >= 0) out.push(headBig(0, BigInt(v)));
    else out.push(headBig(1, -1n - BigInt(v)));
  } else if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    out.push(head(3, s.length), s);
  } else if (Buffer.isBuffer(v)) out.push(head(2, v.length), v);
  else if (Array.isArray(v)) {
    out.push(head(4, v.length));
    for (const x of v) encodeCbor(x, out);
  } else {
    out.push(head(5, v.entries.length));
    for (const [k, x] of v.entries) {
      encodeCbor(k, out);
      encodeCbor(x, out);
    }
  }
  return out;
}

function headBig(major: number, n: bigint): Buffer {
  if (n <= BigInt(Number.MAX_SAFE_INTEGER)) return head(major, Number(n));
  const b = Buffer.allocUnsafe(9);
  b[0] = (major << 5) | 27;
  b.writeBigUInt64BE(n, 1);
  return b;
}

export function encodeCborBuffer(v: Encodable): Buffer {
  return Buffer.concat(encodeCbor(v));
}
