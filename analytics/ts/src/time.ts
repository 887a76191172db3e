// Query time ranges: RFC 3339 timestamps, or a relative `--begin 1h` / `30m` / `2d` / `45s`.

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** Turns `1h`-style durations into an RFC 3339 time before `now`; passes RFC 3339 through. */
export function parseTime(value: string | undefined, now: Date = new Date()): string | undefined {
  if (value === undefined || value === '') return undefined;
  const rel = /^(\d+(?:\.\d+)?)([smhd])$/.exec(value);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * UNITS[rel[2]]).toISOString();
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw new Error(`invalid time '${value}': use RFC 3339 or a duration like 1h`);
  return value;
}
