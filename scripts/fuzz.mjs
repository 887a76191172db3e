#!/usr/bin/env node
// The property-based fuzz tests, run longer than `npm test` runs them: the gateway's (CBOR envelope,
// LZ4 frame reader) and the analytics engine's (transit decoder, LZ4 path). Every suite reads its
// case count from MICROMEGAS_FUZZ_CASES; this script sets it. Finding no fuzz test is a failure.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HELP = `Usage: npm run fuzz -- [--cases N] [--only gateway|analytics|rust]

Runs the property-based fuzz tests with N cases each (MICROMEGAS_FUZZ_CASES; default 200000):
  gateway     gateway/test/*fuzz*.test.ts (built first)
  analytics   analytics/ts/test/*fuzz*.test.ts, when there are any (built with build:ts)
  rust        cargo test --release of analytics/engine/tests/*fuzz*.rs (test names containing
              "fuzz" when there is no such file)
Exits non-zero when a suite fails or when no fuzz test is found.`;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.env.CARGO_TARGET_DIR ??= join(homedir(), '.cache/micromegas/cargo-target');

function parseArgs(argv) {
  const o = { cases: 200_000, only: null };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--help' || flag === '-h') {
      console.log(HELP);
      process.exit(0);
    } else if (flag === '--cases') {
      o.cases = Number(value());
      if (!Number.isSafeInteger(o.cases) || o.cases < 1) fail('--cases must be a positive integer');
    } else if (flag === '--only') {
      o.only = value();
      if (!['gateway', 'analytics', 'rust'].includes(o.only)) fail('--only must be gateway, analytics or rust');
    } else fail(`unknown argument ${argv[i]}\n\n${HELP}`);
  }
  return o;
}

function fail(message) {
  console.error(`fuzz: ${message}`);
  process.exit(2);
}

/** Runs a command with live output; resolves with its exit code and everything it printed. */
function run(cmd, args, cwd) {
  console.log(`\n[fuzz] ${cmd} ${args.join(' ')}  (in ${cwd})`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (process.stdout.write(d), (out += d)));
    child.stderr.on('data', (d) => (process.stderr.write(d), (out += d)));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? signal, out }));
  });
}

/** The fuzz test files a workspace's build holds. */
function builtFuzzTests(workspace) {
  const dir = join(root, workspace, 'dist/test');
  return existsSync(dir) ? readdirSync(dir).filter((f) => /fuzz.*\.test\.js$/.test(f)).map((f) => join('dist/test', f)) : [];
}

/** A workspace's fuzz test sources (test/ for the gateway, ts/test/ for analytics). */
function fuzzSources(workspace) {
  const dir = join(root, workspace, workspace === 'analytics' ? 'ts/test' : 'test');
  return existsSync(dir) ? readdirSync(dir).filter((f) => /fuzz.*\.test\.ts$/.test(f)) : [];
}

async function nodeSuite(workspace, required) {
  if (!fuzzSources(workspace).length) {
    return required ? { ok: false, why: `no *fuzz*.test.ts in ${workspace}` } : { ok: true, why: 'no fuzz tests here (none required)' };
  }
  const build = await run('npm', ['run', workspace === 'analytics' ? 'build:ts' : 'build', '-w', `@micromegas/${workspace}`], root);
  if (build.code !== 0) return { ok: false, why: 'build failed' };
  const files = builtFuzzTests(workspace);
  if (!files.length) return { ok: false, why: `the build left no *fuzz*.test.js in ${workspace}/dist/test` };
  const r = await run(process.execPath, ['--test', '--test-timeout=0', ...files], join(root, workspace));
  const passed = Number(/^\S* ?pass (\d+)$/m.exec(r.out)?.[1] ?? 0);
  if (r.code === 0 && passed === 0) return { ok: false, why: 'no test ran' };
  return { ok: r.code === 0, why: `${files.length} file(s), ${passed} test(s) passed${r.code === 0 ? '' : `, exit ${r.code} (see above)`}` };
}

async function rustSuite() {
  const testsDir = join(root, 'analytics/engine/tests');
  const binaries = existsSync(testsDir) ? readdirSync(testsDir).filter((f) => /fuzz.*\.rs$/.test(f)).map((f) => f.slice(0, -3)) : [];
  const select = binaries.length ? binaries.flatMap((b) => ['--test', b]) : ['fuzz'];
  const r = await run('cargo', ['test', '--release', '--target', 'x86_64-unknown-linux-gnu', '-p', 'micromegas-analytics', ...select], join(root, 'analytics'));
  const passed = [...r.out.matchAll(/^test result: \w+\. (\d+) passed/gm)].reduce((s, m) => s + Number(m[1]), 0);
  if (r.code === 0 && passed === 0) return { ok: false, why: 'no Rust fuzz test ran' };
  return { ok: r.code === 0, why: `${binaries.length ? binaries.join(', ') : 'tests named *fuzz*'}: ${passed} passed${r.code === 0 ? '' : `, cargo exited ${r.code} (see above)`}` };
}

const opts = parseArgs(process.argv.slice(2));
process.env.MICROMEGAS_FUZZ_CASES = String(opts.cases);
console.log(`[fuzz] MICROMEGAS_FUZZ_CASES=${opts.cases}`);
const suites = [
  ['gateway', () => nodeSuite('gateway', true)],
  ['analytics', () => nodeSuite('analytics', false)],
  ['rust', rustSuite],
].filter(([name]) => !opts.only || opts.only === name);

const results = [];
for (const [name, go] of suites) {
  const started = Date.now();
  const r = await go();
  results.push({ name, ...r, s: ((Date.now() - started) / 1000).toFixed(0) });
}
console.log('\n[fuzz] summary');
for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.why} (${r.s} s)`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
