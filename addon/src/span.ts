/**
 * Spans.
 * - Thread spans: `span('parse', () => ...)` or a handle `const s = spanScope('parse'); s.begin(); ...; s.end()`,
 *   begin/end events on the calling thread's cpu stream.
 * - Async spans: `asyncSpan('load', async () => ...)` and `traced('load', fn)`. The current span
 *   (id, depth) travels in an AsyncLocalStorage frame captured when the promise chain is created,
 *   so children started after an await still point to the right parent.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Binding } from './native';
import { current, noop, register, type Rebindable } from './state';

/** The current async span: id 0 at the root. */
export interface SpanFrame {
  readonly id: number;
  readonly depth: number;
}

const storage = new AsyncLocalStorage<SpanFrame>();

/** The async span that encloses the caller, if any. */
export function activeSpan(): SpanFrame | undefined {
  return storage.getStore();
}

export interface SpanOptions {
  target?: string;
  file?: string;
  line?: number;
}

/** A span descriptor, interned once: begin()/end() record thread spans with one native call each. */
export class SpanScope implements Rebindable {
  begin: () => void = noop;
  end: () => void = noop;
  /** Descriptor id in the current binding, -1 when not recording. */
  id = -1;
  constructor(readonly name: string, readonly opts: SpanOptions = {}) {
    if (typeof name !== 'string') throw new TypeError('span: name must be a string');
    register(this);
  }
  rebind(b: Binding | null): void {
    if (!b) {
      this.id = -1;
      this.begin = this.end = noop;
      return;
    }
    const id = (this.id = b.internSpan(this.name, this.opts.target ?? 'js', this.opts.file ?? '', this.opts.line ?? 0));
    [this.begin, this.end] = b.bindSpan(id); // native functions with the descriptor bound: no argument
  }
}

const scopes = new Map<string, SpanScope>();
function scopeFor(name: string): SpanScope {
  let s = scopes.get(name);
  if (!s) scopes.set(name, (s = new SpanScope(name)));
  return s;
}

/** Creates (or reuses) a thread-span handle. */
export function spanScope(name: string, opts?: SpanOptions): SpanScope {
  return opts ? new SpanScope(name, opts) : scopeFor(name);
}

/** Runs fn inside a synchronous thread span and returns its result. */
export function span<T>(name: string, fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError('span: fn must be a function');
  const s = scopeFor(name);
  s.begin();
  try {
    return fn();
  } finally {
    s.end();
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

/**
 * Runs fn inside an async span: the span begins now and ends when fn's promise settles (or when fn
 * returns, if it returns no promise). Nested asyncSpan calls inside fn, before or after any await,
 * record this span as their parent and depth + 1.
 */
export function asyncSpan<T>(name: string, fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError('asyncSpan: fn must be a function');
  const b = current();
  if (!b) return fn();
  const s = scopeFor(name);
  const parent = storage.getStore();
  const parentId = parent ? parent.id : 0;
  const depth = parent ? parent.depth + 1 : 0;
  const desc = s.id;
  const id = b.asyncSpanBegin(desc, parentId, depth);
  const end = (): void => b.asyncSpanEnd(desc, id, parentId, depth);
  let result: T;
  try {
    result = storage.run({ id, depth }, fn);
  } catch (e) {
    end();
    throw e;
  }
  if (isThenable(result)) {
    return (result as unknown as PromiseLike<unknown>).then(
      (v) => {
        end();
        return v;
      },
      (e) => {
        end();
        throw e;
      },
    ) as unknown as T;
  }
  end();
  return result;
}

/** Wraps fn so that each call runs in an async span named `name` (dd-trace's wrap). */
export function traced<A extends unknown[], R>(name: string, fn: (...args: A) => R): (...args: A) => R {
  if (typeof fn !== 'function') throw new TypeError('traced: fn must be a function');
  return function (this: unknown, ...args: A): R {
    return asyncSpan(name, () => fn.apply(this, args));
  };
}
