/* Micromegas native telemetry: the C API.
 *
 * Recording calls (mm_log_*, mm_metric_*, mm_span_*) take the timestamp with the
 * CPU's tick counter and copy a few bytes into a queue owned by the calling
 * thread: no lock, no allocation, no system call. One background thread turns
 * the queues into blocks (upstream micromegas wire format: transit + LZ4 + CBOR)
 * and uploads them. Before mm_init and after mm_shutdown every recording call is
 * a no-op.
 *
 * Descriptors (log call sites, metrics, spans) and the strings they point to
 * must outlive the process's telemetry: use static storage (the C++ macros in
 * micromegas.hpp do) or the mm_intern_* functions. */
#ifndef MICROMEGAS_H
#define MICROMEGAS_H
#include <stddef.h>
#include <stdint.h>

#include "micromegas/protocol/events.gen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest dynamic message recorded; longer ones are cut at a UTF-8 boundary and
 * end with MM_TRUNCATION_MARKER. */
#define MM_MAX_MESSAGE_BYTES 16384
#define MM_TRUNCATION_MARKER "...[truncated]"

typedef struct mm_config {
  const char* url;             /* ingestion root, e.g. http://host:9000 (env MICROMEGAS_TELEMETRY_URL) */
  const char* api_key;         /* Bearer key (env MICROMEGAS_INGESTION_API_KEY) */
  const char* directory;       /* write request bodies to files here instead of HTTP (env MICROMEGAS_TELEMETRY_DIR) */
  const char* const* properties; /* process properties: key, value, key, value, ..., NULL */
  const char* exe;             /* overrides the executable name reported */
  uint32_t block_size;         /* event bytes per block before it is sent; default 1 MiB (MICROMEGAS_BLOCK_SIZE) */
  uint32_t flush_period_ms;    /* a non-empty block is sent at least this often; default 1000 (MICROMEGAS_FLUSH_PERIOD_MS) */
  uint32_t ring_size;          /* per thread and stream kind, power of two; default 2 MiB (MICROMEGAS_RING_SIZE) */
  uint64_t max_queue_bytes;    /* cap on encoded blocks awaiting upload; default 64 MiB (MICROMEGAS_MAX_QUEUE_BYTES) */
  uint32_t max_in_flight;      /* concurrent HTTP requests; default 3 */
  uint32_t retry_base_ms;      /* first retry delay, doubled each attempt; default 100 (MICROMEGAS_RETRY_BASE_MS) */
  uint32_t retry_max_ms;       /* longest delay between attempts; default 10000 (MICROMEGAS_RETRY_MAX_MS) */
  uint32_t retry_window_ms;    /* a data block failing with 5xx or a network error is retried this long, then
                                  dropped; default 300000 (MICROMEGAS_RETRY_WINDOW_MS); metadata is never dropped */
  uint32_t request_timeout_ms; /* per attempt; default 10000 */
  int lz4_level;               /* default 1 (fast); upstream's Rust sink uses 10 */
  int crash_handler;           /* 1 (default): log a fatal error with a backtrace and flush on SIGSEGV, SIGABRT... */
  int cpu_tracing;             /* 1 (default): record spans; 0 drops them at the call */
} mm_config;

/* Fills defaults; mm_init then applies MICROMEGAS_* environment variables to the
 * fields left at their defaults. */
void mm_config_init(mm_config* config);
/* Starts telemetry. Returns 0, 1 when already started, or a negative error (see mm_last_error).
 * With neither url nor directory configured, returns 2 and stays a no-op. */
int mm_init(const mm_config* config);
const char* mm_last_error(void);
int mm_is_enabled(void);
/* Sends everything recorded before the call; returns 0 once delivered, -1 on timeout. */
int mm_flush(uint32_t timeout_ms);
/* Flushes, waits at most deadline_ms, stops the upload thread. Later calls are no-ops. */
int mm_shutdown(uint32_t deadline_ms);
const char* mm_process_id(void);
int64_t mm_now_ticks(void);
int64_t mm_tick_frequency(void);
/* Names the calling thread's cpu stream; call before its first span. */
void mm_set_thread_name(const char* name);

/* Interning: stable copies that live until the process exits. Equal inputs give
 * the same pointer, so bindings can hand out ids once and record with them. */
const char* mm_intern_string(const char* s, size_t len);
const mm_LogMetadataRecord* mm_intern_log_desc(uint32_t level, const char* target, size_t target_len,
                                               const char* fmt, size_t fmt_len);
