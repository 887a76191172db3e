// End-to-end behaviours of the native core, one scenario per process (the
// telemetry runtime is process-wide): record through the C API, then read back
// what went out on the wire with an independent reader.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "micromegas/micromegas.hpp"
#include "support/capture.h"
#include "support/http_server.h"

using wire::Capture;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/mm-native-XXXXXX";
  return mkdtemp(tmpl);
}

mm_config dir_config(const std::string& dir) {
  mm_config c;
  mm_config_init(&c);
  c.directory = dir.c_str();
  c.crash_handler = 0;
  return c;
}

const mm_SpanRecord kFrame = {0, "frame", "game", "game", __FILE__, __LINE__, MM_LOD_MED};
const mm_SpanRecord kPhysics = {0, "physics", "game", "game", __FILE__, __LINE__, MM_LOD_MED};
const mm_LogMetadataRecord kHello = {0, "hello", "app", "app", __FILE__, __LINE__, MM_LEVEL_INFO};
const mm_LogMetadataRecord kFmt = {0, "", "app", "app", __FILE__, __LINE__, MM_LEVEL_WARN};
const mm_MetricMetadataDependency kFrameTime = {0, "frame_time", "ms", "game", __FILE__, __LINE__, MM_LOD_MED};
const mm_MetricMetadataDependency kMemory = {0, "memory", "bytes", "game", __FILE__, __LINE__, MM_LOD_MED};

size_t count_type(const wire::StreamData& s, const std::string& type) {
  size_t n = 0;
  for (auto& e : s.events) n += e.type == type;
  return n;
}

int records_every_event_from_many_threads() {
  std::string dir = temp_dir();
  mm_config c = dir_config(dir);
  CHECK(mm_init(&c) == 0);
  const int kThreads = 4, kSpans = 10000, kLogs = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t] {
      std::string name = "worker-" + std::to_string(t);
      mm_set_thread_name(name.c_str());
      for (int i = 0; i < kSpans; ++i) {
        mm_span_begin(&kFrame);
        mm_span_begin(&kPhysics);
        mm_span_end(&kPhysics);
        mm_span_end(&kFrame);
      }
      for (int i = 0; i < kLogs; ++i) {
        mm_log_static(&kHello);
        mm_logf(&kFmt, "thread %d item %d", t, i);
        mm_metric_int(&kMemory, uint64_t(i));
        mm_metric_float(&kFrameTime, i * 0.5);
      }
      const char* kv[] = {"map", "arena", "mode", "ranked"};
      mm_log_tagged(&kHello, mm_intern_properties(kv, 2), "tagged", 6);
      uint64_t id = mm_async_span_begin(&kFrame, 0, 0);
      mm_async_span_end(&kFrame, id, 0, 0);
    });
  for (auto& t : threads) t.join();
  CHECK(mm_flush(20000) == 0);
  CHECK(mm_shutdown(5000) == 0);
  mm_stats st;
  mm_get_stats(&st);
  CHECK(st.events_dropped[0] + st.events_dropped[1] + st.events_dropped[2] == 0);

  Capture cap = Capture::from_directory(dir);
  CHECK(cap.processes.size() == 1);
  auto cpu = cap.with_tag("cpu");
  CHECK(cpu.size() == kThreads);
  std::set<std::string> thread_ids, names;
  for (auto* s : cpu) {
    thread_ids.insert(s->properties.at("thread-id"));
    names.insert(s->properties.at("thread-name"));
    CHECK(count_type(*s, "BeginThreadSpanEvent") == 2 * kSpans);
    CHECK(count_type(*s, "EndThreadSpanEvent") == 2 * kSpans);
    CHECK(count_type(*s, "BeginAsyncSpanEvent") == 1);
    // Nesting and clock order within a thread.
    uint64_t last = 0;
    int depth = 0;
    for (auto& e : s->events) {
      CHECK(e["time"].u() >= last);
      last = e["time"].u();
      if (e.type == "BeginThreadSpanEvent") {
        CHECK(e["thread_span_desc"]["name"].s() == (depth == 0 ? "frame" : "physics"));
        ++depth;
      } else if (e.type == "EndThreadSpanEvent") {
        --depth;
        CHECK(depth >= 0);
      }
    }
    CHECK(depth == 0);
  }
  CHECK(thread_ids.size() == kThreads);
  CHECK(names.count("worker-0") && names.count("worker-3"));

  auto logs = cap.with_tag("log");
  CHECK(logs.size() == 1);
  const auto& log = *logs[0];
  CHECK(count_type(log, "LogStaticStrEvent") == size_t(kThreads * kLogs));
  CHECK(count_type(log, "LogStringEventV2") == size_t(kThreads * kLogs));
  CHECK(count_type(log, "TaggedLogString") == size_t(kThreads));
  std::set<std::string> messages;
  for (auto& e : log.events) {
    if (e.type == "LogStaticStrEvent") {
      CHECK(e["desc"]["fmt_str"].s() == "hello" && e["desc"]["target"].s() == "app" && e["desc"]["level"].u() == 4);
    } else if (e.type == "LogStringEventV2") {
      CHECK(e["desc"]["level"].u() == 3);
      messages.insert(e["msg"].s());
    } else if (e.type == "TaggedLogString") {
      CHECK(e["msg"].s() == "tagged");
      CHECK(e["properties"]["map"].s() == "arena" && e["properties"]["mode"].s() == "ranked");
    }
  }
  CHECK(messages.size() == size_t(kThreads * kLogs));
  CHECK(messages.count("thread 2 item 999"));

  auto metrics = cap.with_tag("metrics");
  CHECK(metrics.size() == 1);
  double float_sum = 0;
  uint64_t int_sum = 0;
  for (auto& e : metrics[0]->events) {
    if (e.type == "FloatMetricEvent") {
      CHECK(e["desc"]["name"].s() == "frame_time" && e["desc"]["unit"].s() == "ms");
      float_sum += e["value"].f();
    } else if (e.type == "IntegerMetricEvent") {
      CHECK(e["desc"]["name"].s() == "memory" && e["desc"]["unit"].s() == "bytes");
      int_sum += e["value"].u();
    }
  }
  CHECK(int_sum == uint64_t(kThreads) * (kLogs - 1) * kLogs / 2);
  CHECK(float_sum == kThreads * 0.5 * (kLogs - 1) * kLogs / 2);
  // Blocks of a stream carry running object offsets.
  for (auto& [id, s] : cap.streams) {
    int64_t expected = 0;
    for (auto& b : s.blocks) {
      CHECK(b["object_offset"].num() == expected);
      expected += b["nb_objects"].num();
    }
  }
  return 0;
}

