#!/usr/bin/env node
// The micromegas command.
import { demo, post } from './demo.js';
import { writeFileSync } from 'node:fs';
import { serve, SERVE_OPTIONS } from './serve.js';
import { helpText as gatewayHelp, keysCommand, loadConfig, optionHelp } from '@micromegas/gateway';
import { ARROW_STREAM, parseTime, toCsv, toTextTable, traceFormatOf } from '@micromegas/analytics';
import { tableFromIPC } from 'apache-arrow';

const HELP = `Usage: micromegas <command> [options]

Commands:
  serve [options]      ingestion (/ingestion/...), SQL (/api/query) and maintenance on one port
                       (default http://127.0.0.1:9000; embedded PGlite + local objects under --data-dir ./data)
                       options below
  demo [--url URL] [--seconds 60] [--games 2]
                       a simulated game and a Node service post for a while, then a few queries
  start [serve options] [--seconds 60]
                       serve, run the demo against it, keep serving (npm start)
  query "SELECT ..." [--url URL] [--begin T] [--end T] [--limit N] [--format table|csv|json|arrow]
                       SQL over HTTP against a running server (T: RFC 3339 or a duration like 1h)
  perfetto <process_id> -o FILE [--url URL] [--begin T] [--end T]
                       the process's thread and async spans as a Perfetto trace
                       (FILE.pftrace: protobuf; FILE.json: Chrome JSON; both open in ui.perfetto.dev)
  keys create <name> | list | revoke <id|name> --pg-url URL
                       API keys for ingestion and SQL (printed once; only their hashes are stored)
  help                 this text

Serve options:
${optionHelp(SERVE_OPTIONS).join('\n')}
${gatewayHelp().split('\n').slice(gatewayHelp().split('\n').indexOf('Options:') + 1).join('\n')}

Clients (demo, query, perfetto) read MICROMEGAS_URL for --url, and send MICROMEGAS_API_KEY as a bearer token when set.
`;

const DEFAULT_URL = 'http://127.0.0.1:9000';

/** `--begin 1h` (end defaults to now) or RFC 3339 bounds; neither: no range. */
function timeRange(begin?: string, end?: string): { begin: string; end: string } | Record<string, never> {
  if (begin === undefined && end === undefined) return {};
  if (begin === undefined) throw new Error('--end needs --begin');
  const now = new Date();
  return { begin: parseTime(begin, now)!, end: parseTime(end, now) ?? now.toISOString() };
}

function take(argv: string[], flag: string, def?: string): string | undefined {
  const i = argv.indexOf(flag);
  if (i < 0) return def;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) argv = ['help'];
  const command = argv.shift() ?? 'help';
  switch (command) {
    case 'serve':
    case 'start': {
      const seconds = Number(take(argv, '--seconds', '60'));
      const server = await serve(argv);
      console.log(`micromegas: ingestion ${server.url}/ingestion/  SQL ${server.url}/api/query`);
      const stop = async () => {
        console.log('micromegas: stopping');
        await server.close();
        process.exit(0);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      if (command === 'start') {
        await demo({ url: server.url, seconds, games: 2 });
        console.log(`\nmicromegas: still serving at ${server.url} (Ctrl-C to stop). Try:\n  npx micromegas query "SELECT count(*) FROM log_entries" --begin 1h`);
      }
      return new Promise(() => {});
    }
    case 'demo': {
      const url = take(argv, '--url', process.env.MICROMEGAS_URL ?? DEFAULT_URL)!;
      await demo({ url, seconds: Number(take(argv, '--seconds', '60')), games: Number(take(argv, '--games', '2')) });
      return 0;
    }
    case 'query': {
      const url = take(argv, '--url', process.env.MICROMEGAS_URL ?? DEFAULT_URL)!;
      const range = timeRange(take(argv, '--begin'), take(argv, '--end'));
      const limit = take(argv, '--limit');
      const format = take(argv, '--format', 'table')!;
      if (!['table', 'csv', 'json', 'arrow'].includes(format)) throw new Error('--format must be table, csv, json or arrow');
      const sql = argv.join(' ');
      if (!sql) throw new Error('query needs SQL, e.g. micromegas query "SELECT * FROM processes"');
      const body = { sql, ...range, ...(limit === undefined ? {} : { limit: Number(limit) }) };
      if (format === 'json') {
        process.stdout.write((await post(url, '/api/query', body)).toString('utf8') + '\n');
        return 0;
      }
      const ipc = await post(url, '/api/query', body, ARROW_STREAM);
      if (format === 'arrow') {
        process.stdout.write(ipc);
        return 0;
      }
      const table = tableFromIPC(ipc);
      process.stdout.write(format === 'csv' ? toCsv(table) : toTextTable(table));
      return 0;
    }
    case 'perfetto': {
      const url = take(argv, '--url', process.env.MICROMEGAS_URL ?? DEFAULT_URL)!;
      const range = timeRange(take(argv, '--begin'), take(argv, '--end'));
      const out = take(argv, '-o') ?? take(argv, '--output');
      const [processId] = argv;
      if (!processId || !out) throw new Error('usage: micromegas perfetto <process_id> -o trace.pftrace|trace.json [--begin T] [--end T]');
      const trace = await post(url, '/api/perfetto', { process_id: processId, format: traceFormatOf(out), ...range });
      writeFileSync(out, trace);
      console.log(`micromegas: wrote ${out} (${trace.length} bytes); open it in https://ui.perfetto.dev`);
      return 0;
    }
    case 'keys': {
      const { config, args } = loadConfig(argv);
      return keysCommand(config, args, 'micromegas');
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return 0;
    default:
      console.error(`unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`micromegas: ${(e as Error).message}`);
    process.exit(1);
  },
);
