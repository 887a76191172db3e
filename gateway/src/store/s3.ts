// Object store on any S3-compatible endpoint. Create-only is a conditional PUT
// (If-None-Match: *); a 412 means the key already exists, which is success for a retry.

import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import type { ObjectStore } from './objects.js';

export interface S3Config {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
}

export class S3Store implements ObjectStore {
  writes = 0;
  private readonly client: S3Client;

  constructor(private readonly cfg: S3Config) {
    this.client = new S3Client({
      region: cfg.region ?? process.env.AWS_REGION ?? 'us-east-1',
      endpoint: cfg.endpoint ?? process.env.AWS_ENDPOINT_URL,
      // Path-style works with every S3-compatible server on a bare host:port.
      forcePathStyle: Boolean(cfg.endpoint ?? process.env.AWS_ENDPOINT_URL),
      maxAttempts: 2,
      // A hung endpoint must fail the pack (503 to clients), not hold requests forever.
      requestHandler: { connectionTimeout: 5000, requestTimeout: 30000 },
    });
  }

  private key(key: string): string {
    return this.cfg.prefix ? `${this.cfg.prefix.replace(/\/+$/, '')}/${key}` : key;
  }

  async putCreateOnly(key: string, parts: Buffer[]): Promise<'created' | 'exists'> {
    const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(key), Body: body, IfNoneMatch: '*' }),
      );
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412) return 'exists';
      throw e;
    }
    this.writes++;
    return 'created';
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const out = await this.client.send(
      new GetObjectCommand({
        Bucket: this.cfg.bucket,
        Key: this.key(key),
        Range: `bytes=${offset}-${offset + length - 1}`,
      }),
    );
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async get(key: string): Promise<Buffer> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(key) }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async ping(): Promise<void> {
    await this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, MaxKeys: 1 }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