int flushes_on_block_size() {
  std::string dir = temp_dir();
  mm_config c = dir_config(dir);
  c.block_size = 4096;
  CHECK(mm_init(&c) == 0);
  for (int i = 0; i < 5000; ++i) {
    mm_span_begin(&kFrame);
    mm_span_end(&kFrame);
  }
  CHECK(mm_shutdown(10000) == 0);
  Capture cap = Capture::from_directory(dir);
  auto cpu = cap.with_tag("cpu");
  CHECK(cpu.size() == 1);
  CHECK(cpu[0]->events.size() == 10000);
  // 10000 events of 17 bytes in blocks of at most 4096 bytes of events.
  CHECK(cpu[0]->blocks.size() >= 10000 * 17 / 4096);
  for (auto& b : cpu[0]->blocks) CHECK(b["nb_objects"].num() * 17 <= 4096 + 17);
  return 0;
}

int flushes_on_time() {
  std::string dir = temp_dir();
  mm_config c = dir_config(dir);
  c.flush_period_ms = 200;
  CHECK(mm_init(&c) == 0);
  for (int i = 0; i < 10; ++i) mm_log_static(&kHello);
  // No flush call: the block must go out on its own once the period has passed.
  for (int waited = 0; waited < 20000; waited += 50) {
    Capture cap = Capture::from_directory(dir);
    auto logs = cap.with_tag("log");
    if (!logs.empty() && logs[0]->events.size() == 10) {
      mm_shutdown(1000);
      return 0;
    }
    usleep(50000);
  }
  CHECK(!"no log block was sent within 20 s with a 200 ms flush period");
  return 1;
}

