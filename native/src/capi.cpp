// The C API: thin glue from micromegas.h to the recorder and the runtime.
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "micromegas/micromegas.h"
#include "runtime.h"

namespace mm {

thread_local ThreadRings t_rings __attribute__((tls_model("initial-exec")));
std::atomic<bool> g_recording{false};
std::atomic<bool> g_cpu_tracing{true};
std::atomic<uint64_t> g_events_dropped[4];
void install_crash_handler();

namespace {

std::mutex g_lifecycle;
std::string g_last_error;
std::atomic<uint64_t> g_next_span_id{1};

// Marks the thread's rings for a last drain when the thread ends.
struct ThreadExit {
  ~ThreadExit() {
    if (Runtime* rt = g_runtime.load()) rt->thread_exited(t_rings.rings);
    for (auto& r : t_rings.rings) r = nullptr;
  }
};
thread_local ThreadExit t_exit;

// Longest prefix of s that fits max bytes and ends on a UTF-8 character boundary.
size_t utf8_prefix(const char* s, size_t len, size_t max) {
  if (len <= max) return len;
  size_t n = max;
  while (n > 0 && (uint8_t(s[n]) & 0xc0) == 0x80) --n;
  return n;
}

constexpr size_t kMarkerLen = sizeof(MM_TRUNCATION_MARKER) - 1;

// Writes a dynstring (codec, u32 length, bytes), truncated with a marker past the limit.
uint8_t* put_dynstring(uint8_t* p, const char* msg, size_t len, size_t kept) {
  *p++ = MM_CODEC_UTF8;
  uint32_t total = uint32_t(kept + (kept < len ? kMarkerLen : 0));
  p = put(p, total);
  if (kept) memcpy(p, msg, kept);
  p += kept;
  if (kept < len) {
    memcpy(p, MM_TRUNCATION_MARKER, kMarkerLen);
    p += kMarkerLen;
  }
  return p;
}
size_t kept_bytes(const char* msg, size_t len) {
  if (!msg) return 0;
  return len <= MM_MAX_MESSAGE_BYTES ? len : utf8_prefix(msg, len, MM_MAX_MESSAGE_BYTES - kMarkerLen);
}
uint32_t dynstring_size(size_t len, size_t kept) { return uint32_t(1 + 4 + kept + (kept < len ? kMarkerLen : 0)); }

// Variable-size log records: index, u32 body size, fixed prefix, dynstring.
template <class Prefix>
void record_log(uint8_t index, const Prefix& prefix, int64_t Prefix::*time, const char* msg, size_t len) {
  size_t kept = kept_bytes(msg, len);
  uint32_t body = uint32_t(sizeof(Prefix)) + dynstring_size(len, kept);
  record(kLogStream, 5 + body, [&](uint8_t* p) {
    Prefix h = prefix;
    h.*time = now_ticks();
    *p++ = index;
    p = put(p, body);
    p = put(p, h);
    put_dynstring(p, msg, len, kept);
  });
}

// UTF-16 messages: ASCII (nearly all log text) is narrowed straight into the ring slot, checking
// as it goes, so the text is copied once; the first non-ASCII unit abandons the uncommitted slot
// and the message is encoded to UTF-8 on the stack, then recorded like any other.
template <class Prefix>
void record_log_utf16(uint8_t index, const Prefix& prefix, int64_t Prefix::*time, const uint16_t* msg, size_t n) {
  if (!msg) n = 0;
  size_t kept = n <= MM_MAX_MESSAGE_BYTES ? n : MM_MAX_MESSAGE_BYTES - kMarkerLen;  // ASCII: one byte per unit
  uint32_t body = uint32_t(sizeof(Prefix)) + dynstring_size(n, kept);
  bool done = record(kLogStream, 5 + body, [&](uint8_t* p) {
    Prefix h = prefix;
    h.*time = now_ticks();
    *p++ = index;
    p = put(p, body);
    p = put(p, h);
    *p++ = MM_CODEC_UTF8;
    p = put(p, uint32_t(kept + (kept < n ? kMarkerLen : 0)));
    uint16_t any = 0;
    for (size_t i = 0; i < kept; ++i) {  // vectorised: narrow and OR together
      p[i] = uint8_t(msg[i]);
      any |= msg[i];
    }
    if (any >= 0x80) return false;
    if (kept < n) memcpy(p + kept, MM_TRUNCATION_MARKER, kMarkerLen);
    return true;
  });
  if (done) [[likely]] return;
  // Enough bytes that a message longer than the limit still arrives longer, and is cut with the marker.
  char utf8[MM_MAX_MESSAGE_BYTES + 64];
  size_t len = mm_utf16_to_utf8(msg, n, utf8, sizeof utf8);
  record_log(index, prefix, time, utf8, len);
}

}  // namespace

Ring* attach_ring(StreamKind kind) {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  if (!rt || !g_recording.load(std::memory_order_relaxed)) return nullptr;
  (void)&t_exit;  // odr-use: registers the thread-exit hook
  Ring* r = rt->attach(kind);
  t_rings.rings[kind] = r;
  return r;
}

}  // namespace mm

