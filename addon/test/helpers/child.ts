/**
 * Runs a script in a child Node process that records to the test's gateway over HTTP, then reads
 * back what the gateway stored for that process.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Capture } from './decode';
import { gatewayUrl, readStored, TEST_API_KEY } from './gateway';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
/** Process property that tags each child, so its rows can be found among the gateway's. */
export const RUN_KEY = 'mm-test-run';

// Scratch directories of the children, removed when the test process exits.
const scratch: string[] = [];
process.on('exit', () => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** What the gateway stored for this child. */
  capture: Capture;
  /** The child's scratch directory (DIR), for the directory-sink tests. */
  dir: string;
}

/**
 * `code` runs as CommonJS with `mm` = require('@micromegas/node'), `URL` = the gateway's ingestion
 * URL and `DIR` = an empty scratch directory; MICROMEGAS_INGESTION_API_KEY holds the gateway's key
 * unless opts.env sets it. `esm: true` runs it as a module instead. The child
 * resolves when it exits (a safety kill after timeoutMs only keeps a broken test from hanging).
 */
export async function runChild(
  code: string,
  opts: { env?: Record<string, string>; esm?: boolean; timeoutMs?: number; args?: string[] } = {},
): Promise<ChildResult> {
  const url = await gatewayUrl();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-addon-test-'));
  scratch.push(dir);
  const run = randomUUID();
  const consts = `const URL = ${JSON.stringify(url)}; const DIR = ${JSON.stringify(dir)};\n`;
  const prelude = opts.esm
    ? `import * as mm from '@micromegas/node'; ${consts}`
    : `const mm = require('@micromegas/node'); ${consts}`;
  const args = [...(opts.args ?? []), ...(opts.esm ? ['--input-type=module'] : []), '-e', prelude + code];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  for (const k of ['MICROMEGAS_TELEMETRY_URL', 'MICROMEGAS_TELEMETRY_DIR', 'MICROMEGAS_INGESTION_API_KEY', 'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES']) {
    if (!opts.env || !(k in opts.env)) delete env[k];
  }
  env.MICROMEGAS_INGESTION_API_KEY = opts.env?.MICROMEGAS_INGESTION_API_KEY ?? TEST_API_KEY;
  // Read natively and merged with the app's properties: the tag rides along with whatever the test sets.
  env.MICROMEGAS_PROCESS_PROPERTIES = [opts.env?.MICROMEGAS_PROCESS_PROPERTIES, `${RUN_KEY}=${run}`].filter(Boolean).join(',');
  const child = spawn(process.execPath, args, { cwd: PACKAGE_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const kill = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60000);
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  clearTimeout(kill);
  return { status, signal, stdout, stderr, dir, capture: await readStored(RUN_KEY, run) };
}