int retries_transient_errors_with_same_bytes() {
  std::atomic<int> failures{0};
  wire::HttpServer server([&](const wire::Received& r, size_t) {
    wire::Reply reply;
    if (r.path == "/ingestion/insert_block" && failures < 3) {
      int f = failures++;
      reply.status = f == 1 ? 500 : 503;
      if (f == 0) reply.headers = "Retry-After: 1\r\n";
    }
    return reply;
  });
  mm_config c;
  mm_config_init(&c);
  std::string url = server.url();
  c.url = url.c_str();
  c.retry_base_ms = 20;
  c.crash_handler = 0;
  CHECK(mm_init(&c) == 0);
  for (int i = 0; i < 100; ++i) mm_log_static(&kHello);
  CHECK(mm_flush(30000) == 0);
  mm_stats st;
  mm_get_stats(&st);
  CHECK(st.retries >= 3);
  CHECK(mm_shutdown(5000) == 0);

  auto received = server.received();
  size_t processes = 0;
  for (auto& r : received) processes += r.path == "/ingestion/insert_process";
  CHECK(processes == 1);
  std::map<std::string, std::vector<std::vector<uint8_t>>> attempts;  // block_id -> bodies
  for (auto& r : received) {
    if (r.path != "/ingestion/insert_block") continue;
    wire::Cbor b = wire::parse_cbor(r.body);
    attempts[b["block_id"].str()].push_back(r.body);
  }
  bool some_retried = false;
  for (auto& [id, bodies] : attempts) {
    for (auto& body : bodies) CHECK(body == bodies.front());  // identical bytes, same block id
    some_retried |= bodies.size() > 1;
  }
  CHECK(some_retried);
  Capture cap = Capture::from_requests(received);
  CHECK(cap.with_tag("log").at(0)->events.size() == 100);
  return 0;
}

int rides_out_an_outage_within_the_retry_window() {
  // Down for 2.5 s: even cpu blocks, the first shed under memory pressure, survive it; then down
  // for good: data blocks are dropped once the window has passed, and the drop is counted.
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> down_for_good{false};
  wire::HttpServer server([&](const wire::Received& r, size_t) {
    wire::Reply reply;
    bool outage = std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500);
    if (r.path == "/ingestion/insert_block" && (outage || down_for_good)) reply.status = 503;
    return reply;
  });
  mm_config c;
  mm_config_init(&c);
  std::string url = server.url();
  c.url = url.c_str();
  c.crash_handler = 0;
  c.retry_window_ms = 6000;
  CHECK(mm_init(&c) == 0);
  for (int i = 0; i < 50; ++i) {
    mm_span_begin(&kFrame);
    mm_span_end(&kFrame);
  }
  mm_log_static(&kHello);
  CHECK(mm_flush(30000) == 0);
  mm_stats st;
  mm_get_stats(&st);
  CHECK(st.blocks_dropped[0] == 0 && st.blocks_dropped[2] == 0);
  Capture cap = Capture::from_requests(server.received());
  CHECK(cap.with_tag("cpu").at(0)->events.size() == 100);
  CHECK(cap.with_tag("log").at(0)->events.size() == 1);

  down_for_good = true;
  auto failing = std::chrono::steady_clock::now();
  mm_log_static(&kHello);
  CHECK(mm_flush(30000) == 0);  // returns once the block is dropped
  mm_get_stats(&st);
  CHECK(st.blocks_dropped[0] == 1);
  CHECK(std::chrono::steady_clock::now() - failing >= std::chrono::milliseconds(6000));
  // Healthy again: the drop report reaches the server, and shutdown is left nothing it cannot
  // send (with the server still down, whether the report was already queued decided its result).
  down_for_good = false;
  usleep(1200 * 1000);  // one more report period so the drop metrics are recorded
  CHECK(mm_shutdown(1000) == 0);
  Capture after = Capture::from_requests(server.received());
  uint64_t reported = 0;
  for (auto& e : after.with_tag("metrics").at(0)->events)
    if (e.type == "TaggedIntegerMetricEvent" && e["desc"]["name"].s() == "micromegas.telemetry.blocks_dropped" &&
        e["properties"]["stream"].s() == "log")
      reported = std::max(reported, e["value"].u());
  CHECK(reported == 1);
  return 0;
}

