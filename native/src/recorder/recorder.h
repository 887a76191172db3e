// The recording path (runs on the caller's thread): one inline function that
// stamps ticks and copies a record into the thread's ring for a stream kind.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "recorder/clock.h"
#include "recorder/ring.h"

namespace mm {

enum StreamKind : uint8_t { kLogStream = 0, kMetricsStream = 1, kCpuStream = 2, kImageStream = 3 };
inline constexpr int kRingKinds = 3;  // images do not go through rings

struct ThreadRings {
  Ring* rings[kRingKinds];
};
// Trivial type: zero-initialised, no guard on access. initial-exec: one
// %fs-relative load even inside a dlopen'ed module (the Node addon), instead of
// a __tls_get_addr call per event; these few bytes fit glibc's static TLS reserve.
extern thread_local ThreadRings t_rings __attribute__((tls_model("initial-exec")));
extern std::atomic<bool> g_recording;
extern std::atomic<bool> g_cpu_tracing;
extern std::atomic<uint64_t> g_events_dropped[4];

// Slow path: the thread's first event of this kind. nullptr when not recording.
Ring* attach_ring(StreamKind kind);

// fill(p) writes exactly `size` bytes. A fill that returns bool may decline (false): nothing is
// published, and record returns false so the caller can take another path. Otherwise record
// returns true, whether the event was recorded, dropped (queue full) or ignored (not recording).
template <class Fill>
inline bool record(StreamKind kind, uint32_t size, Fill&& fill) noexcept {
  if (!g_recording.load(std::memory_order_relaxed)) [[unlikely]] return true;
  Ring* r = t_rings.rings[kind];
  if (!r) [[unlikely]] {
    r = attach_ring(kind);
    if (!r) return true;
  }
  uint8_t* p = r->prepare_write(size);
  if (!p) [[unlikely]] {
    g_events_dropped[kind].fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if constexpr (std::is_same_v<std::invoke_result_t<Fill&, uint8_t*>, bool>) {
    if (!fill(p)) return false;  // prepare_write wrote nothing the consumer can see: abandoning is free
  } else {
    fill(p);
  }
  r->commit();
  return true;
}

template <class T>
inline uint8_t* put(uint8_t* p, const T& v) noexcept {
  memcpy(p, &v, sizeof v);
  return p + sizeof v;
}

// A fixed-size event: type index, then the struct with its `time` member stamped now.
template <class Event>
inline void record_pod(StreamKind kind, uint8_t type_index, Event e, int64_t Event::*time) noexcept {
  record(kind, 1 + sizeof(Event), [&](uint8_t* p) {
    e.*time = now_ticks();
    p[0] = type_index;
    memcpy(p + 1, &e, sizeof e);
  });
}

}  // namespace mm
