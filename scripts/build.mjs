#!/usr/bin/env node
// Builds everything `npm install` needs: system packages, the C++ core and its
// tools (CMake + Ninja into build/), then every workspace's own build script.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Rust builds are cached outside the clone, shared by every checkout on this machine.
process.env.CARGO_TARGET_DIR ??= join(homedir(), '.cache/micromegas/cargo-target');
const step = (title, cmd, args, opts = {}) => {
  const started = Date.now();
  console.log(`\n[build] ${title}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`[build] FAILED: ${title} (${cmd} ${args.join(' ')})`);
    process.exit(r.status ?? 1);
  }
  console.log(`[build] done: ${title} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
};

if (process.env.MICROMEGAS_SKIP_SETUP !== '1') step('system packages (scripts/setup.sh)', 'bash', ['scripts/setup.sh']);
step('protocol headers are up to date', 'node', ['unreal-plugin-protocol/codegen/gen.mjs', '--check']);
const generator = existsSync('/usr/bin/ninja') ? ['-G', 'Ninja'] : [];
step('configure C++ (native, protocol, tools)', 'cmake', ['-S', '.', '-B', 'build', '-DCMAKE_BUILD_TYPE=Release', ...generator]);
step('compile C++', 'cmake', ['--build', 'build', '--parallel']);
const { workspaces = [] } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
if (workspaces.length) step('workspace builds', 'npm', ['run', 'build', '--workspaces', '--if-present']);
console.log('\n[build] everything is built');