int drops_traces_first_under_memory_cap() {
  auto start = std::chrono::steady_clock::now();
  // Unavailable for a while, then healthy: the queue overflows, then drains.
  wire::HttpServer server([&](const wire::Received&, size_t) {
    wire::Reply reply;
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1000)) reply.status = 503;
    return reply;
  });
  mm_config c;
  mm_config_init(&c);
  std::string url = server.url();
  c.url = url.c_str();
  c.block_size = 8192;
  c.max_queue_bytes = 48 * 1024;
  c.retry_base_ms = 50;
  c.retry_max_ms = 500;
  c.flush_period_ms = 100;
  c.crash_handler = 0;
  CHECK(mm_init(&c) == 0);
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 20000; ++i) {
      mm_span_begin(&kFrame);
      mm_span_end(&kFrame);
    }
    for (int i = 0; i < 500; ++i) mm_metric_float(&kFrameTime, 1.0);
    for (int i = 0; i < 20; ++i) mm_log_static(&kHello);
    usleep(50000);
  }
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1100)) usleep(50000);
  CHECK(mm_flush(30000) == 0);
  usleep(1200 * 1000);  // one more report period so the drop metrics are recorded
  CHECK(mm_flush(30000) == 0);
  mm_stats st;
  mm_get_stats(&st);
  CHECK(st.blocks_dropped[2] > 0);   // cpu traces shed
  CHECK(st.blocks_dropped[0] == 0);  // logs kept
  CHECK(st.blocks_dropped[2] >= st.blocks_dropped[1]);
  CHECK(mm_shutdown(5000) == 0);

  Capture cap = Capture::from_requests(server.received());
  CHECK(cap.with_tag("log").at(0)->events.size() == 200);  // every log arrived
  uint64_t reported = 0;
  for (auto& e : cap.with_tag("metrics").at(0)->events)
    if (e.type == "TaggedIntegerMetricEvent" && e["desc"]["name"].s() == "micromegas.telemetry.blocks_dropped" &&
        e["properties"]["stream"].s() == "cpu")
      reported = std::max(reported, e["value"].u());
  CHECK(reported > 0 && reported <= st.blocks_dropped[2]);
  return 0;
}

int shutdown_respects_deadline() {
  wire::HttpServer server([](const wire::Received&, size_t) { return wire::Reply{200, "", true}; });
  mm_config c;
  mm_config_init(&c);
  std::string url = server.url();
  c.url = url.c_str();
  c.crash_handler = 0;
  CHECK(mm_init(&c) == 0);
  for (int i = 0; i < 10; ++i) mm_log_static(&kHello);
  CHECK(mm_shutdown(300) == -1);  // the server never answers: give up at the deadline
  mm_stats st;
  mm_get_stats(&st);
  CHECK(st.blocks_sent == 0);
  return 0;
}

int survives_api_misuse() {
  // Before init: no-ops.
  mm_log_static(&kHello);
  mm_span_end(&kFrame);
  CHECK(mm_flush(10) == 0);
  CHECK(mm_shutdown(10) == 0);
  std::string dir = temp_dir();
  mm_config c = dir_config(dir);
  CHECK(mm_init(&c) == 0);
  CHECK(mm_init(&c) == 1);
  mm_log_string(&kFmt, nullptr, 0);
  mm_log_dynamic(MM_LEVEL_ERROR, nullptr, nullptr, 0);
  mm_span_begin_named(mm_intern_span_location("t", 1, "f", 1, 1), nullptr);
  mm_span_end(&kPhysics);  // end without begin
  CHECK(mm_intern_string(nullptr, 0)[0] == '\0');
  std::string huge(100000, 'x');
  huge[16370] = '\xc3';  // a two-byte character across the cut
  huge[16371] = '\xa9';
  mm_log_string(&kFmt, huge.data(), huge.size());
  std::thread([] { mm_span_begin(&kFrame); }).join();  // thread exits with an open span
  CHECK(mm_shutdown(5000) == 0);
  CHECK(mm_shutdown(5000) == 0);  // double shutdown
  mm_log_static(&kHello);         // after shutdown: no-op
  mm_span_begin(&kFrame);
  CHECK(mm_flush(10) == 0);
  CHECK(mm_init(&c) == 1);  // no restart

  Capture cap = Capture::from_directory(dir);
  const auto& log = *cap.with_tag("log").at(0);
  CHECK(log.events.size() == 3);
  const std::string& cut = log.events[2]["msg"].s();
  CHECK(cut.size() <= MM_MAX_MESSAGE_BYTES);
  CHECK(cut.ends_with(MM_TRUNCATION_MARKER));
  CHECK(log.events[1]["target"].s().empty());
  size_t begins = 0;
  for (auto* s : cap.with_tag("cpu")) begins += count_type(*s, "BeginThreadSpanEvent");
  CHECK(begins == 1);  // the exited thread's span was delivered
  return 0;
}

