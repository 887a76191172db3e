// The newcomer path: every shell command of README.md's "Quick start" and "Querying" blocks, run
// as written from the repository root against `npm start` started here. Only what must differ
// per run is substituted: the port (9000 may be taken), <process_id>, and the trace file lands in
// a temp dir. npx may not fetch anything (npm_config_yes=false): `micromegas` must be the local bin.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep, tempDir } from './e2e-helpers.js';
import { query } from '../src/demo.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The lines of the ```sh blocks in the `## <title>` section, without trailing comments. */
function shellCommands(markdown: string, title: string): string[] {
  const section = markdown.split(/^## /m).find((s) => s.startsWith(`${title}\n`));
  assert.ok(section, `README.md has a "## ${title}" section`);
  const lines: string[] = [];
  for (const block of section.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    for (const line of block[1].split('\n')) {
      const command = line.replace(/\s+#\s.*$/, '').trim();
      if (command) lines.push(command);
    }
  }
  return lines;
}

const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const work = tempDir('mm-readme-');
const env = { ...process.env, npm_config_yes: 'false', MICROMEGAS_URL: url };
let server: ChildProcess | undefined;
let serverOutput = '';

/** Runs one command line with bash in the repository root. */
function sh(line: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', line], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

before(async () => {
  // `npm start` as the README runs it (npm install is what built this test), on this run's port
  // and data dir, with a short demo.
  server = spawn('npm', ['start', '--', '--port', String(port), '--data-dir', join(work, 'data'), '--seconds', '3'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // npm, its shell and the server form one group, killed together
  });
  server.stdout!.on('data', (d) => (serverOutput += d));
  server.stderr!.on('data', (d) => (serverOutput += d));
  const deadline = Date.now() + 90_000;
  while (!serverOutput.includes('still serving at')) {
    if (server.exitCode !== null) throw new Error(`npm start exited ${server.exitCode}:\n${serverOutput}`);
    if (Date.now() > deadline) throw new Error(`npm start: no demo summary within 90 s:\n${serverOutput}`);
    await sleep(100);
  }
});
after(() => {
  if (server?.pid && server.exitCode === null) process.kill(-server.pid, 'SIGKILL');
});

test('npm start serves, runs the demo and prints what the README promises', () => {
  assert.match(serverOutput, new RegExp(`micromegas: ingestion ${url}/ingestion/  SQL ${url}/api/query`));
  for (const title of ['processes:', 'recent errors:', 'frame time p99 per process (ms):']) assert.ok(serverOutput.includes(title), `${title}\n${serverOutput}`);
  assert.match(serverOutput, /mm-game-sim/);
});

test('every Quick start and Querying command works as written', async () => {
  const commands = [...shellCommands(README, 'Quick start'), ...shellCommands(README, 'Querying')];
  const [game] = await query(url, "SELECT process_id FROM processes WHERE exe LIKE '%mm-game-sim%' LIMIT 1");
  assert.ok(game, 'the demo recorded a game process');
  const trace = join(work, 'trace.pftrace');
  // What each command must print, by what it starts with; a command with no entry fails the test.
  const checks: [RegExp, (out: string) => void][] = [
    [/^npm install && npm start$/, () => {}], // the server of this test
    [/^npx micromegas query "SELECT target, count\(\*\)/, (out) => assert.match(out, /target\s+.*count/)],
    [/^npx micromegas query "SELECT level, count\(\*\).* --format csv$/, (out) => assert.match(out, /^level,count\(\*\)\n(\d+,\d+\n)+$/)],
    [/^curl /, (out) => assert.ok((JSON.parse(out) as unknown[]).length >= 3, out)],
    [/^npx micromegas perfetto /, (out) => {
      assert.match(out, /micromegas: wrote .*trace\.pftrace/);
      assert.ok(statSync(trace).size > 0);
    }],
    [/^npx micromegas --help$/, (out) => {
      assert.match(out, /^Usage: micromegas <command>/);
      for (const flag of ['--listen', '--port', '--data-dir', '--role']) assert.ok(out.includes(flag), `--help mentions ${flag}`);
    }],
  ];
  let ran = 0;
  for (const written of commands) {
    if (written === 'npm install && npm test') continue; // the test suite itself
    const check = checks.find(([pattern]) => pattern.test(written));
    assert.ok(check, `README command with no check here: ${written}`);
    if (written.startsWith('npm install')) continue;
    const line = written
      .replaceAll('localhost:9000', `localhost:${port}`)
      .replaceAll('<process_id>', String(game.process_id))
      .replace(/-o trace\.pftrace/, `-o ${trace}`);
    const { code, stdout, stderr } = await sh(line);
    assert.equal(code, 0, `${written}\nexited ${code}:\n${stdout}${stderr}`);
    check[1](stdout);
    ran++;
  }
  assert.ok(ran >= 6, `ran ${ran} README commands`);
  assert.ok(existsSync(trace));
});
