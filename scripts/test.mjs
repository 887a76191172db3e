#!/usr/bin/env node
// The one test command: starts the real services the suites need (PostgreSQL and an
// S3-compatible server, when the test-services module is present), runs the C++
// tests (ctest) and every workspace's test script, and ends with one summary line.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Rust builds are cached outside the clone, shared by every checkout on this machine.
process.env.CARGO_TARGET_DIR ??= join(homedir(), '.cache/micromegas/cargo-target');
const results = [];

function run(name, cmd, args, env, parse) {
  console.log(`\n[test] ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 28 });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  const counts = parse(`${r.stdout}\n${r.stderr}`);
  if (r.status !== 0 && counts.failed === 0) counts.failed = 1;  // crashed or failed to start
  // In CI a skipped test is a failure: it means a service or tool the test needs was missing.
  if (process.env.CI && counts.skipped) counts.failed += counts.skipped;
  results.push({ name, ...counts, status: r.status });
}

// ctest: "100% tests passed, 0 tests failed out of 11"
const parseCtest = (out) => {
  const m = out.match(/tests passed, (\d+) tests? failed out of (\d+)/);
  return m ? { passed: Number(m[2]) - Number(m[1]), failed: Number(m[1]), skipped: (out.match(/\*\*\*Skipped/g) ?? []).length } : { passed: 0, failed: 0, skipped: 0 };
};
// node --test: "ℹ pass 12" / "ℹ fail 0" (spec reporter) or "# pass 12" (tap);
// cargo test: "test result: ok. 12 passed; 0 failed; ..."
const parseWorkspace = (out) => {
  const sum = (re) => [...out.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  return {
    passed: sum(/^\S* ?pass (\d+)$/gm) + sum(/^test result: \w+\. (\d+) passed/gm),
    failed: sum(/^\S* ?fail (\d+)$/gm) + sum(/^test result: \w+\. \d+ passed; (\d+) failed/gm),
    skipped: sum(/^\S* ?skipped (\d+)$/gm) + sum(/^test result: \w+\. \d+ passed; \d+ failed; (\d+) ignored/gm),
  };
};

let services = null;
const servicesModule = join(root, 'scripts/test-services.mjs');
if (existsSync(servicesModule)) {
  const { startServices } = await import(pathToFileURL(servicesModule).href);
  console.log('[test] starting PostgreSQL and the S3-compatible server');
  services = await startServices({ log: (m) => console.log(`[services] ${m}`) });
}
const env = services?.env ?? {};
try {
  run('native + protocol (ctest)', 'ctest', ['--test-dir', 'build', '--output-on-failure', '-j2'], env, parseCtest);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const ws of pkg.workspaces ?? []) {
    const wsPkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
    if (wsPkg.scripts?.test) run(wsPkg.name, 'npm', ['test', '-w', wsPkg.name], env, parseWorkspace);
  }
} finally {
  await services?.stop();
}

console.log('\n[test] summary');
for (const r of results) console.log(`  ${r.failed ? 'FAIL' : 'ok  '} ${r.name}: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped${process.env.CI ? ' (counted as failed in CI)' : ''}` : ''}`);
const passed = results.reduce((s, r) => s + r.passed, 0);
const failed = results.reduce((s, r) => s + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
