/**
 * Metrics through interned handles: `const m = metric('http.latency', 'ms'); m.record(12.5)`.
 * The descriptor is interned when telemetry starts; record() then stores the value in a slot shared
 * with native code and makes one native call without arguments (or is a no-op before init and
 * after shutdown).
 */
import type { Binding } from './native';
import { internProperties, noop, register, sharedArgs, VALUE, type Properties, type Rebindable } from './state';

export interface MetricOptions {
  /** Recorded as the metric's target. Default: "js". */
  target?: string;
  /** Record unsigned 64-bit integers (IntegerMetricEvent) instead of doubles. Default: false. */
  integer?: boolean;
  /** Fixed properties (labels) attached to every value of this handle. */
  properties?: Properties;
}

export class Metric implements Rebindable {
  /** Records one value, time-stamped natively. */
  record: (value: number) => void = noop;
  readonly name: string;
  readonly unit: string;
  readonly target: string;
  readonly integer: boolean;
  private readonly properties: Properties | undefined;

  constructor(name: string, unit: string, opts: MetricOptions = {}) {
    if (typeof name !== 'string') throw new TypeError('metric: name must be a string');
    if (typeof unit !== 'string') throw new TypeError('metric: unit must be a string');
    this.name = name;
    this.unit = unit;
    this.target = opts.target ?? 'js';
    this.integer = opts.integer === true;
    this.properties = opts.properties;
    register(this);
  }

  /** A handle with extra fixed properties (prom-client's labels()). */
  with(properties: Properties): Metric {
    return new Metric(this.name, this.unit, {
      target: this.target,
      integer: this.integer,
      properties: { ...this.properties, ...properties },
    });
  }

  rebind(b: Binding | null): void {
    if (!b) {
      this.record = noop;
      return;
    }
    const id = b.internMetric(this.name, this.unit, this.target);
    const props = this.properties ? internProperties(b, this.properties) : 0;
    // A native function bound to the descriptor, reading the value from the shared slot: no
    // argument crosses N-API (each napi_get_value_* costs a few ns).
    const record = b.bindMetric(id, props ?? 0, this.integer ? 1 : 0);
    const args = sharedArgs(b);
    this.record = (value: number) => {
      if (typeof value !== 'number') throw invalidValue();
      args[VALUE] = value;
      record();
    };
  }
}

function invalidValue(): TypeError {
  const e = new TypeError('metric.record: value must be a number');
  (e as NodeJS.ErrnoException).code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

/** Creates a metric handle; create it once (module scope), record many times. */
export function metric(name: string, unit = '', opts?: MetricOptions): Metric {
  return new Metric(name, unit, opts);
}
