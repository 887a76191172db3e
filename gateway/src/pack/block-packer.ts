// Packs blocks from many requests into one object plus one batched INSERT.
// A pack is flushed when it reaches maxBytes or maxDelayMs after its first block,
// whichever comes first; every request in it is answered only after the object is
// durable and its rows are committed. With maxBytes = 0 each block is written alone at
// upstream's key (blobs/<process>/<stream>/<block>).

import { randomUUID } from 'node:crypto';
import type { Block } from '../envelope.js';
import type { ObjectStore } from '../store/objects.js';
import type { Metadata, RefusedRows, StoredBlock } from '../store/metadata.js';

export class Overloaded extends Error {}

export interface PackerConfig {
  maxBytes: number;
  maxDelayMs: number;
  /** Bytes accepted but not yet durable; above this new blocks get 503. */
  maxQueueBytes: number;
  maxConcurrentFlushes: number;
}

interface Pending {
  parts: Buffer[];
  rows: StoredBlock[];
  bytes: number;
  waiters: Map<string, Promise<RefusedRows | null>>;
  done: Deferred;
  timer?: NodeJS.Timeout;
}

/** Settles once the pack is durable: with the rows its INSERT refused (null: none), or rejected
 * when the write failed as a whole. One promise shared by every block of the pack. */
class Deferred {
  resolve!: (refused: RefusedRows | null) => void;
  reject!: (e: unknown) => void;
  readonly promise = new Promise<RefusedRows | null>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
}

export interface PackerStats {
  queueBytes: number;
  blocks: number;
  packs: number;
  flushFailures: number;
}

export class BlockPacker {
  private current: Pending | null = null;
  private readonly flushing = new Set<Pending>();
  private readonly waitingToFlush: Pending[] = [];
  readonly stats: PackerStats = { queueBytes: 0, blocks: 0, packs: 0, flushFailures: 0 };
  /** Observers for storage latency (seconds), fed to /metrics. */
  onStorageLatency?: (kind: 'object_put' | 'pg_insert', seconds: number) => void;

  constructor(
    private readonly cfg: PackerConfig,
    private readonly objects: ObjectStore,
    private readonly metadata: Metadata,
  ) {}

  /**
   * Resolves once the pack holding `block` is durable (object and rows), with the rows refused by
   * the database: when `block`'s id is among them (see refusal), its row was not written. Rejects
   * with Overloaded when full, or with the storage error when the pack could not be written.
   */
  add(block: Block): Promise<RefusedRows | null> {
    const id = block.row.block_id;
    // A concurrent duplicate shares the pending write instead of being stored twice.
    for (const p of [this.current, ...this.flushing, ...this.waitingToFlush]) {
      const w = p?.waiters.get(id);
      if (w) return w;
    }
    const size = block.row.payload_size;
    if (this.stats.queueBytes + size > this.cfg.maxQueueBytes && this.stats.queueBytes > 0) {
      return Promise.reject(new Overloaded('write queue full'));
    }
    if (this.cfg.maxBytes <= 0) return this.single(block);
    const p = (this.current ??= this.newPending());
    const offset = p.bytes;
    p.parts.push(...block.payload);
    p.rows.push({ ...block.row, payload_object: null, payload_offset: offset });
    p.bytes += size;
    this.stats.queueBytes += size;
    this.stats.blocks++;
    const w = p.done.promise;
    p.waiters.set(id, w);
    if (p.bytes >= this.cfg.maxBytes) this.seal();
    else if (!p.timer) p.timer = setTimeout(() => this.seal(), this.cfg.maxDelayMs);
    return w;
  }

  private newPending(): Pending {
    return { parts: [], rows: [], bytes: 0, waiters: new Map(), done: new Deferred() };
  }

  private single(block: Block): Promise<RefusedRows | null> {
    const r = block.row;
    const p: Pending = this.newPending();
    p.bytes = block.row.payload_size;
    p.waiters.set(r.block_id, p.done.promise);
    this.stats.queueBytes += p.bytes;
    this.stats.blocks++;
    this.flushing.add(p);
    void (async () => {
      try {
        await this.timed('object_put', () =>
          this.objects.putCreateOnly(`blobs/${r.process_id}/${r.stream_id}/${r.block_id}`, block.payload),
        );
        const refused = await this.timed('pg_insert', () =>
          this.metadata.insertBlocks([{ ...r, payload_object: null, payload_offset: null }]),
        );
        this.stats.packs++;
        p.done.resolve(refused);
      } catch (e) {
        this.stats.flushFailures++;
        p.done.reject(e);
      } finally {
        this.flushing.delete(p);
        this.stats.queueBytes -= p.bytes;
      }
    })();
    return p.done.promise;
  }

  /** Closes the current pack and starts (or queues) its flush. */
  private seal(): void {
    const p = this.current;
    if (!p) return;
    this.current = null;
    if (p.timer) clearTimeout(p.timer);
    p.done.promise.catch(() => {}); // waiters observe the failure; avoid an unhandled rejection here
    if (this.flushing.size < this.cfg.maxConcurrentFlushes) void this.flush(p);
    else this.waitingToFlush.push(p);
  }

  private async flush(p: Pending): Promise<void> {
    this.flushing.add(p);
    try {
      const key = packKey();
      await this.timed('object_put', () => this.objects.putCreateOnly(key, p.parts));
      for (const r of p.rows) r.payload_object = key;
      const refused = await this.timed('pg_insert', () => this.metadata.insertBlocks(p.rows));
      this.stats.packs++;
      p.done.resolve(refused);
    } catch (e) {
      this.stats.flushFailures++;
      p.done.reject(e);
    } finally {
      this.flushing.delete(p);
      this.stats.queueBytes -= p.bytes;
      const next = this.waitingToFlush.shift();
      if (next) void this.flush(next);
    }
  }

  private async timed<T>(kind: 'object_put' | 'pg_insert', fn: () => Promise<T>): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      this.onStorageLatency?.(kind, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }

  /** Flushes everything pending; resolves when all packs have settled. */
  async drain(): Promise<void> {
    this.seal();
    for (;;) {
      const all = [...this.flushing, ...this.waitingToFlush];
      if (!all.length) return;
      await Promise.allSettled(all.map((p) => p.done.promise));
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** Why the database refused `blockId` in a pack's outcome (add's result), or undefined when it was written. */
export function refusal(refused: RefusedRows | null, blockId: string): string | undefined {
  return refused ? refused.get(blockId) : undefined;
}

/** Date-partitioned keys keep listings short; the UUID makes each pack key unique. */
function packKey(): string {
  const d = new Date().toISOString();
  return `packs/${d.slice(0, 10)}/${d.slice(11, 13)}/${randomUUID()}`;
}

/** Reads back one block's stored payload, wherever the packer put it. */
export async function readBlockPayload(objects: ObjectStore, b: StoredBlock): Promise<Buffer> {
  if (b.payload_object === null) return objects.get(`blobs/${b.process_id}/${b.stream_id}/${b.block_id}`);
  return objects.getRange(b.payload_object, Number(b.payload_offset), Number(b.payload_size));
}