// UTF-16 text (the Node addon's path): ASCII narrowed into the queue, the rest encoded to UTF-8,
// both cut at the same limit with the marker, between whole characters.
int records_utf16_text() {
  std::string dir = temp_dir();
  mm_config c = dir_config(dir);
  CHECK(mm_init(&c) == 0);
  auto u16 = [](std::u16string_view s) { return std::pair{reinterpret_cast<const uint16_t*>(s.data()), s.size()}; };
  const std::u16string_view texts[] = {u"plain ascii", u"caf\u00e9 \U0001F600 \u65e5\u672c", u"lone \xd800 surrogate", u""};
  for (auto t : texts) mm_log_string_utf16(&kFmt, u16(t).first, u16(t).second);
  const char* kv[] = {"k", "v"};
  auto t = u16(u"tagged \u00fc");
  mm_log_tagged_utf16(&kFmt, mm_intern_properties(kv, 1), t.first, t.second);
  t = u16(u"dynamic");
  mm_log_dynamic_utf16(MM_LEVEL_ERROR, mm_intern_string("net", 3), t.first, t.second);
  mm_log_string_utf16(&kFmt, nullptr, 5);
  std::u16string ascii(100000, u'x'), emoji;
  for (int i = 0; i < 5000; ++i) emoji += u"\U0001F600";  // 4 UTF-8 bytes, 2 units each
  mm_log_string_utf16(&kFmt, reinterpret_cast<const uint16_t*>(ascii.data()), ascii.size());
  mm_log_string_utf16(&kFmt, reinterpret_cast<const uint16_t*>(emoji.data()), emoji.size());
  std::u16string exact(MM_MAX_MESSAGE_BYTES, u'y');
  mm_log_string_utf16(&kFmt, reinterpret_cast<const uint16_t*>(exact.data()), exact.size());
  CHECK(mm_shutdown(5000) == 0);

  Capture cap = Capture::from_directory(dir);
  const auto& ev = cap.with_tag("log").at(0)->events;
  CHECK(ev.size() == 10);
  CHECK(ev[0]["msg"].s() == "plain ascii");
  CHECK(ev[1]["msg"].s() == "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac");
  CHECK(ev[2]["msg"].s() == "lone \xef\xbf\xbd surrogate");
  CHECK(ev[3]["msg"].s().empty() && ev[6]["msg"].s().empty());
  CHECK(ev[4].type == "TaggedLogString" && ev[4]["msg"].s() == "tagged \xc3\xbc" && ev[4]["properties"]["k"].s() == "v");
  CHECK(ev[5].type == "LogStringInteropEventV3" && ev[5]["msg"].s() == "dynamic" && ev[5]["target"].s() == "net");
  CHECK(ev[5]["level"].u() == MM_LEVEL_ERROR);
  const std::string marker = MM_TRUNCATION_MARKER;
  const std::string& a = ev[7]["msg"].s();
  CHECK(a.size() == MM_MAX_MESSAGE_BYTES && a == std::string(a.size() - marker.size(), 'x') + marker);
  const std::string& e = ev[8]["msg"].s();
  CHECK(e.ends_with(marker) && e.size() <= MM_MAX_MESSAGE_BYTES && e.size() > MM_MAX_MESSAGE_BYTES - 4);
  std::string kept = e.substr(0, e.size() - marker.size());
  CHECK(kept.size() % 4 == 0);
  for (size_t i = 0; i < kept.size(); i += 4) CHECK(kept.compare(i, 4, "\xf0\x9f\x98\x80") == 0);
  CHECK(ev[9]["msg"].s() == std::string(MM_MAX_MESSAGE_BYTES, 'y'));
  return 0;
}

