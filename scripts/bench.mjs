#!/usr/bin/env node
// `npm run bench [component | --report]`: runs each component's benchmark (they write
// bench/results/<component>.json), then renders bench/results/latest.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, 'bench/results');
mkdirSync(results, { recursive: true });
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const components = {
  native: () => spawnSync(join(root, 'build/native/bench/native_bench'), ['--out', join(results, 'native.json'), ...process.argv.slice(3)],
    { cwd: root, stdio: 'inherit' }),
};
for (const ws of pkg.workspaces ?? []) {
  const wsPkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
  if (wsPkg.scripts?.bench) components[ws] = () => spawnSync('npm', ['run', 'bench', '-w', wsPkg.name], { cwd: root, stdio: 'inherit' });
}
// `--report` only renders latest.md from the results already there.
const wanted = process.argv[2] === '--report' ? [] : process.argv[2] ? [process.argv[2]] : Object.keys(components);
for (const name of wanted) {
  if (!components[name]) {
    console.error(`unknown benchmark "${name}"; one of: ${Object.keys(components).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n[bench] ${name}`);
  const r = components[name]();
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// One markdown table per component from whatever results exist.
const fmt = (v) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : v ?? '');
let md = `# Benchmark results\n\nMachine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.\n` +
  'Ratios are measured against the peer or baseline in the same run; absolute figures are for this machine only.\n';
for (const file of ['native', 'addon', 'node', 'gateway', 'analytics']) {
  const path = join(results, `${file}.json`);
  if (!existsSync(path)) continue;
  const rows = JSON.parse(readFileSync(path, 'utf8'));
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  md += `\n## ${file}\n\n| ${keys.join(' | ')} |\n|${keys.map(() => '---').join('|')}|\n`;
  for (const r of rows) md += `| ${keys.map((k) => fmt(r[k])).join(' | ')} |\n`;
}
writeFileSync(join(results, 'latest.md'), md);
console.log(`\n[bench] wrote ${join(results, 'latest.md')}`);