using namespace mm;

extern "C" {

void mm_config_init(mm_config* c) {
  memset(c, 0, sizeof *c);
  c->block_size = 1 << 20;
  c->flush_period_ms = 1000;
  c->ring_size = 2 << 20;
  c->max_queue_bytes = 64ull << 20;
  c->max_in_flight = 3;
  c->retry_base_ms = 100;
  c->retry_max_ms = 10000;
  c->retry_window_ms = 300000;
  c->request_timeout_ms = 10000;
  c->lz4_level = 1;
  c->crash_handler = 1;
  c->cpu_tracing = 1;
}

int mm_init(const mm_config* config) {
  std::lock_guard lk(g_lifecycle);
  if (g_runtime.load()) return 1;
  mm_config defaults;
  mm_config_init(&defaults);
  Settings s = resolve_settings(config ? *config : defaults);
  if (s.url.empty() && s.directory.empty()) return 2;  // nothing configured: stay a no-op
  try {
    auto* rt = new Runtime(std::move(s));
    bool crash = rt->settings_crash_handler();
    g_cpu_tracing = rt->settings_cpu_tracing();
    rt->start();
    g_runtime.store(rt, std::memory_order_release);
    g_recording.store(true, std::memory_order_release);
    if (crash) install_crash_handler();
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return -1;
  }
  return 0;
}

const char* mm_last_error(void) { return g_last_error.c_str(); }
int mm_is_enabled(void) { return g_recording.load(std::memory_order_relaxed) ? 1 : 0; }

int mm_flush(uint32_t timeout_ms) {
  Runtime* rt = g_runtime.load();
  if (!rt || !g_recording) return 0;
  return rt->flush(timeout_ms) ? 0 : -1;
}

int mm_shutdown(uint32_t deadline_ms) {
  std::lock_guard lk(g_lifecycle);
  Runtime* rt = g_runtime.load();
  if (!rt || !g_recording) return 0;
  g_recording.store(false);
  // The runtime stays allocated: a thread may still be inside a recording call.
  return rt->shutdown(deadline_ms) ? 0 : -1;
}

const char* mm_process_id(void) {
  Runtime* rt = g_runtime.load();
  return rt ? rt->process_id().c_str() : "";
}
int64_t mm_now_ticks(void) { return now_ticks(); }
int64_t mm_tick_frequency(void) { return tick_frequency(); }

void mm_set_thread_name(const char* name) {
  if (Runtime* rt = g_runtime.load()) rt->set_thread_name(name);
}

void mm_log_static(const mm_LogMetadataRecord* desc) {
  record_pod(kLogStream, MM_LOG_LogStaticStrEvent, mm_LogStaticStrEvent{desc, 0}, &mm_LogStaticStrEvent::time);
}

void mm_log_string(const mm_LogMetadataRecord* desc, const char* msg, size_t len) {
  record_log(MM_LOG_LogStringEventV2, mm_LogStringEventV2Header{desc, 0}, &mm_LogStringEventV2Header::time, msg, len);
}

void mm_log_tagged(const mm_LogMetadataRecord* desc, const mm_PropertySet* properties, const char* msg, size_t len) {
  record_log(MM_LOG_TaggedLogString, mm_TaggedLogStringHeader{desc, properties, 0}, &mm_TaggedLogStringHeader::time,
             msg, len);
}

void mm_log_dynamic(uint32_t level, const char* target, const char* msg, size_t len) {
  mm_LogStringInteropEventV3Header h{};
  h.level = uint8_t(level);
  h.target = {target, uint32_t(target ? strlen(target) : 0), MM_CODEC_UTF8};
  record_log(MM_LOG_LogStringInteropEventV3, h, &mm_LogStringInteropEventV3Header::time, msg, len);
}

void mm_log_string_utf16(const mm_LogMetadataRecord* desc, const uint16_t* msg, size_t n) {
  record_log_utf16(MM_LOG_LogStringEventV2, mm_LogStringEventV2Header{desc, 0}, &mm_LogStringEventV2Header::time, msg,
                   n);
}

void mm_log_tagged_utf16(const mm_LogMetadataRecord* desc, const mm_PropertySet* properties, const uint16_t* msg,
                         size_t n) {
  record_log_utf16(MM_LOG_TaggedLogString, mm_TaggedLogStringHeader{desc, properties, 0},
                   &mm_TaggedLogStringHeader::time, msg, n);
}

void mm_log_dynamic_utf16(uint32_t level, const char* target, const uint16_t* msg, size_t n) {
  mm_LogStringInteropEventV3Header h{};
  h.level = uint8_t(level);
  h.target = {target, uint32_t(target ? strlen(target) : 0), MM_CODEC_UTF8};
  record_log_utf16(MM_LOG_LogStringInteropEventV3, h, &mm_LogStringInteropEventV3Header::time, msg, n);
}

size_t mm_utf16_to_utf8(const uint16_t* s, size_t n, char* out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t c = s[i];
    if (c >= 0xd800 && c <= 0xdfff) {  // a surrogate: a valid pair, or U+FFFD
      bool pair = c <= 0xdbff && i + 1 < n && s[i + 1] >= 0xdc00 && s[i + 1] <= 0xdfff;
      c = pair ? 0x10000 + ((c - 0xd800) << 10) + (s[++i] - 0xdc00u) : 0xfffd;
    }
    size_t w = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (o + w > cap) break;
    char* d = out + o;
    switch (w) {
      case 1: d[0] = char(c); break;
      case 2: d[0] = char(0xc0 | c >> 6), d[1] = char(0x80 | (c & 0x3f)); break;
      case 3: d[0] = char(0xe0 | c >> 12), d[1] = char(0x80 | (c >> 6 & 0x3f)), d[2] = char(0x80 | (c & 0x3f)); break;
      default:
        d[0] = char(0xf0 | c >> 18), d[1] = char(0x80 | (c >> 12 & 0x3f)), d[2] = char(0x80 | (c >> 6 & 0x3f));
        d[3] = char(0x80 | (c & 0x3f));
    }
    o += w;
  }
  return o;
}

