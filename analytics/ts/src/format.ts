// Output formats of the query CLI.
import type { Table } from 'apache-arrow';

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

function rowsOf(table: Table): string[][] {
  const names = table.schema.fields.map((f) => f.name);
  const out: string[][] = [];
  for (const row of table) {
    const r = row as unknown as Record<string, unknown>;
    out.push(names.map((n) => cell(r[n])));
  }
  return out;
}

export function toCsv(table: Table): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const names = table.schema.fields.map((f) => f.name);
  return [names, ...rowsOf(table)].map((r) => r.map(quote).join(',')).join('\n') + '\n';
}

export function toTextTable(table: Table): string {
  const names = table.schema.fields.map((f) => f.name);
  const rows = rowsOf(table);
  const widths = names.map((n, i) => Math.max(n.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join(' | ');
  return [line(names), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)].join('\n') + `\n(${rows.length} rows)\n`;
}
