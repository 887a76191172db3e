// Loads the napi-rs addon built by `npm run build:native` (native/index.cjs picks the .node
// file for this platform).
import { createRequire } from 'node:module';

export interface OpenOptions {
  sqlConnectionString?: string;
  objectStoreUri?: string;
  memoryLimitMb?: number;
  queryTimeoutMs?: number;
  jitPartitions?: boolean;
}

export interface EngineStats {
  blocksRead: number;
  partitionsWritten: number;
  partitionsReused: number;
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
}

export interface NativeEngine {
  queryStream(sql: string, options: NativeQueryOptions | undefined, arrow: boolean): Promise<NativeQueryStream>;
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
