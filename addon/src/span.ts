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
import { current, DEPTH, noop, PARENT_ID, register, sharedArgs, SPAN_ID, type Rebindable } from './state';

/** The current async span: id 0 at the root. */
export interface SpanFrame {
  readonly id: number;
  readonly depth: number;
}

const storage = new AsyncLocalStorage<AsyncFrame>();

/** The async span that encloses the caller, if any. */
export function activeSpan(): SpanFrame | undefined {
  return storage.getStore();
}

export interface SpanOptions {
  target?: string;
  file?: string;
  line?: number;
}

/**
 * A span descriptor, interned once: begin()/end() record thread spans with one native call each,
 * asyncBegin()/asyncEnd() the edges of async spans (numbers passed through `sharedArgs`).
 */
export class SpanScope implements Rebindable {
  begin: () => void = noop;
  end: () => void = noop;
  asyncBegin: () => void = noop;
  asyncEnd: () => void = noop;
  /** Descriptor id in the current binding, -1 when not recording. */
  id = -1;
  constructor(readonly name: string, readonly opts: SpanOptions = {}) {
    if (typeof name !== 'string') throw new TypeError('span: name must be a string');
    register(this);
  }
  rebind(b: Binding | null): void {
    if (!b) {
      this.id = -1;
      this.begin = this.end = this.asyncBegin = this.asyncEnd = noop;
      return;
    }
    const id = (this.id = b.internSpan(this.name, this.opts.target ?? 'js', this.opts.file ?? '', this.opts.line ?? 0));
    [this.begin, this.end] = b.bindSpan(id); // native functions with the descriptor bound: no argument
    asyncArgs = sharedArgs(b);
    [this.asyncBegin, this.asyncEnd] = b.bindAsyncSpan(id);
  }
}

/** The shared slots the async edges read (and begin writes the new span id into). */
let asyncArgs: Float64Array | null = null;

const scopes = new Map<string, SpanScope>();
// One-entry cache in front of the Map: a call site opening the same span in a loop skips the hash.
let lastName: string | undefined;
let lastScope: SpanScope | undefined;
function scopeFor(name: string): SpanScope {
  if (name === lastName) return lastScope!;
  let s = scopes.get(name);
  if (!s) scopes.set(name, (s = new SpanScope(name)));
  lastName = name;
  lastScope = s;
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

/** An open async span: what its end needs, and the frame its children see. */
class AsyncFrame implements SpanFrame {
  constructor(readonly scope: SpanScope, readonly id: number, readonly parent: number, readonly depth: number) {}
  end(): void {
    const a = asyncArgs!;
    a[SPAN_ID] = this.id;
    a[PARENT_ID] = this.parent;
    a[DEPTH] = this.depth;
    this.scope.asyncEnd();
  }
}

// Settlement handlers shared by every span: they run in the context captured when then() was called
// inside storage.run(frame), so the store is their frame. No closures per span.
function endOk<V>(v: V): V {
  storage.getStore()!.end();
  return v;
}
function endErr(e: unknown): never {
  storage.getStore()!.end();
  throw e;
}

/** Runs inside storage.run(frame): calls fn and ends the span when fn's result settles. */
function runInFrame<T>(frame: AsyncFrame, fn: () => T): T {
  let result: T;
  try {
    result = fn();
  } catch (e) {
    frame.end();
    throw e;
  }
  // Reactions registered here run in this context (the frame). Another thenable is adopted by a
  // native promise first: its then() may call back from anywhere, and may return nothing.
  if (result instanceof Promise) return result.then(endOk, endErr) as T;
  if (isThenable(result)) return Promise.resolve(result).then(endOk, endErr) as T;
  frame.end();
  return result;
}

/**
 * Runs fn inside an async span: the span begins now and ends when fn's promise settles (or when fn
 * returns, if it returns no promise). Nested asyncSpan calls inside fn, before or after any await,
 * record this span as their parent and depth + 1.
 */
export function asyncSpan<T>(name: string, fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError('asyncSpan: fn must be a function');
  if (!current()) return fn();
  return openAsync(scopeFor(name), fn);
}

function openAsync<T>(scope: SpanScope, fn: () => T): T {
  const parent = storage.getStore() as AsyncFrame | undefined;
  const a = asyncArgs!;
  const parentId = (a[PARENT_ID] = parent ? parent.id : 0);
  const depth = (a[DEPTH] = parent ? parent.depth + 1 : 0);
  scope.asyncBegin(); // writes the new span's id into a[SPAN_ID]
  const frame = new AsyncFrame(scope, a[SPAN_ID], parentId, depth);
  return storage.run(frame, runInFrame, frame, fn) as T;
}

/** Wraps fn so that each call runs in an async span named `name` (dd-trace's wrap). */
export function traced<A extends unknown[], R>(name: string, fn: (...args: A) => R): (...args: A) => R {
  if (typeof fn !== 'function') throw new TypeError('traced: fn must be a function');
  const scope = scopeFor(name); // resolved once, not per call
  return function (this: unknown, ...args: A): R {
    const call = () => fn.apply(this, args);
    return current() ? openAsync(scope, call) : call();
  };
}
