// Tick source for the recording path: the CPU's time-stamp counter, read natively.
#pragma once
#include <cstdint>
#include <ctime>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace mm {

inline int64_t now_ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return static_cast<int64_t>(__rdtsc());
#elif defined(__aarch64__)
  uint64_t v;
  asm volatile("mrs %0, cntvct_el0" : "=r"(v));
  return static_cast<int64_t>(v);
#else
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
#endif
}

// A (ticks, wall clock) pair sampled together; blocks open and close on one.
struct DualTime {
  int64_t ticks;
  int64_t unix_ns;
  static DualTime now() noexcept {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return {now_ticks(), int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec};
  }
};

// Ticks per second: CPUID leaf 0x15 when the CPU reports it, else measured
// against CLOCK_MONOTONIC (takes ~20 ms, once per process).
int64_t tick_frequency();

}  // namespace mm
