// Perfetto export: a process's thread spans (one track per cpu stream) and async spans over a time
// range, as a Chrome JSON trace, which the Perfetto UI opens. Spans come out of the engine
// as SQL results; this file only reshapes them.
import type { Engine, QueryOptions } from './engine.js';

export interface TraceEvent {
  name: string;
  cat: string;
  ph: 'X' | 'b' | 'e' | 'M';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  id?: string;
  args?: Record<string, unknown>;
}

/** Builds the trace; `options.begin`/`end` bound the spans (thread_spans needs a range upstream too). */
export async function exportPerfettoTrace(engine: Engine, processId: string, options: QueryOptions = {}): Promise<{ traceEvents: TraceEvent[] }> {
  if (!/^[0-9a-f-]{36}$/i.test(processId)) throw new Error(`process id must be a UUID: ${processId}`);
  const [proc] = await engine.queryRows(`SELECT exe FROM processes WHERE process_id = '${processId}'`);
  if (!proc) throw new Error(`process ${processId} not found`);
  const events: TraceEvent[] = [{ name: 'process_name', cat: '', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: proc.exe } }];
  const threads = await engine.queryRows(
    `SELECT stream_id, property_get(properties, 'thread-name') AS name, property_get(properties, 'thread-id') AS tid
     FROM streams WHERE process_id = '${processId}' AND array_has(tags, 'cpu') ORDER BY insert_time`,
  );
  let next = 1;
  for (const t of threads) {
    const tid = Number.parseInt(String(t.tid ?? ''), 10) || next;
    next += 1;
    events.push({ name: 'thread_name', cat: '', ph: 'M', ts: 0, pid: 1, tid, args: { name: `${t.name ?? 'thread'}-${tid}` } });
    const spans = await engine.queryRows(
      `SELECT name, target, filename, line, CAST("begin" AS BIGINT) AS b, duration FROM view_instance('thread_spans', '${t.stream_id}') ORDER BY "begin"`,
      options,
    );
    for (const s of spans) {
      events.push({ name: String(s.name), cat: String(s.target), ph: 'X', ts: Number(s.b) / 1000, dur: Number(s.duration) / 1000, pid: 1, tid, args: { file: s.filename, line: s.line } });
    }
  }
  const asyncEvents = await engine.queryRows(
    `SELECT event_type, span_id, name, target, CAST(time AS BIGINT) AS t FROM view_instance('async_events', '${processId}') ORDER BY time`,
    options,
  );
  for (const a of asyncEvents) {
    events.push({ name: String(a.name), cat: String(a.target), ph: a.event_type === 'begin' ? 'b' : 'e', ts: Number(a.t) / 1000, pid: 1, tid: 0, id: String(a.span_id) });
  }
  return { traceEvents: events };
}