void mm_logf(const mm_LogMetadataRecord* desc, const char* fmt, ...) {
  if (!g_recording.load(std::memory_order_relaxed)) return;
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n < 0) return;
  mm_log_string(desc, buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1);
}

void mm_metric_int(const mm_MetricMetadataDependency* desc, uint64_t value) {
  record_pod(kMetricsStream, MM_METRICS_IntegerMetricEvent, mm_IntegerMetricEvent{desc, value, 0},
             &mm_IntegerMetricEvent::time);
}
void mm_metric_float(const mm_MetricMetadataDependency* desc, double value) {
  record_pod(kMetricsStream, MM_METRICS_FloatMetricEvent, mm_FloatMetricEvent{desc, value, 0},
             &mm_FloatMetricEvent::time);
}
void mm_metric_int_tagged(const mm_MetricMetadataDependency* desc, const mm_PropertySet* properties, uint64_t value) {
  record_pod(kMetricsStream, MM_METRICS_TaggedIntegerMetricEvent, mm_TaggedIntegerMetricEvent{desc, properties, value, 0},
             &mm_TaggedIntegerMetricEvent::time);
}
void mm_metric_float_tagged(const mm_MetricMetadataDependency* desc, const mm_PropertySet* properties, double value) {
  record_pod(kMetricsStream, MM_METRICS_TaggedFloatMetricEvent, mm_TaggedFloatMetricEvent{desc, properties, value, 0},
             &mm_TaggedFloatMetricEvent::time);
}

#define MM_IF_TRACING if (!g_cpu_tracing.load(std::memory_order_relaxed)) return

