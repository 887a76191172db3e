#include "encode/text_format.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace mm {

namespace {

Uuid with_v4_bits(Uuid u) {
  u.bytes[6] = (u.bytes[6] & 0x0f) | 0x40;
  u.bytes[8] = (u.bytes[8] & 0x3f) | 0x80;
  return u;
}

}  // namespace

Uuid Uuid::random() {
  Uuid u;
  size_t got = 0;
  while (got < sizeof u.bytes) {
    ssize_t n = getrandom(u.bytes + got, sizeof u.bytes - got, 0);
    if (n > 0) got += size_t(n);
    else if (n < 0 && errno != EINTR) {
      // Only a kernel older than 3.17 (ENOSYS): an id we cannot make unique must not be made up.
      perror("micromegas: getrandom");
      abort();
    }
  }
  return with_v4_bits(u);
}

Uuid Uuid::v4(std::mt19937_64& rng) {
  Uuid u;
  uint64_t a = rng(), b = rng();
  for (int i = 0; i < 8; ++i) {
    u.bytes[i] = uint8_t(a >> (8 * i));
    u.bytes[8 + i] = uint8_t(b >> (8 * i));
  }
  return with_v4_bits(u);
}

std::string Uuid::str(bool upper) const {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(digits[bytes[i] >> 4]);
    s.push_back(digits[bytes[i] & 15]);
  }
  return s;
}

std::string format_time(int64_t unix_ns, TimeFormat format) {
  int64_t secs = unix_ns / 1000000000;
  int64_t frac = unix_ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    secs -= 1;
  }
  time_t t = time_t(secs);
  tm utc;
  gmtime_r(&t, &utc);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
  char buf[64];
  switch (format) {
    case TimeFormat::kRustNanos:
      snprintf(buf, sizeof buf, "%s.%09lld+00:00", date, (long long)frac);
      break;
    case TimeFormat::kUnrealMillis:
      snprintf(buf, sizeof buf, "%s.%03lldZ", date, (long long)(frac / 1000000));
      break;
    case TimeFormat::kRustChrono:
      if (frac == 0) snprintf(buf, sizeof buf, "%sZ", date);
      else if (frac % 1000000 == 0) snprintf(buf, sizeof buf, "%s.%03lldZ", date, (long long)(frac / 1000000));
      else if (frac % 1000 == 0) snprintf(buf, sizeof buf, "%s.%06lldZ", date, (long long)(frac / 1000));
      else snprintf(buf, sizeof buf, "%s.%09lldZ", date, (long long)frac);
      break;
  }
  return buf;
}

}  // namespace mm
