// The packer with in-memory stores: no sockets, no timers relied upon (the delay is set
// far beyond the test so only the byte bound, drain and failures trigger flushes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BlockPacker, Overloaded, readBlockPayload } from '../src/pack/block-packer.js';
import { parseBlock, type Block } from '../src/envelope.js';
import type { ObjectStore } from '../src/store/objects.js';
import type { Metadata, StoredBlock } from '../src/store/metadata.js';
import { blockBody } from './fixtures.js';

class MemoryObjects implements ObjectStore {
  writes = 0;
  readonly data = new Map<string, Buffer>();
  gate: Promise<void> | null = null;
  fail: Error | null = null;
  async putCreateOnly(key: string, parts: Buffer[]) {
    if (this.gate) await this.gate;
    if (this.fail) throw this.fail;
    if (this.data.has(key)) return 'exists' as const;
    this.data.set(key, Buffer.concat(parts));
    this.writes++;
    return 'created' as const;
  }
  async getRange(key: string, offset: number, length: number) {
    return this.data.get(key)!.subarray(offset, offset + length);
  }
  async get(key: string) {
    return this.data.get(key)!;
  }
  async ping() {}
  async close() {}
}

class MemoryRows {
  readonly rows = new Map<string, StoredBlock>();
  inserts: StoredBlock[][] = [];
  async insertBlocks(rows: StoredBlock[]) {
    this.inserts.push(rows);
    for (const r of rows) if (!this.rows.has(r.block_id)) this.rows.set(r.block_id, { ...r });
    return null;
  }
}

const pid = randomUUID();
const sid = randomUUID();
const block = (size = 1000): { block: Block; expected: Buffer } => {
  const f = blockBody('rust', pid, sid, { size });
  return { block: parseBlock(f.body), expected: f.expectedPayload };
};

function packer(over: Partial<ConstructorParameters<typeof BlockPacker>[0]> = {}) {
  const objects = new MemoryObjects();
  const rows = new MemoryRows();
  const p = new BlockPacker({ maxBytes: 10_000, maxDelayMs: 1e9, maxQueueBytes: 1e9, maxConcurrentFlushes: 2, ...over }, objects, rows as unknown as Metadata);
  return { p, objects, rows };
}

test('blocks are packed into one object until the byte bound, with one INSERT and exact offsets', async () => {
  const { p, objects, rows } = packer({ maxBytes: 5000 });
  const blocks = Array.from({ length: 5 }, () => block(1000)); // ~1.1 KB each stored: 5 exceed 5000
  await Promise.all(blocks.map((b) => p.add(b.block)));
  assert.equal(objects.writes, 1);
  assert.equal(rows.inserts.length, 1);
  assert.equal(rows.inserts[0].length, 5);
  for (const b of blocks) {
    const row = rows.rows.get(b.block.row.block_id)!;
    assert.ok((await readBlockPayload(objects, row)).equals(b.expected));
  }
});

test('drain flushes a partial pack; nothing is acknowledged before its flush', async () => {
  const { p, objects, rows } = packer();
  let acked = false;
  const w = p.add(block().block).then(() => (acked = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(acked, false);
  assert.equal(objects.writes, 0);
  await p.drain();
  await w;
  assert.equal(acked, true);
  assert.equal(rows.rows.size, 1);
});

test('a concurrent duplicate shares the pending write instead of being stored twice', async () => {
  const { p, rows } = packer();
  const b = block();
  const first = p.add(b.block);
  const second = p.add(b.block);
  assert.equal(first, second);
  await p.drain();
  assert.equal(rows.inserts[0].length, 1);
});

test('over the queue bound, new blocks are refused with Overloaded while earlier ones still complete', async () => {
  const { p, objects } = packer({ maxBytes: 1, maxQueueBytes: 3000 });
  let open!: () => void;
  objects.gate = new Promise((r) => (open = r));
  const accepted = [p.add(block(1000).block), p.add(block(1000).block)];
  await assert.rejects(p.add(block(1000).block), Overloaded);
  open();
  await Promise.all(accepted);
  assert.equal(p.stats.queueBytes, 0);
  await p.add(block(1000).block); // room again
});

test('a failed object write rejects every block of the pack and writes no rows', async () => {
  const { p, objects, rows } = packer({ maxBytes: 3000 });
  objects.fail = new Error('store down');
  const results = await Promise.allSettled([block(), block(), block()].map((b) => p.add(b.block)));
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
  assert.equal(rows.rows.size, 0);
  assert.equal(p.stats.flushFailures, 1);
  objects.fail = null;
  const again = block();
  const acked = p.add(again.block);
  await p.drain();
  await acked;
  assert.ok(rows.rows.has(again.block.row.block_id));
});

test('pack size 0 writes each block alone at upstream key with a NULL payload_object', async () => {
  const { p, objects, rows } = packer({ maxBytes: 0 });
  const b = block();
  await p.add(b.block);
  const r = b.block.row;
  assert.ok(objects.data.get(`blobs/${r.process_id}/${r.stream_id}/${r.block_id}`)!.equals(b.expected));
  assert.equal(rows.rows.get(r.block_id)!.payload_object, null);
});
