#!/usr/bin/env node
// The `micromegas` command as npm links it. This file is committed, not built: npm links a
// workspace's bins before the postinstall build writes dist/, and skips a bin whose file is missing.
const main = new URL('../dist/src/main.js', import.meta.url);
try {
  await import(main.href);
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes(main.pathname)) throw e;
  console.error('micromegas: not built yet; run `npm install` (or `npm run build -w @micromegas/cli`) at the repository root');
  process.exit(1);
}
