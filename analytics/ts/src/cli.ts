#!/usr/bin/env node
// micromegas-query "SELECT …" [--begin 1h|RFC3339] [--end RFC3339] [--limit N]
//                  [--format table|csv|json|arrow]
// micromegas-query perfetto <process_id> -o trace.pftrace|trace.json [--begin …] [--end …]
// Reads MICROMEGAS_SQL_CONNECTION_STRING and MICROMEGAS_OBJECT_STORE_URI.
import { parseArgs } from 'node:util';
import { tableFromIPC } from 'apache-arrow';
import { writeFileSync } from 'node:fs';
import { Engine } from './engine.js';
import { exportPerfetto, traceFormatOf } from './perfetto.js';
import { toCsv, toTextTable } from './format.js';

export type OutputFormat = 'table' | 'csv' | 'json' | 'arrow';

/**
 * The query answered from blocks where no partition was fresh; the partitions it needed are
 * written after it. A one-shot command waits for them, so the next command reads them.
 */
async function persistPartitions(engine: Engine, err: NodeJS.WritableStream): Promise<void> {
  const notice = setTimeout(() => err.write('writing the Parquet partitions this query needed, for the next queries…\n'), 1000);
  await engine.idle();
  clearTimeout(notice);
}

/** Runs the query command; returns the process exit code. Used by the `micromegas query` CLI too. */
export async function runQueryCli(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        begin: { type: 'string' },
        end: { type: 'string' },
        limit: { type: 'string' },
        format: { type: 'string', default: 'table' },
      },
    });
  } catch (e) {
    err.write(`${(e as Error).message}\n`);
    return 2;
  }
  const sql = parsed.positionals.join(' ');
  const format = parsed.values.format as OutputFormat;
  if (!sql || !['table', 'csv', 'json', 'arrow'].includes(format)) {
    err.write('usage: micromegas-query "SELECT …" [--begin 1h|RFC3339] [--end RFC3339] [--limit N] [--format table|csv|json|arrow]\n');
    return 2;
  }
  const options = {
    begin: parsed.values.begin,
    end: parsed.values.end,
    limit: parsed.values.limit === undefined ? undefined : Number(parsed.values.limit),
  };
  try {
    const engine = await Engine.open();
    if (format === 'json') {
      out.write(await engine.queryJsonBytes(sql, options));
      out.write('\n');
    } else {
      const ipc = await engine.queryIpc(sql, options);
      out.write(format === 'arrow' ? ipc : format === 'csv' ? toCsv(tableFromIPC(ipc)) : toTextTable(tableFromIPC(ipc)));
    }
    await persistPartitions(engine, err);
    return 0;
  } catch (e) {
    err.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

/** `perfetto <process_id> -o trace.pftrace [--begin --end]`: writes a Perfetto trace (Chrome JSON for `.json`). */
export async function runPerfettoCli(argv: string[], err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { output: { type: 'string', short: 'o' }, begin: { type: 'string' }, end: { type: 'string' } } });
  } catch (e) {
    err.write(`${(e as Error).message}\n`);
    return 2;
  }
  const [processId] = parsed.positionals;
  if (!processId || !parsed.values.output) {
    err.write('usage: micromegas-query perfetto <process_id> -o trace.pftrace|trace.json [--begin 1h|RFC3339] [--end RFC3339]\n');
    return 2;
  }
  try {
    const { begin, end, output } = parsed.values;
    const engine = await Engine.open();
    writeFileSync(output, await exportPerfetto(engine, processId, { begin, end, format: traceFormatOf(output) }));
    await persistPartitions(engine, err);
    return 0;
  } catch (e) {
    err.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const args = process.argv.slice(2);
  (args[0] === 'perfetto' ? runPerfettoCli(args.slice(1)) : runQueryCli(args)).then((code) => process.exit(code));
}
