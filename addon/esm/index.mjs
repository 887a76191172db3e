// ESM entry: a thin re-export of the CommonJS build, so `import` and `require` share one module
// instance (one native binding, one set of handles) and the dual-package hazard cannot happen.
import cjs from '../dist/index.js';

export const {
  init, isEnabled, processId, stats, flush, flushSync, shutdown, shutdownSync,
  Logger, logger, LEVELS, LEVEL_NAMES, Metric, metric, SpanScope, spanScope, span, asyncSpan, traced,
  activeSpan, captureConsole, micromegasDestination, nativeFloor, rawBinding,
} = cjs;
export default cjs;
