// Prometheus text exposition for a handful of counters and histograms. Labels stay
// low-cardinality (route, status, kind): never a process, stream or key id.

type Labels = Record<string, string>;

// Label sets repeat (a few routes x a few statuses): memoise their rendered form.
const keyCache = new Map<string, string>();
export const labelKey = (l: Labels) => {
  let raw = '';
  for (const k in l) raw += l[k] + '\u0000';
  let k = keyCache.get(raw);
  if (k === undefined) {
    k = Object.entries(l)
      .map(([n, v]) => `${n}="${v}"`)
      .join(',');
    if (keyCache.size < 10_000) keyCache.set(raw, k);
  }
  return k;
};

const braces = (k: string) => (k ? `{${k}}` : '');

class Counter {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(l: Labels, by = 1): void {
    this.incKey(labelKey(l), by);
  }
  /** `k` as rendered by labelKey (callers on the request path keep it precomputed). */
  incKey(k: string, by = 1): void {
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) lines.push(`${this.name}${braces(k)} ${v}`);
    return lines.join('\n');
  }
}

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class Histogram {
  readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string) {}
  observe(l: Labels, v: number): void {
    this.observeKey(labelKey(l), v);
  }
  observeKey(k: string, v: number): void {
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (v <= BUCKETS[i]) s.counts[i]++;
    s.sum += v;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? ',' : '';
      BUCKETS.forEach((b, i) => lines.push(`${this.name}_bucket{${k}${sep}le="${b}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${braces(k)} ${s.sum}`, `${this.name}_count${braces(k)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

export class Metrics {
  readonly requests = new Counter('gateway_http_requests_total', 'HTTP requests by route and status.');
  readonly bytes = new Counter('gateway_request_body_bytes_total', 'Request body bytes received by route.');
  readonly blocks = new Counter('gateway_blocks_ingested_total', 'Blocks acknowledged (200) by insert_block.');
  readonly errors = new Counter('gateway_errors_total', 'Error replies by route and status.');
  readonly storage = new Histogram('gateway_storage_duration_seconds', 'Object PUT and PostgreSQL INSERT latency.');
  readonly duration = new Histogram('gateway_http_request_duration_seconds', 'Request handling time by route.');
  /** Gauges sampled at scrape time. */
  gauges: () => Record<string, number> = () => ({});

  render(): string {
    const parts = [this.requests, this.bytes, this.blocks, this.errors, this.duration, this.storage].map((m) =>
      m.render(),
    );
    for (const [name, v] of Object.entries(this.gauges())) parts.push(`# TYPE ${name} gauge\n${name} ${v}`);
    return parts.join('\n') + '\n';
  }
}

/**
 * Sums several expositions of the same metrics (one per worker thread) series by series;
 * comment lines are kept once. Counters, histogram buckets and the gauges here all add up.
 */
export function mergeExpositions(texts: string[]): string {
  const order: string[] = [];
  const sums = new Map<string, number>();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const cut = line.startsWith('#') ? -1 : line.lastIndexOf(' ');
      const series = cut < 0 ? line : line.slice(0, cut);
      if (!sums.has(series)) order.push(series);
      sums.set(series, (sums.get(series) ?? 0) + (cut < 0 ? 0 : Number(line.slice(cut + 1))));
    }
  }
  return order.map((s) => (s.startsWith('#') ? s : `${s} ${sums.get(s)}`)).join('\n') + '\n';
}
