// Settings from mm_config and MICROMEGAS_* variables; what the process says about itself.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "runtime.h"

namespace mm {

namespace {

const char* env(const char* name) {
  const char* v = getenv(name);
  return v && *v ? v : nullptr;
}
template <class T>
void env_number(const char* name, T& field) {
  if (const char* v = env(name)) field = T(strtoull(v, nullptr, 10));
}

// "k=v,k2=v2" (upstream's MICROMEGAS_PROCESS_PROPERTIES)
void parse_properties(const char* text, Properties& out) {
  std::string s(text);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    size_t eq = item.find('=');
    if (eq != std::string::npos && eq > 0) out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    start = end + 1;
  }
}

std::string distro() {
  std::ifstream f("/etc/os-release");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  return "Linux";
}

std::string cpu_brand() {
#if defined(__x86_64__)
  unsigned regs[12];
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i) __cpuid(0x80000002 + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
    std::string s(reinterpret_cast<char*>(regs), sizeof regs);
    s = s.c_str();
    size_t b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
  }
#endif
  return "unknown";
}

}  // namespace

Settings resolve_settings(const mm_config& c) {
  Settings s;
  s.url = c.url ? c.url : (env("MICROMEGAS_TELEMETRY_URL") ? env("MICROMEGAS_TELEMETRY_URL") : "");
  s.api_key = c.api_key ? c.api_key : (env("MICROMEGAS_INGESTION_API_KEY") ? env("MICROMEGAS_INGESTION_API_KEY") : "");
  s.directory = c.directory ? c.directory : (env("MICROMEGAS_TELEMETRY_DIR") ? env("MICROMEGAS_TELEMETRY_DIR") : "");
  s.exe = c.exe ? c.exe : "";
  if (const char* p = env("MICROMEGAS_PROCESS_PROPERTIES")) parse_properties(p, s.properties);
  for (const char* const* kv = c.properties; kv && kv[0] && kv[1]; kv += 2) s.properties.emplace_back(kv[0], kv[1]);
  mm_config d;
  mm_config_init(&d);
  s.block_size = c.block_size;
  s.flush_period_ms = c.flush_period_ms;
  s.ring_size = c.ring_size;
  s.max_queue_bytes = c.max_queue_bytes;
  if (c.block_size == d.block_size) env_number("MICROMEGAS_BLOCK_SIZE", s.block_size);
  if (c.flush_period_ms == d.flush_period_ms) env_number("MICROMEGAS_FLUSH_PERIOD_MS", s.flush_period_ms);
  if (c.ring_size == d.ring_size) env_number("MICROMEGAS_RING_SIZE", s.ring_size);
  if (c.max_queue_bytes == d.max_queue_bytes) env_number("MICROMEGAS_MAX_QUEUE_BYTES", s.max_queue_bytes);
  // Rings are indexed with a mask: round up to a power of two, at least 64 KiB.
  uint32_t ring = 1u << 16;
  while (ring < s.ring_size && ring < (1u << 30)) ring <<= 1;
  s.ring_size = ring;
  if (s.block_size == 0) s.block_size = d.block_size;
  s.max_in_flight = c.max_in_flight ? c.max_in_flight : 3;
  s.retry_base_ms = c.retry_base_ms ? c.retry_base_ms : d.retry_base_ms;
  s.retry_max_ms = c.retry_max_ms ? c.retry_max_ms : d.retry_max_ms;
  if (!c.retry_base_ms || c.retry_base_ms == d.retry_base_ms) env_number("MICROMEGAS_RETRY_BASE_MS", s.retry_base_ms);
  if (!c.retry_max_ms || c.retry_max_ms == d.retry_max_ms) env_number("MICROMEGAS_RETRY_MAX_MS", s.retry_max_ms);
  if (!s.retry_base_ms) s.retry_base_ms = d.retry_base_ms;
  if (s.retry_max_ms < s.retry_base_ms) s.retry_max_ms = s.retry_base_ms;
  // Blocks ride out an outage (a gateway restart, a deploy) for this long; the memory cap, not
  // this window, decides what goes first when the queue fills (cpu, then metrics, then logs).
  s.retry_window_ms = c.retry_window_ms ? c.retry_window_ms : d.retry_window_ms;
  if (!c.retry_window_ms || c.retry_window_ms == d.retry_window_ms) env_number("MICROMEGAS_RETRY_WINDOW_MS", s.retry_window_ms);
  s.request_timeout_ms = c.request_timeout_ms ? c.request_timeout_ms : 10000;
  s.lz4_level = c.lz4_level;
  s.crash_handler = c.crash_handler != 0;
  s.cpu_tracing = c.cpu_tracing != 0;
  if (const char* v = env("MICROMEGAS_ENABLE_CPU_TRACING")) s.cpu_tracing = strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
  return s;
}

ProcessMeta collect_process_meta(const Settings& s) {
  ProcessMeta p;
  p.process_id = Uuid::random().str();
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  p.exe = !s.exe.empty() ? s.exe : (n > 0 ? std::string(buf, size_t(n)) : "unknown");
  passwd pw, *res = nullptr;
  char pwbuf[4096];
  if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res) {
    p.username = pw.pw_name;
    std::string gecos = pw.pw_gecos ? pw.pw_gecos : "";
    p.realname = gecos.substr(0, gecos.find(','));
    if (p.realname.empty()) p.realname = p.username;
  } else {
    p.username = p.realname = env("USER") ? env("USER") : "unknown";
  }
  if (gethostname(buf, sizeof buf) == 0) p.computer = buf;
  p.distro = distro();
  p.cpu_brand = cpu_brand();
  p.tsc_frequency = tick_frequency();
  DualTime start = DualTime::now();
  p.start_ticks = start.ticks;
  p.start_time_ns = start.unix_ns;
  if (const char* parent = env("MICROMEGAS_TELEMETRY_PARENT_PROCESS")) p.parent_process_id = parent;
  p.properties = s.properties;
  p.properties.emplace_back("logical_cpu_count", std::to_string(std::thread::hardware_concurrency()));
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) p.properties.emplace_back("total_memory", std::to_string(uint64_t(pages) * uint64_t(page)));
  // Children of this process name it as their parent.
  setenv("MICROMEGAS_TELEMETRY_PARENT_PROCESS", p.process_id.c_str(), 1);
  return p;
}

}  // namespace mm