void mm_span_begin(const mm_SpanRecord* desc) {
  MM_IF_TRACING;
  record_pod(kCpuStream, MM_CPU_BeginThreadSpanEvent, mm_BeginThreadSpanEvent{desc, 0}, &mm_BeginThreadSpanEvent::time);
}
void mm_span_end(const mm_SpanRecord* desc) {
  MM_IF_TRACING;
  record_pod(kCpuStream, MM_CPU_EndThreadSpanEvent, mm_EndThreadSpanEvent{desc, 0}, &mm_EndThreadSpanEvent::time);
}
void mm_span_begin_named(const mm_SpanLocationRecord* location, const char* name) {
  MM_IF_TRACING;
  mm_BeginThreadNamedSpanEvent e{location, {name, uint32_t(name ? strlen(name) : 0)}, 0};
  record_pod(kCpuStream, MM_CPU_BeginThreadNamedSpanEvent, e, &mm_BeginThreadNamedSpanEvent::time);
}
void mm_span_end_named(const mm_SpanLocationRecord* location, const char* name) {
  MM_IF_TRACING;
  mm_EndThreadNamedSpanEvent e{location, {name, uint32_t(name ? strlen(name) : 0)}, 0};
  record_pod(kCpuStream, MM_CPU_EndThreadNamedSpanEvent, e, &mm_EndThreadNamedSpanEvent::time);
}

uint64_t mm_new_span_id(void) { return g_next_span_id.fetch_add(1, std::memory_order_relaxed); }

uint64_t mm_async_span_begin(const mm_SpanRecord* desc, uint64_t parent, uint32_t depth) {
  uint64_t id = mm_new_span_id();
  if (g_cpu_tracing.load(std::memory_order_relaxed))
    record_pod(kCpuStream, MM_CPU_BeginAsyncSpanEvent, mm_BeginAsyncSpanEvent{desc, id, parent, 0, depth},
               &mm_BeginAsyncSpanEvent::time);
  return id;
}
void mm_async_span_end(const mm_SpanRecord* desc, uint64_t id, uint64_t parent, uint32_t depth) {
  MM_IF_TRACING;
  record_pod(kCpuStream, MM_CPU_EndAsyncSpanEvent, mm_EndAsyncSpanEvent{desc, id, parent, 0, depth},
             &mm_EndAsyncSpanEvent::time);
}
uint64_t mm_async_named_span_begin(const mm_SpanLocationRecord* location, const char* name, uint64_t parent,
                                   uint32_t depth) {
  uint64_t id = mm_new_span_id();
  if (g_cpu_tracing.load(std::memory_order_relaxed)) {
    mm_BeginAsyncNamedSpanEvent e{location, {name, uint32_t(name ? strlen(name) : 0)}, id, parent, 0, depth};
    record_pod(kCpuStream, MM_CPU_BeginAsyncNamedSpanEvent, e, &mm_BeginAsyncNamedSpanEvent::time);
  }
  return id;
}
void mm_async_named_span_end(const mm_SpanLocationRecord* location, const char* name, uint64_t id, uint64_t parent,
                             uint32_t depth) {
  MM_IF_TRACING;
  mm_EndAsyncNamedSpanEvent e{location, {name, uint32_t(name ? strlen(name) : 0)}, id, parent, 0, depth};
  record_pod(kCpuStream, MM_CPU_EndAsyncNamedSpanEvent, e, &mm_EndAsyncNamedSpanEvent::time);
}

void mm_image(const char* name, const char* format, const void* data, size_t len) {
  Runtime* rt = g_runtime.load();
  if (!rt || !g_recording.load(std::memory_order_relaxed) || len > 0xffffffffu - 1024) return;
  size_t nl = name ? strlen(name) : 0, fl = format ? strlen(format) : 0;
  uint32_t body = uint32_t(8 + 5 + nl + 5 + fl + 4 + len);
  std::vector<uint8_t> r(5 + body);
  uint8_t* p = r.data();
  *p++ = MM_IMAGE_ImageEvent;
  p = put(p, body);
  p = put(p, now_ticks());
  p = put_dynstring(p, name, nl, nl);
  p = put_dynstring(p, format, fl, fl);
  p = put(p, uint32_t(len));
  if (len) memcpy(p, data, len);
  rt->add_image(std::move(r));
}

void mm_get_stats(mm_stats* stats) {
  memset(stats, 0, sizeof *stats);
  if (Runtime* rt = g_runtime.load()) rt->stats(stats);
}

}  // extern "C"