const mm_MetricMetadataDependency* mm_intern_metric_desc(const char* name, size_t name_len,
                                                         const char* unit, size_t unit_len,
                                                         const char* target, size_t target_len);
const mm_SpanRecord* mm_intern_span_desc(const char* name, size_t name_len, const char* target, size_t target_len,
                                         const char* file, size_t file_len, uint32_t line);
const mm_SpanLocationRecord* mm_intern_span_location(const char* target, size_t target_len,
                                                     const char* file, size_t file_len, uint32_t line);
/* kv: count pairs of key, value (NUL-terminated). */
const mm_PropertySet* mm_intern_properties(const char* const* kv, size_t count);

/* Logs. */
void mm_log_static(const mm_LogMetadataRecord* desc);
void mm_log_string(const mm_LogMetadataRecord* desc, const char* msg, size_t len);
void mm_log_tagged(const mm_LogMetadataRecord* desc, const mm_PropertySet* properties, const char* msg, size_t len);
/* Level and target chosen at run time; target must be static or interned. */
void mm_log_dynamic(uint32_t level, const char* target, const char* msg, size_t len);
/* The same three with UTF-16 text (JavaScript strings, Windows wide strings): n code units.
 * Recorded as UTF-8 like the others (lone surrogates become U+FFFD); ASCII text is narrowed
 * straight into the thread's queue, with no intermediate copy. */
void mm_log_string_utf16(const mm_LogMetadataRecord* desc, const uint16_t* msg, size_t n);
void mm_log_tagged_utf16(const mm_LogMetadataRecord* desc, const mm_PropertySet* properties, const uint16_t* msg,
                         size_t n);
void mm_log_dynamic_utf16(uint32_t level, const char* target, const uint16_t* msg, size_t n);
/* UTF-16 to UTF-8 as the calls above record it; stops before the first character that would not
 * fit in cap bytes. Returns the bytes written. */
size_t mm_utf16_to_utf8(const uint16_t* s, size_t n, char* out, size_t cap);
void mm_logf(const mm_LogMetadataRecord* desc, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Metrics. */
void mm_metric_int(const mm_MetricMetadataDependency* desc, uint64_t value);
void mm_metric_float(const mm_MetricMetadataDependency* desc, double value);
void mm_metric_int_tagged(const mm_MetricMetadataDependency* desc, const mm_PropertySet* properties, uint64_t value);
void mm_metric_float_tagged(const mm_MetricMetadataDependency* desc, const mm_PropertySet* properties, double value);

/* Thread spans, on the calling thread's cpu stream. */
void mm_span_begin(const mm_SpanRecord* desc);
void mm_span_end(const mm_SpanRecord* desc);
/* name: static or interned. */
void mm_span_begin_named(const mm_SpanLocationRecord* location, const char* name);
void mm_span_end_named(const mm_SpanLocationRecord* location, const char* name);

/* Async spans: recorded on the calling thread's cpu stream, matched by span_id.
 * mm_async_span_begin returns the new span's id (never 0). */
uint64_t mm_new_span_id(void);
uint64_t mm_async_span_begin(const mm_SpanRecord* desc, uint64_t parent_span_id, uint32_t depth);
void mm_async_span_end(const mm_SpanRecord* desc, uint64_t span_id, uint64_t parent_span_id, uint32_t depth);
uint64_t mm_async_named_span_begin(const mm_SpanLocationRecord* location, const char* name,
                                   uint64_t parent_span_id, uint32_t depth);
void mm_async_named_span_end(const mm_SpanLocationRecord* location, const char* name, uint64_t span_id,
                             uint64_t parent_span_id, uint32_t depth);

/* Images (screenshots...), on the image stream. Copies the bytes; not a hot path. */
void mm_image(const char* name, const char* format, const void* data, size_t len);

typedef struct mm_stats {
  uint64_t events_dropped[4];  /* by stream kind: log, metrics, cpu, image (queue full) */
  uint64_t blocks_dropped[4];  /* by stream kind: memory cap, permanent errors, retries exhausted */
  uint64_t blocks_sent;
  uint64_t requests_sent;      /* successful requests of every route */
  uint64_t bytes_sent;
  uint64_t queued_bytes;       /* encoded, waiting for upload */
  uint64_t retries;
} mm_stats;
void mm_get_stats(mm_stats* stats);

#ifdef __cplusplus
}
#endif
#endif
