// A small instrumented Node service for the demo: simulated HTTP requests with
// async spans, logs at several levels and latency metrics, for --seconds.
import { init, logger, metric, asyncSpan, shutdown, processId, stats } from '@micromegas/node';

const seconds = Number(process.env.DEMO_SECONDS ?? 60);
init({ processProperties: { app: 'demo-api', 'service.name': 'demo-api' } });
const log = logger('demo.api');
const latency = metric('http.latency', 'ms');
const requests = metric('http.requests', 'count', { integer: true });
const routes = ['/login', '/match', '/inventory', '/leaderboard'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function handle(i: number): Promise<void> {
  const route = routes[i % routes.length];
  await asyncSpan(`GET ${route}`, async () => {
    const started = performance.now();
    await asyncSpan('db.query', () => sleep(2 + (i % 7)));
    if (i % 97 === 0) log.error('upstream timeout', { route });
    else if (i % 23 === 0) log.warn('slow request', { route });
    else log.info('request served', { route });
    latency.record(performance.now() - started);
    requests.record(1);
  });
}

const end = Date.now() + seconds * 1000;
let i = 0;
while (Date.now() < end) {
  await Promise.all(Array.from({ length: 20 }, () => handle(i++)));
  await sleep(50);
}
log.info('demo app done', { requests: String(i) });
const id = processId();
const delivered = await shutdown({ deadlineMs: Number(process.env.DEMO_SHUTDOWN_MS ?? 10000) });
// What was recorded (target demo.api: a log per request and the last one; two metrics and two
// async spans per request), for tests to compare with SQL. Nothing dropped = all of it was sent.
const st = stats();
console.log(
  `DEMO_APP_TOTALS requests=${i} logs=${i + 1} metrics=${2 * i} async_spans=${2 * i} process_id=${id} ` +
    `blocks_dropped=${st?.blocksDropped ?? 0} events_dropped=${st?.eventsDropped ?? 0} retries=${st?.retries ?? 0} delivered=${delivered}`,
);
if (!delivered || st?.blocksDropped || st?.eventsDropped) process.exitCode = 1;
