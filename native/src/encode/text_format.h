// UUIDs and RFC 3339 times as the two upstream producers print them.
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace mm {

struct Uuid {
  uint8_t bytes[16];
  // Version-4 UUID from the OS's CSPRNG (getrandom): every process, and every child forked
  // after init, draws its own ids. Process, stream and block ids; never on the recording path.
  static Uuid random();
  // Version-4 UUID from the given generator: reproducible ids (golden vectors, simulators).
  static Uuid v4(std::mt19937_64& rng);
  std::string str(bool upper = false) const;
};

enum class TimeFormat {
  kRustNanos,     // 2026-08-21T16:53:43.123456789+00:00 (block times, Rust sink)
  kRustChrono,    // 2026-08-21T16:53:43.123Z, 0/3/6/9 digits (ProcessInfo.start_time, Rust sink)
  kUnrealMillis,  // 2026-08-21T16:53:43.123Z (FDateTime::ToIso8601)
};
std::string format_time(int64_t unix_ns, TimeFormat format);

}  // namespace mm
