// `micromegas demo`: a simulated game and an instrumented Node service post to a
// server for a while, then a few SQL queries show what arrived.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const SIMULATOR = `${repoRoot}build/unreal-plugin-protocol/mm-game-sim`;

export interface DemoOptions {
  url: string;
  seconds: number;
  games: number;
  out?: (line: string) => void;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

/** POSTs JSON to a server; the response body, or an error with the server's status and message.
 * Sends MICROMEGAS_API_KEY, when set, as the bearer token the gateway checks. */
export async function post(url: string, path: string, body: unknown, accept?: string): Promise<Buffer> {
  const key = process.env.MICROMEGAS_API_KEY;
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`${path} answered ${res.status}: ${bytes.toString('utf8')}`);
  return bytes;
}

/** SQL over HTTP, as JSON rows. */
export async function query(url: string, sql: string, range?: { begin: string; end: string }): Promise<Record<string, unknown>[]> {
  return JSON.parse((await post(url, '/api/query', { sql, ...range })).toString('utf8'));
}

export function table(rows: Record<string, unknown>[]): string {
  if (!rows.length) return '  (no rows)';
  const keys = Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)).slice(0, 60);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals: string[]) => '  ' + vals.map((v, i) => v.padEnd(widths[i])).join('  ');
  return [line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}

export const DEMO_QUERIES: { title: string; sql: string }[] = [
  { title: 'processes', sql: 'SELECT process_id, exe, computer, start_time FROM processes ORDER BY start_time' },
  {
    title: 'recent errors',
    sql: "SELECT time, process_id, target, msg FROM log_entries WHERE level <= 2 ORDER BY time DESC LIMIT 10",
  },
  {
    title: 'frame time p99 per process (ms)',
    sql: "SELECT process_id, count(*) AS frames, round(approx_percentile_cont(value, 0.99), 2) AS p99_ms FROM measures WHERE name = 'FrameTime' GROUP BY process_id ORDER BY p99_ms DESC",
  },
];

export async function demo(o: DemoOptions): Promise<void> {
  const out = o.out ?? ((l: string) => console.log(l));
  if (!existsSync(SIMULATOR)) throw new Error(`${SIMULATOR} is missing: run npm install (it builds the C++ tools)`);
  const begin = new Date(Date.now() - 1000).toISOString();
  out(`demo: ${o.games} simulated game(s) and one Node service post to ${o.url} for ${o.seconds} s`);
  const started = Date.now();
  const ticker = setInterval(() => out(`demo: ${Math.round((Date.now() - started) / 1000)}/${o.seconds} s`), 10000);
  const demoApp = fileURLToPath(new URL('./demo-app.js', import.meta.url));
  const [sim, app] = await Promise.all([
    run(SIMULATOR, ['--url', o.url, '--seconds', String(o.seconds), '--processes', String(o.games), '--spans-per-frame', '200'], {}),
    run(process.execPath, [demoApp], { MICROMEGAS_TELEMETRY_URL: o.url, DEMO_SECONDS: String(o.seconds) }),
  ]).finally(() => clearInterval(ticker));
  if (sim !== 0 || app !== 0) out(`demo: warning: simulator exited ${sim}, Node app exited ${app}`);
  const range = { begin, end: new Date(Date.now() + 1000).toISOString() };
  for (const q of DEMO_QUERIES) {
    out(`\n${q.title}:\n  ${q.sql}`);
    out(table(await query(o.url, q.sql, range)));
  }
}
