// Builds micromegas_node.node with cmake-js from the repository's root CMakeLists.txt into
// build/node (the plain build/ directory belongs to the native cmake build).
// Node-API only: the headers come from the node-api-headers package, so nothing is downloaded.
// (cmake-js decides this from the project's package.json, which is the root one here, so we say it.)
'use strict';
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { BuildSystem } = require('cmake-js');

const root = path.resolve(__dirname, '..', '..');
let ninja = false;
try {
  execFileSync('ninja', ['--version'], { stdio: 'ignore' });
  ninja = true;
} catch {}

const build = new BuildSystem({
  directory: root,
  out: path.join(root, 'build', 'node'),
  config: 'Release',
  generator: ninja ? 'Ninja' : undefined,
  cMakeOptions: { MICROMEGAS_BUILD_TESTS: 'OFF', MICROMEGAS_BUILD_BENCH: 'OFF' },
});
build.options.isNodeApi = true;
build.compile().catch((e) => {
  console.error(e && e.message ? e.message : e);
  process.exit(1);
});
