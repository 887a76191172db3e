#include "recorder/clock.h"

#include <atomic>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace mm {

namespace {

int64_t measure_frequency() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) >= 0x15) {
    __cpuid(0x15, eax, ebx, ecx, edx);
    if (eax && ebx && ecx) return int64_t(uint64_t(ecx) * ebx / eax);
  }
#elif defined(__aarch64__)
  uint64_t f;
  asm volatile("mrs %0, cntfrq_el0" : "=r"(f));
  if (f) return int64_t(f);
#else
  return 1000000000;  // now_ticks() is CLOCK_MONOTONIC in ns
#endif
  // No architectural answer (common in VMs): calibrate against the monotonic clock.
  auto mono = [] {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  };
  int64_t t0 = mono(), k0 = now_ticks();
  timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  int64_t t1 = mono(), k1 = now_ticks();
  return int64_t(double(k1 - k0) * 1e9 / double(t1 - t0));
}

}  // namespace

int64_t tick_frequency() {
  static const int64_t frequency = measure_frequency();
  return frequency;
}

}  // namespace mm
