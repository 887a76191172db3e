// Loads the napi-rs addon built by `npm run build:native` (native/index.cjs picks the .node
// file for this platform).
import { createRequire } from 'node:module';

export interface OpenOptions {
  sqlConnectionString?: string;
  objectStoreUri?: string;
  memoryLimitMb?: number;
  queryTimeoutMs?: number;
  jitPartitions?: boolean;
  /** Queries running at once (default twice the cores); more wait in a short queue. */
  maxConcurrentQueries?: number;
  /** Queries waiting for a slot (default 16); beyond, queries answer 503. */
  maxQueuedQueries?: number;
  /** Longest SQL text accepted, in bytes (default 256 KiB). */
  maxSqlBytes?: number;
  /** Deepest expression nesting accepted (default 1000). */
  maxExpressionDepth?: number;
}

export interface EngineStats {
  blocksRead: number;
  partitionsWritten: number;
  partitionsReused: number;
  /** Blocks left out of queries and builds because they are corrupt or inconsistent (each logged with its id). */
  blocksSkipped: number;
}

export interface NativeQueryOptions {
  begin?: string;
  end?: string;
  limit?: number;
}

export interface RetentionOptions {
  maxAgeSeconds: number;
  cpuMaxAgeSeconds?: number;
  keepProcessesSql?: string;
  windowSeconds?: number;
}

export interface RetentionReport {
  blocksExpired: number;
  cpuBlocksSampledOut: number;
  streamsDeleted: number;
  processesDeleted: number;
  partitionsRetired: number;
  filesDeleted: number;
}

/** What one maintenance pass over a view did. */
export interface MaintenanceReport {
  partitionsWritten: number;
  /** Partitions that were already up to date. */
  partitionsFresh: number;
  rows: number;
}

export interface NativeQueryStream {
  /** The next encoded chunk, or null after the last. */
  next(): Promise<Buffer | null>;
  /** Stops the query; a pending or later next() rejects as cancelled. */
  cancel(): void;
}

export interface NativeEngine {
  queryStream(sql: string, options: NativeQueryOptions | undefined, arrow: boolean): NativeQueryStream;
  materializeGlobal(view: string, begin: string, end: string): Promise<MaintenanceReport>;
  applyRetention(options: RetentionOptions): Promise<RetentionReport>;
  idle(): Promise<void>;
  queryIpc(sql: string, options?: NativeQueryOptions): Promise<Buffer>;
  queryJson(sql: string, options?: NativeQueryOptions): Promise<Buffer>;
  stats(): EngineStats;
}

interface NativeModule {
  openEngine(options: OpenOptions): Promise<NativeEngine>;
  countBlockEvents(dependenciesMetadata: Buffer, objectsMetadata: Buffer, payload: Buffer, times?: number): number;
  blockViewRows(view: string, dependenciesMetadata: Buffer, objectsMetadata: Buffer, payload: Buffer, nbObjects: number, times?: number): number;
}

const require = createRequire(import.meta.url);

export const native: NativeModule = require('../../native/index.cjs');
