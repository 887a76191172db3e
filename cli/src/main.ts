#!/usr/bin/env node
// The micromegas command.
import { demo } from './demo.js';
import { serve } from './serve.js';
import { helpText as gatewayHelp } from '@micromegas/gateway';

const HELP = `Usage: micromegas <command> [options]

Commands:
  serve [options]      ingestion (/ingestion/...) and SQL (/api/query) on one port
                       (default http://127.0.0.1:9000; embedded PGlite + local objects under --data-dir ./data)
      --role all|gateway|analytics   split roles for production [env MICROMEGAS_ROLE] (default all)
      and every gateway option (below)
  demo [--url URL] [--seconds 60] [--games 2]
                       a simulated game and a Node service post for a while, then a few queries
  start [serve options] [--seconds 60]
                       serve, run the demo against it, keep serving (npm start)
  query "SELECT ..." [--url URL] [--begin T] [--end T] [--format table|json]
                       SQL over HTTP against a running server
  help                 this text

Gateway options:
${gatewayHelp().split('\n').slice(gatewayHelp().split('\n').indexOf('Options:') + 1).join('\n')}
`;

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
      const url = take(argv, '--url', process.env.MICROMEGAS_URL ?? 'http://127.0.0.1:9000')!;
      await demo({ url, seconds: Number(take(argv, '--seconds', '60')), games: Number(take(argv, '--games', '2')) });
      return 0;
    }
    case 'query': {
      const { query, table } = await import('./demo.js');
      const url = take(argv, '--url', process.env.MICROMEGAS_URL ?? 'http://127.0.0.1:9000')!;
      const begin = take(argv, '--begin');
      const end = take(argv, '--end');
      const format = take(argv, '--format', 'table');
      const sql = argv.join(' ');
      if (!sql) throw new Error('query needs SQL, e.g. micromegas query "SELECT * FROM processes"');
      const { parseTime } = await import('@micromegas/analytics');
      const range = begin ? { begin: parseTime(begin)!, end: parseTime(end) ?? new Date().toISOString() } : undefined;
      const rows = await query(url, sql, range);
      console.log(format === 'json' ? JSON.stringify(rows, null, 2) : table(rows));
      return 0;
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
