// The process-wide telemetry state and the upload thread (the "backend"): it
// drains every thread's rings into per-stream blocks, encodes them and sends them.
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "encode/block_builder.h"
#include "encode/envelope.h"
#include "micromegas/micromegas.h"
#include "recorder/recorder.h"
#include "upload/request_queue.h"
#include "upload/transport.h"

namespace mm {

struct Stream {
  std::string id;
  StreamKind kind;
  Properties properties;
  BlockBuilder builder;
  bool registered = false;  // insert_stream is queued just before the first block
  int64_t object_offset = 0;
  DualTime block_begin;
  Stream(std::string id_, StreamKind k, const mm_stream_schema* s, Properties p, DualTime begin)
      : id(std::move(id_)), kind(k), properties(std::move(p)), builder(s), block_begin(begin) {}
};

struct RingEntry {
  std::unique_ptr<uint8_t[]> memory;
  std::unique_ptr<Ring> ring;
  StreamKind kind;
  Stream* stream;                 // log and metrics rings share their process-wide stream
  std::unique_ptr<Stream> owned;  // a thread's cpu stream
  std::atomic<bool> orphaned{false};
};

// Filled from mm_config, then from the environment.
struct Settings {
  std::string url, api_key, directory, exe;
  Properties properties;
  uint32_t block_size, flush_period_ms, ring_size, max_in_flight, retry_base_ms, retry_max_ms, retry_window_ms, request_timeout_ms;
  uint64_t max_queue_bytes;
  int lz4_level;
  bool crash_handler, cpu_tracing;
};
Settings resolve_settings(const mm_config& config);
ProcessMeta collect_process_meta(const Settings& s);

class Runtime {
 public:
  explicit Runtime(Settings settings);
  ~Runtime();
  void start();
  Ring* attach(StreamKind kind);     // the calling thread's ring of this kind
  void thread_exited(Ring* const rings[kRingKinds]);
  void set_thread_name(const char* name);
  void add_image(std::vector<uint8_t>&& record);
  bool flush(uint32_t timeout_ms);
  bool shutdown(uint32_t deadline_ms);
  void crash_flush(uint32_t timeout_ms);  // signal handler: no locks taken
  void stats(mm_stats* out);
  const std::string& process_id() const { return process_.process_id; }
  bool settings_crash_handler() const { return settings_.crash_handler; }
  bool settings_cpu_tracing() const { return settings_.cpu_tracing; }

 private:
  void run();
  void drain(RingEntry& e);
  void seal(Stream& s, const DualTime& now);
  void seal_all(bool only_due);
  void dispatch();
  void complete(Completion&& c);
  void report_drops();
  int64_t now_ms() const;
  Stream* new_stream(StreamKind kind, Properties props);

  Settings settings_;
  Profile profile_;
  ProcessMeta process_;
  std::mt19937_64 jitter_rng_;  // retry delays only; ids come from Uuid::random
  std::unique_ptr<Transport> transport_;
  RequestQueue queue_;
  std::unique_ptr<Stream> log_stream_, metrics_stream_, image_stream_;

  std::mutex mu_;  // guards entries_, images_, flush/idle state
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<RingEntry>> entries_;
  std::vector<std::vector<uint8_t>> images_;
  uint64_t flush_requested_ = 0, flush_sealed_ = 0;
  bool idle_ = true;
  bool stopping_ = false;
  int64_t stop_deadline_ms_ = 0;
  std::atomic<bool> crash_requested_{false}, crash_done_{false};

  std::thread thread_;
  int64_t last_drop_report_ms_ = 0;
  uint64_t reported_drops_ = 0;
  std::atomic<uint64_t> blocks_dropped_[4] = {}, blocks_sent_{0}, requests_sent_{0}, bytes_sent_{0}, retries_{0},
      queued_bytes_{0};
};

extern std::atomic<Runtime*> g_runtime;

}  // namespace mm
