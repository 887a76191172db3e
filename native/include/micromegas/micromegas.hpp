// Micromegas C++ macros. Each call site owns a static descriptor (name, target,
// file, line); an event carries only a pointer to it and a tick count.
//
// Compiled out with -DMICROMEGAS_DISABLED: every macro below becomes nothing.
//   MM_LOG_FATAL/ERROR/WARN/INFO/DEBUG/TRACE(target, "static message")
//   MM_LOGF(level, target, "format %d", args...)
//   MM_IMETRIC(target, name, unit, integer)   MM_FMETRIC(target, name, unit, double)
//   MM_SPAN_SCOPE(target, "name")             MM_SPAN_FUNCTION(target)
#pragma once
#include "micromegas/micromegas.h"

#define MM_CAT_(a, b) a##b
#define MM_CAT(a, b) MM_CAT_(a, b)

#ifdef MICROMEGAS_DISABLED

#define MM_LOG(level, target, msg) do {} while (0)
#define MM_LOGF(level, target, ...) do {} while (0)
#define MM_IMETRIC(target, name, unit, value) do {} while (0)
#define MM_FMETRIC(target, name, unit, value) do {} while (0)
#define MM_SPAN_SCOPE(target, name) do {} while (0)
#define MM_SPAN_FUNCTION(target) do {} while (0)

#else

namespace micromegas {
// Ends a thread span when the scope closes.
class SpanGuard {
 public:
  explicit SpanGuard(const mm_SpanRecord* desc) noexcept : desc_(desc) { mm_span_begin(desc); }
  ~SpanGuard() { mm_span_end(desc_); }
  SpanGuard(const SpanGuard&) = delete;
  SpanGuard& operator=(const SpanGuard&) = delete;

 private:
  const mm_SpanRecord* desc_;
};
}  // namespace micromegas

#define MM_LOG(level, target, msg)                                                          \
  do {                                                                                      \
    static const mm_LogMetadataRecord mm_desc_ = {0, msg, target, target, __FILE__, __LINE__, level}; \
    mm_log_static(&mm_desc_);                                                               \
  } while (0)
#define MM_LOGF(level, target, ...)                                                         \
  do {                                                                                      \
    static const mm_LogMetadataRecord mm_desc_ = {0, "", target, target, __FILE__, __LINE__, level}; \
    mm_logf(&mm_desc_, __VA_ARGS__);                                                        \
  } while (0)
#define MM_IMETRIC(target, name, unit, value)                                               \
  do {                                                                                      \
    static const mm_MetricMetadataDependency mm_desc_ = {0, name, unit, target, __FILE__, __LINE__, MM_LOD_MED}; \
    mm_metric_int(&mm_desc_, (uint64_t)(value));                                            \
  } while (0)
#define MM_FMETRIC(target, name, unit, value)                                               \
  do {                                                                                      \
    static const mm_MetricMetadataDependency mm_desc_ = {0, name, unit, target, __FILE__, __LINE__, MM_LOD_MED}; \
    mm_metric_float(&mm_desc_, (double)(value));                                            \
  } while (0)
#define MM_SPAN_SCOPE(target, name)                                                         \
  static const mm_SpanRecord MM_CAT(mm_span_desc_, __LINE__) = {0, name, target, target, __FILE__, __LINE__, MM_LOD_MED}; \
  ::micromegas::SpanGuard MM_CAT(mm_span_guard_, __LINE__)(&MM_CAT(mm_span_desc_, __LINE__))
#define MM_SPAN_FUNCTION(target) MM_SPAN_SCOPE(target, __func__)

#endif

#define MM_LOG_FATAL(target, msg) MM_LOG(MM_LEVEL_FATAL, target, msg)
#define MM_LOG_ERROR(target, msg) MM_LOG(MM_LEVEL_ERROR, target, msg)
#define MM_LOG_WARN(target, msg) MM_LOG(MM_LEVEL_WARN, target, msg)
#define MM_LOG_INFO(target, msg) MM_LOG(MM_LEVEL_INFO, target, msg)
#define MM_LOG_DEBUG(target, msg) MM_LOG(MM_LEVEL_DEBUG, target, msg)
#define MM_LOG_TRACE(target, msg) MM_LOG(MM_LEVEL_TRACE, target, msg)
