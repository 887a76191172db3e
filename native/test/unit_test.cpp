// Unit tests of the encoder pieces (upload-thread side).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "encode/block_builder.h"
#include "encode/cbor.h"
#include "encode/envelope.h"
#include "encode/lz4_frame.h"
#include "encode/text_format.h"
#include "runtime.h"
#include "micromegas/protocol/events.gen.h"
#include "support/wire_reader.h"
#include "upload/request_queue.h"

namespace {

std::vector<uint8_t> record(uint8_t index, const void* body, size_t n) {
  std::vector<uint8_t> r{index};
  r.insert(r.end(), static_cast<const uint8_t*>(body), static_cast<const uint8_t*>(body) + n);
  return r;
}

TEST(RequestQueue, ShedsTracesThenMetricsThenLogsAndNeverMetadata) {
  mm::RequestQueue q(300);
  std::vector<int> dropped;
  auto drop = [&](const mm::Request& r) { dropped.push_back(r.priority); };
  auto req = [](mm::Priority p, size_t n) { return mm::Request{"insert_block", std::vector<uint8_t>(n), p, int(p)}; };
  q.push(req(mm::kTraces, 100), drop);
  q.push(req(mm::kMetrics, 100), drop);
  q.push(req(mm::kLogs, 100), drop);
  EXPECT_TRUE(dropped.empty());
  q.push(req(mm::kLogs, 100), drop);  // evicts the trace block
  EXPECT_EQ(dropped, std::vector<int>({mm::kTraces}));
  q.push(req(mm::kLogs, 100), drop);  // evicts the metrics block
  EXPECT_EQ(dropped, std::vector<int>({mm::kTraces, mm::kMetrics}));
  q.push(req(mm::kTraces, 100), drop);  // nothing lower to evict: the new one goes
  EXPECT_EQ(dropped.back(), mm::kTraces);
  q.push(req(mm::kMetadata, 100), drop);  // metadata is always admitted
  EXPECT_EQ(q.bytes(), 400u);
  mm::Request out;
  ASSERT_TRUE(q.pop_ready(0, out));
  EXPECT_EQ(out.priority, mm::kMetadata);  // drained by priority
}

TEST(RequestQueue, RetriedRequestWaitsForItsTime) {
  mm::RequestQueue q(1000);
  q.push_front(mm::Request{"insert_block", {1}, mm::kLogs, 0, 1, 500});
  mm::Request out;
  EXPECT_FALSE(q.pop_ready(499, out));
  EXPECT_EQ(q.next_ready_ms(), 500);
  EXPECT_TRUE(q.pop_ready(500, out));
}

TEST(BlockBuilder, WritesEachDependencyOnceBeforeItsUsers) {
  static const mm_LogMetadataRecord desc = {0, "hello", "app", "app", "main.cpp", 7, MM_LEVEL_INFO};
  mm::BlockBuilder b(&mm_log_schema);
  for (int i = 0; i < 3; ++i) {
    mm_LogStaticStrEvent e{&desc, 1000 + i};
    auto r = record(MM_LOG_LogStaticStrEvent, &e, sizeof e);
    ASSERT_EQ(b.record_size(r.data(), r.size()), r.size());
    b.append(r.data(), r.size());
  }
  EXPECT_EQ(b.nb_objects(), 3u);
  // Strings first ("hello", "app", "main.cpp": "app" twice by address is one string), then the record.
  const auto& d = b.dependencies();
  size_t pos = 0;
  std::vector<uint64_t> ids;
  std::vector<uint8_t> types;
  while (pos < d.size()) {
    uint8_t t = d[pos++];
    types.push_back(t);
    uint64_t id;
    if (t == 2) {  // LogMetadataRecord, 48 bytes, id first
      memcpy(&id, &d[pos], 8);
      uint64_t fmt;
      memcpy(&fmt, &d[pos + 8], 8);
      EXPECT_LT(fmt, id);  // defined before use
      pos += 48;
    } else {
      uint32_t n;
      memcpy(&n, &d[pos], 4);
      memcpy(&id, &d[pos + 4], 8);
      pos += 4 + n;
    }
    ids.push_back(id);
  }
  EXPECT_EQ(types.back(), 2);
  std::set<uint64_t> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  // Events now hold the record's block-local id instead of a pointer.
  uint64_t first;
  memcpy(&first, b.objects().data() + 1, 8);
  EXPECT_EQ(first, ids.back());
}

TEST(BlockBuilder, ReadsBackThroughTheMetadata) {
  static const mm_SpanLocationRecord loc = {0, "game", "game", "frame.cpp", 12, MM_LOD_MED};
  static const char* name = "tick";
  mm::BlockBuilder b(&mm_cpu_schema);
  mm_BeginThreadNamedSpanEvent e{&loc, {name, 4}, 42};
  auto r = record(MM_CPU_BeginThreadNamedSpanEvent, &e, sizeof e);
  b.append(r.data(), r.size());
  std::vector<uint8_t> stream;
  mm::encode_stream("p", "s", mm_cpu_schema, {}, mm::kRustProfile, stream);
  wire::Cbor info = wire::parse_cbor(stream);
  wire::TransitReader reader(wire::parse_udts(info["dependencies_metadata"]), wire::parse_udts(info["objects_metadata"]));
  auto events = reader.read_block(b.dependencies(), b.objects());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "BeginThreadNamedSpanEvent");
  EXPECT_EQ(events[0]["name"].s(), "tick");
  EXPECT_EQ(events[0]["time"].u(), 42u);
  EXPECT_EQ(events[0]["thread_span_location"]["file"].s(), "frame.cpp");
  EXPECT_EQ(events[0]["thread_span_location"]["line"].u(), 12u);
}