int crash_is_logged_and_flushed() {
  std::string dir = temp_dir();
  pid_t child = fork();
  if (child == 0) {
    mm_config c = dir_config(dir);
    c.crash_handler = 1;
    mm_init(&c);
    mm_log_static(&kHello);
    volatile int* null = nullptr;
    *null = 1;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  Capture cap = Capture::from_directory(dir);
  const auto& log = *cap.with_tag("log").at(0);
  bool found = false;
  for (auto& e : log.events)
    if (e.type == "LogStringEventV2" && e["desc"]["level"].u() == MM_LEVEL_FATAL) {
      CHECK(e["msg"].s().find("fatal signal 11") != std::string::npos);
      CHECK(e["msg"].s().find("#1 ") != std::string::npos);  // a backtrace follows
      found = true;
    }
  CHECK(found);
  return 0;
}

int reports_process_info() {
  setenv("MICROMEGAS_PROCESS_PROPERTIES", "team=core,env=ci", 1);
  setenv("MICROMEGAS_TELEMETRY_PARENT_PROCESS", "8e2f3a58-0c3b-4f2e-9d55-2b1f0c1a7e01", 1);
  std::string dir = temp_dir();
  mm_config c = dir_config(dir);
  const char* props[] = {"build", "1234", nullptr};
  c.properties = props;
  CHECK(mm_init(&c) == 0);
  mm_log_static(&kHello);
  CHECK(mm_shutdown(5000) == 0);
  Capture cap = Capture::from_directory(dir);
  CHECK(cap.processes.size() == 1);
  const wire::Cbor& p = cap.processes[0];
  CHECK(p["process_id"].str() == mm_process_id());
  CHECK(p["process_id"].str().size() == 36 && p["process_id"].str()[14] == '4');
  CHECK(p["parent_process_id"].str() == "8e2f3a58-0c3b-4f2e-9d55-2b1f0c1a7e01");
  CHECK(p["properties"]["team"].str() == "core" && p["properties"]["env"].str() == "ci");
  CHECK(p["properties"]["build"].str() == "1234");
  CHECK(p["tsc_frequency"].num() > 1000000);
  CHECK(!p["exe"].str().empty() && !p["computer"].str().empty() && !p["cpu_brand"].str().empty());
  CHECK(p["start_time"].str().size() >= 20 && p["start_time"].str().back() == 'Z');
  // Children name this process as their parent.
  CHECK(std::string(getenv("MICROMEGAS_TELEMETRY_PARENT_PROCESS")) == mm_process_id());
  return 0;
}

int stays_noop_without_configuration() {
  unsetenv("MICROMEGAS_TELEMETRY_URL");
  unsetenv("MICROMEGAS_TELEMETRY_DIR");
  CHECK(mm_init(nullptr) == 2);
  CHECK(!mm_is_enabled());
  mm_log_static(&kHello);
  CHECK(mm_flush(10) == 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::function<int()>> scenarios = {
      {"records_every_event_from_many_threads", records_every_event_from_many_threads},
      {"flushes_on_block_size", flushes_on_block_size},
      {"flushes_on_time", flushes_on_time},
      {"retries_transient_errors_with_same_bytes", retries_transient_errors_with_same_bytes},
      {"rides_out_an_outage_within_the_retry_window", rides_out_an_outage_within_the_retry_window},
      {"drops_traces_first_under_memory_cap", drops_traces_first_under_memory_cap},
      {"shutdown_respects_deadline", shutdown_respects_deadline},
      {"survives_api_misuse", survives_api_misuse},
      {"records_utf16_text", records_utf16_text},
      {"crash_is_logged_and_flushed", crash_is_logged_and_flushed},
      {"reports_process_info", reports_process_info},
      {"stays_noop_without_configuration", stays_noop_without_configuration},
  };
  if (argc != 2 || !scenarios.count(argv[1])) {
    for (auto& [name, fn] : scenarios) printf("%s\n", name.c_str());
    return argc == 2 && std::string(argv[1]) == "--list" ? 0 : 2;
  }
  return scenarios[argv[1]]();
}
