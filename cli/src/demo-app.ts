// A small instrumented Node service for the demo: simulated HTTP requests with
// async spans, logs at several levels and latency metrics, for --seconds.
import { init, logger, metric, asyncSpan, shutdown } from '@micromegas/node';

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
await shutdown({ deadlineMs: 10000 });
