// Native benchmarks, one run, printed as a table and written as JSON:
//  1. hot-path latency of each recording call vs a baseline measured in the same
//     run (one rdtsc read + a 16-byte store into a thread-local buffer);
//  2. the upload thread's CPU share at 100k and 1M events/s from 4 threads,
//     events dropped, and wire bytes per event per stream kind.
// This measures latency on the calling thread, not throughput: calls are timed
// in batches of 16 with rdtsc and the rings are drained between rounds.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>
#include <x86intrin.h>

#include "micromegas/micromegas.hpp"
#include "support/http_server.h"
#include "support/wire_reader.h"

namespace {

struct Row {
  std::string name;
  double ns, p99, p999, baseline;
};

double g_ns_per_tick;

struct Entry {
  const void* p;
  int64_t t;
};
thread_local Entry t_buffer[1 << 16];
thread_local uint32_t t_index;

__attribute__((noinline)) void baseline_store(const void* p) {
  t_buffer[t_index] = Entry{p, int64_t(__rdtsc())};
  t_index = (t_index + 1) & ((1 << 16) - 1);
}

constexpr int kBatch = 16;

Row measure(const std::string& name, int rounds, const std::function<void()>& call) {
  std::vector<double> per_call;
  per_call.reserve(size_t(rounds) * 1000);
  for (int r = 0; r < rounds; ++r) {
    for (int b = 0; b < 1000; ++b) {
      _mm_lfence();
      uint64_t t0 = __rdtsc();
      for (int i = 0; i < kBatch; ++i) call();
      _mm_lfence();
      uint64_t t1 = __rdtsc();
      per_call.push_back(double(t1 - t0) * g_ns_per_tick / kBatch);
    }
    mm_flush(10000);  // drain between rounds: this measures the calling thread, never a full ring
  }
  std::sort(per_call.begin(), per_call.end());
  auto pct = [&](double q) { return per_call[size_t(q * double(per_call.size() - 1))]; };
  return {name, pct(0.5), pct(0.99), pct(0.999), 0};
}

const mm_LogMetadataRecord kLog = {0, "player connected", "game.net", "game.net", __FILE__, __LINE__, MM_LEVEL_INFO};
const mm_MetricMetadataDependency kIntMetric = {0, "allocations", "count", "game", __FILE__, __LINE__, MM_LOD_MED};
const mm_MetricMetadataDependency kFloatMetric = {0, "frame_time", "ms", "game", __FILE__, __LINE__, MM_LOD_MED};
const mm_SpanRecord kSpan = {0, "update", "game", "game", __FILE__, __LINE__, MM_LOD_MED};
const mm_SpanRecord kScopes[8] = {
    {0, "physics", "game", "game", __FILE__, 1, 2}, {0, "animation", "game", "game", __FILE__, 2, 2},
    {0, "ai", "game", "game", __FILE__, 3, 2},      {0, "audio", "game", "game", __FILE__, 4, 2},
    {0, "render", "game", "game", __FILE__, 5, 2},  {0, "net", "game", "game", __FILE__, 6, 2},
    {0, "ui", "game", "game", __FILE__, 7, 2},      {0, "streaming", "game", "game", __FILE__, 8, 2}};

double thread_cpu_seconds(const std::string& comm) {
  DIR* d = opendir("/proc/self/task");
  double total = 0;
  while (dirent* e = d ? readdir(d) : nullptr) {
    if (e->d_name[0] == '.') continue;
    std::string base = std::string("/proc/self/task/") + e->d_name;
    std::ifstream c(base + "/comm");
    std::string name;
    std::getline(c, name);
    if (name != comm) continue;
    std::ifstream s(base + "/stat");
    std::string stat((std::istreambuf_iterator<char>(s)), {});
    std::vector<std::string> f;
    size_t pos = stat.rfind(')') + 2;
    while (pos < stat.size()) {
      size_t sp = stat.find(' ', pos);
      f.push_back(stat.substr(pos, sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    total += double(std::stoll(f[11]) + std::stoll(f[12])) / double(sysconf(_SC_CLK_TCK));
  }
  if (d) closedir(d);
  return total;
}

// A frame loop: each thread records a frame span with nested scopes, a metric or
// two per frame and a log now and then, paced to `rate` events/s in total.
struct Load {
  double cpu_share;
  uint64_t events, dropped;
};
Load run_load(double rate, int seconds, int threads) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> events{0};
  mm_stats before;
  mm_get_stats(&before);
  double cpu0 = thread_cpu_seconds("mm-upload");
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      uint64_t mine = 0;
      double per_ms = rate / threads / 1000.0;
      auto next = std::chrono::steady_clock::now();
      double owed = 0;
      while (!stop) {
        owed += per_ms;
        while (owed >= 40) {  // one frame: 2 + 8*4 span events + 2 metrics + 2 more = 40 events
          mm_span_begin(&kSpan);
          for (int s = 0; s < 8; ++s) {
            mm_span_begin(&kScopes[s]);
            mm_span_begin(&kScopes[(s + 1) % 8]);
            mm_span_end(&kScopes[(s + 1) % 8]);
            mm_span_end(&kScopes[s]);
          }
          mm_span_end(&kSpan);
          mm_metric_float(&kFloatMetric, 16.6);
          mm_metric_int(&kIntMetric, mine & 1023);
          mm_log_static(&kLog);
          mm_log_string(&kLog, "frame done", 10);
          owed -= 40;
          mine += 40;
        }
        next += std::chrono::milliseconds(1);
        std::this_thread::sleep_until(next);
      }
      events += mine;
      (void)t;
    });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  mm_flush(30000);
  double cpu = thread_cpu_seconds("mm-upload") - cpu0;
  mm_stats st;
  mm_get_stats(&st);
  uint64_t dropped = 0;
  for (int k = 0; k < 3; ++k) dropped += st.events_dropped[k] - before.events_dropped[k];
  return {cpu / wall, events, dropped};
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = "bench/results/native.json";
  int seconds = 30, rounds = 200, lz4_level = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) seconds = atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (a == "--lz4-level" && i + 1 < argc) lz4_level = atoi(argv[++i]);
    else {
      printf("usage: native_bench [--out FILE] [--seconds N (load phases, default 30)] [--rounds N (latency, default 200)] [--lz4-level N]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  g_ns_per_tick = 1e9 / double(mm_tick_frequency());
  // Every response is 200; the bench keeps byte counts, not bodies.
  std::map<std::string, std::string> stream_tags;
  std::map<std::string, std::pair<uint64_t, uint64_t>> bytes_events;  // tag -> (body bytes, events)
  std::mutex mu;
  wire::HttpServer server([&](const wire::Received& r, size_t) {
    wire::Cbor c = wire::parse_cbor(r.body);
    std::lock_guard lk(mu);
    if (r.path == "/ingestion/insert_stream") stream_tags[c["stream_id"].str()] = c["tags"].arr()[0].str();
    if (r.path == "/ingestion/insert_block") {
      auto& be = bytes_events[c["stream_id"].str()];
      be.first += r.body.size();
      be.second += uint64_t(c["nb_objects"].num());
    }
    return wire::Reply{};
  }, /*keep_bodies=*/false);
  mm_config c;
  mm_config_init(&c);
  std::string url = server.url();
  c.url = url.c_str();
  c.crash_handler = 0;
  if (lz4_level >= 0) c.lz4_level = lz4_level;
  if (mm_init(&c) != 0) return 1;

  std::vector<Row> rows;
  std::string msg32 = "player 4242 joined match 77 (eu)";  // 32 bytes
  Row base = measure("baseline: rdtsc + 16-byte TLS store", rounds, [] { baseline_store(&kLog); });
  rows.push_back(measure("static log", rounds, [] { mm_log_static(&kLog); }));
  rows.push_back(measure("formatted log (32 chars)", rounds, [&] { mm_log_string(&kLog, msg32.data(), 32); }));
  rows.push_back(measure("integer metric", rounds, [] { mm_metric_int(&kIntMetric, 42); }));
  rows.push_back(measure("float metric", rounds, [] { mm_metric_float(&kFloatMetric, 16.6); }));
  rows.push_back(measure("span scope (begin+end)", rounds, [] {
    mm_span_begin(&kSpan);
    mm_span_end(&kSpan);
  }));
  rows.push_back(measure("async span (begin+end)", rounds, [] {
    uint64_t id = mm_async_span_begin(&kSpan, 0, 0);
    mm_async_span_end(&kSpan, id, 0, 0);
  }));
  mm_flush(30000);
  mm_stats st;
  mm_get_stats(&st);
  uint64_t latency_drops = st.events_dropped[0] + st.events_dropped[1] + st.events_dropped[2];

  printf("\nnative hot path (this machine: %ld ticks/s), ns per call, batches of %d\n", long(mm_tick_frequency()), kBatch);
  printf("%-36s %9s %9s %9s %9s %7s\n", "case", "p50", "p99", "p99.9", "baseline", "ratio");
  printf("%-36s %9.2f %9.2f %9.2f %9s %7s\n", base.name.c_str(), base.ns, base.p99, base.p999, "", "");
  FILE* f = fopen(out.c_str(), "w");
  fprintf(f, "[\n");
  for (auto& r : rows) {
    // A scope or an async span is two events: compare one event with the baseline.
    double events = r.name.find("(begin+end)") != std::string::npos ? 2 : 1;
    double ratio = r.ns / events / base.ns;
    printf("%-36s %9.2f %9.2f %9.2f %9.2f %7.2f%s\n", r.name.c_str(), r.ns, r.p99, r.p999, base.ns * events, ratio,
           events == 2 ? " (per event)" : "");
    fprintf(f, "  {\"case\": \"%s\", \"ns_per_op\": %.2f, \"p99_ns\": %.2f, \"p999_ns\": %.2f, \"baseline_ns\": %.2f, \"ratio\": %.3f},\n",
            r.name.c_str(), r.ns, r.p99, r.p999, base.ns * events, ratio);
  }
  printf("events dropped during latency rounds: %lu\n", (unsigned long)latency_drops);

  for (double rate : {100e3, 1e6}) {
    Load l = run_load(rate, seconds, 4);
    printf("load %.0fk events/s from 4 threads for %d s: upload thread %.2f%% of one core, %lu events, %lu dropped\n",
           rate / 1e3, seconds, 100 * l.cpu_share, (unsigned long)l.events, (unsigned long)l.dropped);
    fprintf(f, "  {\"case\": \"upload thread CPU at %.0fk events/s (4 threads, %d s)\", \"value\": %.3f, \"unit\": \"%% of one core\", \"events\": %lu, \"dropped\": %lu},\n",
            rate / 1e3, seconds, 100 * l.cpu_share, (unsigned long)l.events, (unsigned long)l.dropped);
  }
  mm_shutdown(10000);
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_tag;
  for (auto& [id, be] : bytes_events) {
    auto& t = by_tag[stream_tags[id]];
    t.first += be.first;
    t.second += be.second;
  }
  size_t i = 0;
  for (auto& [tag, be] : by_tag) {
    double per = be.second ? double(be.first) / double(be.second) : 0;
    printf("wire bytes per event, %s stream: %.2f (%lu events)\n", tag.c_str(), per, (unsigned long)be.second);
    fprintf(f, "  {\"case\": \"wire bytes per event, %s stream\", \"value\": %.3f, \"unit\": \"bytes\", \"events\": %lu}%s\n",
            tag.c_str(), per, (unsigned long)be.second, ++i == by_tag.size() ? "" : ",");
  }
  fprintf(f, "]\n");
  fclose(f);
  printf("wrote %s\n", out.c_str());
  return 0;
}
