// The object-store seam: create-only writes and ranged reads, nothing else.

export interface ObjectStore {
  /** Writes `parts` as one object iff `key` is absent; resolves once the bytes are durable. */
  putCreateOnly(key: string, parts: Buffer[]): Promise<'created' | 'exists'>;
  /** Reads `length` bytes at `offset` (a ranged GET on S3). */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  get(key: string): Promise<Buffer>;
  /** Cheap liveness probe used by /ready. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Counts create-only writes, for "objects written per block". */
  readonly writes: number;
}
