/**
 * Process metrics sampled on an unref'd interval: event-loop delay (perf_hooks histogram), heap,
 * RSS, external memory, and every GC pause (PerformanceObserver). None of it keeps the process alive.
 */
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import { metric } from './metric';

const T = { target: 'nodejs' };
const loopP50 = metric('nodejs.eventloop.delay.p50', 'ms', T);
const loopP99 = metric('nodejs.eventloop.delay.p99', 'ms', T);
const loopMax = metric('nodejs.eventloop.delay.max', 'ms', T);
const heapUsed = metric('nodejs.heap.used', 'bytes', { ...T, integer: true });
const heapTotal = metric('nodejs.heap.total', 'bytes', { ...T, integer: true });
const rss = metric('nodejs.rss', 'bytes', { ...T, integer: true });
const external = metric('nodejs.external', 'bytes', { ...T, integer: true });
const gcPause = metric('nodejs.gc.pause', 'ms', T);

let timer: NodeJS.Timeout | undefined;
let histogram: IntervalHistogram | undefined;
let gcObserver: PerformanceObserver | undefined;

export function sample(): void {
  if (histogram && histogram.count > 0) {
    loopP50.record(histogram.percentile(50) / 1e6);
    loopP99.record(histogram.percentile(99) / 1e6);
    loopMax.record(histogram.max / 1e6);
    histogram.reset();
  }
  const m = process.memoryUsage();
  heapUsed.record(m.heapUsed);
  heapTotal.record(m.heapTotal);
  rss.record(m.rss);
  external.record(m.external);
}

export function startProcessMetrics(intervalMs: number): void {
  stopProcessMetrics();
  histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  try {
    gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcPause.record(e.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
  } catch {
    gcObserver = undefined;
  }
  timer = setInterval(sample, intervalMs);
  timer.unref();
}

export function stopProcessMetrics(): void {
  if (timer) clearInterval(timer);
  timer = undefined;
  histogram?.disable();
  histogram = undefined;
  gcObserver?.disconnect();
  gcObserver = undefined;
}
