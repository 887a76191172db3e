/** Runs a script in a child Node process that records into a fresh directory sink. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readCapture, type Capture } from './decode';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

export interface ChildResult { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; dir: string; capture: Capture }

/**
 * `code` runs as CommonJS with `mm` = require('@micromegas/node') and `DIR` = the sink directory.
 * `esm: true` runs it as a module instead.
 */
export function runChild(code: string, opts: { env?: Record<string, string>; esm?: boolean; timeoutMs?: number; signal?: NodeJS.Signals; args?: string[] } = {}): ChildResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-addon-test-'));
  const prelude = opts.esm
    ? `import * as mm from '@micromegas/node'; const DIR = ${JSON.stringify(dir)};\n`
    : `const mm = require('@micromegas/node'); const DIR = ${JSON.stringify(dir)};\n`;
  const args = [...(opts.args ?? []), ...(opts.esm ? ['--input-type=module'] : []), '-e', prelude + code];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  for (const k of ['MICROMEGAS_TELEMETRY_URL', 'MICROMEGAS_TELEMETRY_DIR', 'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'MICROMEGAS_PROCESS_PROPERTIES']) {
    if (!opts.env || !(k in opts.env)) delete env[k];
  }
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, args, {
    cwd: PACKAGE_ROOT, env, encoding: 'utf8', timeout: opts.timeoutMs ?? 60000,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, dir, capture: readCapture(dir) };
}
