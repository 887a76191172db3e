// Structural check of an LZ4 frame (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md).
// The gateway never decompresses; it walks the frame descriptor and block headers so a
// truncated or garbled payload is refused at the door instead of failing at query time.

const MAGIC = 0x184d2204;
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/** Returns null when `buf[start, end)` is exactly one well-formed LZ4 frame, else a short reason. */
export function checkLz4Frame(buf: Uint8Array, start = 0, end = buf.length): string | null {
  const len = end - start;
  if (len < 7) return `lz4: frame too short (${len} bytes)`;
  if (u32le(buf, start) !== MAGIC) return 'lz4: bad frame magic';
  const flg = buf[start + 4];
  const bd = buf[start + 5];
  if (flg >> 6 !== 1) return `lz4: unsupported frame version ${flg >> 6}`;
  if (flg & 0x02) return 'lz4: reserved FLG bit set';
  if (bd & 0x8f) return 'lz4: reserved BD bits set';
  const blockMax = BLOCK_MAX[(bd >> 4) & 7];
  if (!blockMax) return `lz4: invalid block max size id ${(bd >> 4) & 7}`;
  const blockChecksum = (flg & 0x10) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const descLen = 2 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
  if (len < 4 + descLen + 1) return 'lz4: truncated frame descriptor';
  const hc = (xxh32(buf, 0, start + 4, start + 4 + descLen) >>> 8) & 0xff;
  if (hc !== buf[start + 4 + descLen]) return 'lz4: frame header checksum mismatch';
  let pos = start + 4 + descLen + 1;
  for (;;) {
    if (pos + 4 > end) return 'lz4: truncated block header';
    const word = u32le(buf, pos);
    pos += 4;
    if (word === 0) break; // end mark
    const size = word & 0x7fffffff;
    if (size > blockMax) return `lz4: block size ${size} exceeds frame maximum ${blockMax}`;
    pos += size + (blockChecksum ? 4 : 0);
    if (pos > end) return 'lz4: truncated block';
  }
  if (contentChecksum) pos += 4;
  if (pos > end) return 'lz4: truncated content checksum';
  if (pos !== end) return `lz4: ${end - pos} trailing bytes after frame`;
  return null;
}

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

function round(acc: number, input: number): number {
  acc = (acc + Math.imul(input, P2)) >>> 0;
  return Math.imul(rotl(acc, 13), P1) >>> 0;
}

const u32le = (b: Uint8Array, p: number) => (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;

/** xxHash32 of buf[start, end), used by LZ4 for the header checksum (reads in place, allocates nothing). */
export function xxh32(buf: Uint8Array, seed: number, start = 0, end = buf.length): number {
  const len = end - start;
  let p = start;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) >>> 0;
    let v2 = (seed + P2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P1) >>> 0;
    while (p + 16 <= end) {
      v1 = round(v1, u32le(buf, p));
      v2 = round(v2, u32le(buf, p + 4));
      v3 = round(v3, u32le(buf, p + 8));
      v4 = round(v4, u32le(buf, p + 12));
      p += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (seed + P5) >>> 0;
  }
  h = (h + len) >>> 0;
  while (p + 4 <= end) {
    h = (h + Math.imul(u32le(buf, p), P3)) >>> 0;
    h = Math.imul(rotl(h, 17), P4) >>> 0;
    p += 4;
  }
  while (p < end) {
    h = (h + Math.imul(buf[p], P5)) >>> 0;
    h = Math.imul(rotl(h, 11), P1) >>> 0;
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, P3) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
