// Object store on a local directory. Durability: write a temp file, fsync it, link it
// into place (link fails if the key exists: create-only), then fsync the directory.

import { promises as fs, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ObjectStore } from './objects.js';

export class LocalDirStore implements ObjectStore {
  writes = 0;
  private readonly root: string;
  private readonly knownDirs = new Set<string>();

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const p = resolve(join(this.root, key));
    if (!p.startsWith(this.root + '/')) throw new Error(`object key escapes the store root: ${key}`);
    return p;
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await fs.mkdir(dir, { recursive: true });
    // A new directory entry must itself be durable, so sync the parent once.
    await fsyncDir(dirname(dir));
    this.knownDirs.add(dir);
  }

  async putCreateOnly(key: string, parts: Buffer[]): Promise<'created' | 'exists'> {
    const final = this.path(key);
    const dir = dirname(final);
    await this.ensureDir(dir);
    const tmp = `${final}.tmp-${randomUUID()}`;
    const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      await fh.writev(parts);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await fs.link(tmp, final);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
      throw e;
    } finally {
      await fs.unlink(tmp).catch(() => {});
    }
    await fsyncDir(dir);
    this.writes++;
    return 'created';
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const fh = await fs.open(this.path(key), 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new Error(`short read of ${key}: ${bytesRead} of ${length}`);
      return buf;
    } finally {
      await fh.close();
    }
  }

  async get(key: string): Promise<Buffer> {
    return fs.readFile(this.path(key));
  }

  async ping(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    await fs.access(this.root, constants.W_OK);
  }

  async close(): Promise<void> {}
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