TEST(Cbor, DefiniteAndIndefiniteMapsReadTheSame) {
  for (bool indefinite : {false, true}) {
    std::vector<uint8_t> out;
    mm::cbor::Writer w(out, indefinite);
    w.begin_map(2);
    w.key("a");
    w.sint(-500);
    w.key("b");
    w.uint(70000);
    w.end();
    EXPECT_EQ(out[0], indefinite ? 0xbf : 0xa2);
    wire::Cbor c = wire::parse_cbor(out);
    EXPECT_EQ(c["a"].num(), -500);
    EXPECT_EQ(c["b"].num(), 70000);
  }
}

TEST(TextFormat, TimesAsEachProducerPrintsThem) {
  int64_t t = 1787331223123456789;  // 2026-08-21T16:53:43.123456789Z
  EXPECT_EQ(mm::format_time(t, mm::TimeFormat::kRustNanos), "2026-08-21T16:53:43.123456789+00:00");
  EXPECT_EQ(mm::format_time(t, mm::TimeFormat::kUnrealMillis), "2026-08-21T16:53:43.123Z");
  EXPECT_EQ(mm::format_time(1787331223123000000, mm::TimeFormat::kRustChrono), "2026-08-21T16:53:43.123Z");
  EXPECT_EQ(mm::format_time(1787331223000000000, mm::TimeFormat::kRustChrono), "2026-08-21T16:53:43Z");
}

TEST(TextFormat, UuidV4) {
  std::mt19937_64 rng(7);
  std::string s = mm::Uuid::v4(rng).str();
  ASSERT_EQ(s.size(), 36u);
  EXPECT_EQ(s[14], '4');
  EXPECT_TRUE(s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

TEST(Lz4Frame, HeadersMatchEachProducer) {
  std::vector<uint8_t> data(1000, 'x'), rust, unreal;
  mm::lz4_frame_compress(data.data(), data.size(), mm::kRustProfile.lz4, rust);
  mm::lz4_frame_compress(data.data(), data.size(), mm::kUnrealProfile.lz4, unreal);
  EXPECT_EQ(std::vector<uint8_t>(rust.begin(), rust.begin() + 7), std::vector<uint8_t>({0x04, 0x22, 0x4d, 0x18, 0x44, 0x40, 0x5e}));
  EXPECT_EQ(std::vector<uint8_t>(unreal.begin(), unreal.begin() + 7), std::vector<uint8_t>({0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82}));
  EXPECT_EQ(wire::lz4_decompress(rust), data);
  EXPECT_EQ(wire::lz4_decompress(unreal), data);
}

TEST(Settings, RetryWindowDefaultsToFiveMinutesAndComesFromTheEnvironment) {
  mm_config c;
  mm_config_init(&c);
  EXPECT_EQ(mm::resolve_settings(c).retry_window_ms, 300000u);
  setenv("MICROMEGAS_RETRY_WINDOW_MS", "60000", 1);
  EXPECT_EQ(mm::resolve_settings(c).retry_window_ms, 60000u);
  c.retry_window_ms = 5000;  // set in the config: the config wins
  EXPECT_EQ(mm::resolve_settings(c).retry_window_ms, 5000u);
  unsetenv("MICROMEGAS_RETRY_WINDOW_MS");
}

TEST(Settings, RetryPacingFromTheEnvironmentUnlessConfigured) {
  mm_config c;
  mm_config_init(&c);
  setenv("MICROMEGAS_RETRY_BASE_MS", "1000", 1);
  setenv("MICROMEGAS_RETRY_MAX_MS", "8000", 1);
  mm::Settings s = mm::resolve_settings(c);
  EXPECT_EQ(s.retry_base_ms, 1000u);
  EXPECT_EQ(s.retry_max_ms, 8000u);
  c.retry_base_ms = 250;  // set in the config: the config wins
  s = mm::resolve_settings(c);
  EXPECT_EQ(s.retry_base_ms, 250u);
  EXPECT_EQ(s.retry_max_ms, 8000u);
  setenv("MICROMEGAS_RETRY_MAX_MS", "10", 1);  // a cap below the first delay is raised to it
  s = mm::resolve_settings(c);
  EXPECT_EQ(s.retry_max_ms, 250u);
  unsetenv("MICROMEGAS_RETRY_BASE_MS");
  unsetenv("MICROMEGAS_RETRY_MAX_MS");
  mm_config_init(&c);
  s = mm::resolve_settings(c);
  EXPECT_EQ(s.retry_base_ms, 100u);
  EXPECT_EQ(s.retry_max_ms, 10000u);
}

}  // namespace
