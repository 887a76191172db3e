#include "runtime.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdio>

namespace mm {

std::atomic<Runtime*> g_runtime{nullptr};

namespace {

Priority priority_of(StreamKind k) {
  switch (k) {
    case kLogStream: return kLogs;
    case kMetricsStream: return kMetrics;
    default: return kTraces;
  }
}
// Attempts after the first, per priority: logs outlive a gateway restart, traces are cheap to lose.
const mm_stream_schema* schema_of(StreamKind k) {
  switch (k) {
    case kLogStream: return &mm_log_schema;
    case kMetricsStream: return &mm_metrics_schema;
    case kCpuStream: return &mm_cpu_schema;
    default: return &mm_image_schema;
  }
}
const char* kKindNames[4] = {"log", "metrics", "cpu", "image"};

}  // namespace

Runtime::Runtime(Settings settings)
    : settings_(std::move(settings)), profile_(kRustProfile), jitter_rng_(std::random_device{}()),
      queue_(settings_.max_queue_bytes) {
  profile_.lz4.level = settings_.lz4_level;
  process_ = collect_process_meta(settings_);
  transport_ = settings_.directory.empty()
                   ? make_http_transport(settings_.url, settings_.api_key, settings_.max_in_flight,
                                         settings_.request_timeout_ms)
                   : make_directory_transport(settings_.directory);
  DualTime start{process_.start_ticks, process_.start_time_ns};
  log_stream_ = std::make_unique<Stream>(Uuid::random().str(), kLogStream, schema_of(kLogStream), Properties{}, start);
  metrics_stream_ =
      std::make_unique<Stream>(Uuid::random().str(), kMetricsStream, schema_of(kMetricsStream), Properties{}, start);
  image_stream_ =
      std::make_unique<Stream>(Uuid::random().str(), kImageStream, schema_of(kImageStream), Properties{}, start);
}

Runtime::~Runtime() {
  if (thread_.joinable()) shutdown(0);
}

void Runtime::start() {
  Request r{"insert_process", {}, kMetadata};
  encode_process(process_, profile_, r.body);
  queue_.push(std::move(r), [](const Request&) {});
  thread_ = std::thread([this] { run(); });
}

int64_t Runtime::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

thread_local std::string t_thread_name;

void Runtime::set_thread_name(const char* name) { t_thread_name = name ? name : ""; }

Ring* Runtime::attach(StreamKind kind) {
  auto e = std::make_unique<RingEntry>();
  e->memory.reset(new uint8_t[settings_.ring_size]);
  memset(e->memory.get(), 0, settings_.ring_size);  // fault the pages in now, not on the recording path
  e->ring = std::make_unique<Ring>(e->memory.get(), settings_.ring_size);
  e->kind = kind;
  if (kind == kCpuStream) {
    std::string name = t_thread_name;
    if (name.empty()) {
      char buf[32] = {0};
      pthread_getname_np(pthread_self(), buf, sizeof buf);
      name = buf;
    }
    Properties props = {{"thread-id", std::to_string(long(syscall(SYS_gettid)))}};
    if (!name.empty()) props.emplace_back("thread-name", name);
    std::lock_guard lk(mu_);
    e->owned = std::make_unique<Stream>(Uuid::random().str(), kCpuStream, schema_of(kCpuStream), std::move(props),
                                        DualTime::now());
    e->stream = e->owned.get();
  } else {
    e->stream = kind == kLogStream ? log_stream_.get() : metrics_stream_.get();
  }
  Ring* ring = e->ring.get();
  std::lock_guard lk(mu_);
  entries_.push_back(std::move(e));
  return ring;
}

void Runtime::thread_exited(Ring* const rings[kRingKinds]) {
  std::lock_guard lk(mu_);
  for (auto& e : entries_)
    for (int k = 0; k < kRingKinds; ++k)
      if (rings[k] && e->ring.get() == rings[k]) e->orphaned = true;
}

void Runtime::add_image(std::vector<uint8_t>&& record) {
  std::lock_guard lk(mu_);
  images_.push_back(std::move(record));
}

bool Runtime::flush(uint32_t timeout_ms) {
  std::unique_lock lk(mu_);
  uint64_t generation = ++flush_requested_;
  idle_ = false;
  transport_->wake();
  return idle_cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms),
                           [&] { return (flush_sealed_ >= generation && idle_) || !thread_.joinable(); }) &&
         flush_sealed_ >= generation;
}

bool Runtime::shutdown(uint32_t deadline_ms) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return true;
    stopping_ = true;
    stop_deadline_ms_ = now_ms() + deadline_ms;
    ++flush_requested_;
  }
  transport_->wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lk(mu_);
  idle_cv_.notify_all();
  return queue_.empty() && transport_->in_flight() == 0;
}

void Runtime::crash_flush(uint32_t timeout_ms) {
  crash_requested_ = true;
  transport_->wake();
  for (uint32_t waited = 0; !crash_done_ && waited < timeout_ms; ++waited) {
    timespec ms = {0, 1000000};
    nanosleep(&ms, nullptr);
  }
}

void Runtime::drain(RingEntry& e) {
  Ring& r = *e.ring;
  Stream& s = *e.stream;
  uint64_t head = r.read_head(), t = r.tail();
  while (t < head) {
    const uint8_t* p = r.at(t);
    if (*p == kWrapMarker) {
      t += r.contiguous_from(t);
      continue;
    }
    size_t n = s.builder.record_size(p, std::min<uint64_t>(head - t, r.contiguous_from(t)));
    if (!n) break;  // cannot happen: records are committed whole and contiguous
    s.builder.append(p, n);
    t += n;
    if (s.builder.objects_bytes() >= settings_.block_size) seal(s, DualTime::now());
  }
  r.release_to(t);
}

void Runtime::seal(Stream& s, const DualTime& now) {
  auto drop = [this](const Request& r) { blocks_dropped_[r.stream_kind]++; };
  if (!s.registered) {
    Request r{"insert_stream", {}, kMetadata};
    encode_stream(process_.process_id, s.id, *s.builder.schema(), s.properties, profile_, r.body);
    queue_.push(std::move(r), drop);
    s.registered = true;
  }
  BlockMeta meta{Uuid::random().str(), s.id, process_.process_id, s.block_begin.unix_ns,
                 s.block_begin.ticks - process_.start_ticks, now.unix_ns, now.ticks - process_.start_ticks,
                 s.object_offset};
  std::vector<uint8_t> deps, objs;
  lz4_frame_compress(s.builder.dependencies().data(), s.builder.dependencies().size(), profile_.lz4, deps);
  lz4_frame_compress(s.builder.objects().data(), s.builder.objects().size(), profile_.lz4, objs);
  Request r{"insert_block", {}, priority_of(s.kind), s.kind};
  encode_block(meta, deps, objs, s.builder.nb_objects(), profile_, r.body);
  queue_.push(std::move(r), drop);
  s.object_offset += s.builder.nb_objects();
  s.builder.clear();
  s.block_begin = now;
}

void Runtime::seal_all(bool only_due) {
  DualTime now = DualTime::now();
  int64_t period_ns = int64_t(settings_.flush_period_ms) * 1000000;
  auto maybe = [&](Stream& s) {
    if (s.builder.nb_objects() && (!only_due || now.unix_ns - s.block_begin.unix_ns >= period_ns)) seal(s, now);
  };
  maybe(*log_stream_);
  maybe(*metrics_stream_);
  maybe(*image_stream_);
  for (auto& e : entries_)
    if (e->owned) maybe(*e->owned);
}

void Runtime::dispatch() {
  Request r;
  int64_t now = now_ms();
  while (transport_->can_send() && queue_.pop_ready(now, r)) transport_->send(std::move(r));
  queued_bytes_ = queue_.bytes();
}

void Runtime::complete(Completion&& c) {
  Request& r = c.request;
  if (c.status >= 200 && c.status < 300) {
    requests_sent_++;
    bytes_sent_ += r.body.size();
    if (r.stream_kind >= 0) blocks_sent_++;
    return;
  }
  bool transient = c.status == 0 || c.status >= 500 || c.status == 429 || c.status == 408;
  int64_t now = now_ms();
  if (r.attempts++ == 0) r.first_failure_ms = now;
  bool expired = r.priority != kMetadata && now - r.first_failure_ms >= int64_t(settings_.retry_window_ms);
  if (!transient || expired) {
    if (r.stream_kind >= 0) blocks_dropped_[r.stream_kind]++;
    unsigned attempts = r.attempts;
    if (c.error.empty()) fprintf(stderr, "micromegas: %s dropped after %u attempt(s): HTTP %ld\n", r.route, attempts, c.status);
    else fprintf(stderr, "micromegas: %s dropped after %u attempt(s): %s\n", r.route, attempts, c.error.c_str());
    return;
  }
  retries_++;
  int64_t delay = std::min<int64_t>(int64_t(settings_.retry_base_ms) << std::min<uint32_t>(r.attempts - 1, 20),
                                    settings_.retry_max_ms);
  delay = delay * 3 / 4 + int64_t(jitter_rng_() % uint64_t(delay / 2 + 1));  // jitter spreads a fleet's retries
  if (c.retry_after_ms >= 0) delay = std::max(delay, c.retry_after_ms);
  r.not_before_ms = now + delay;
  queue_.push_front(std::move(r));
}

void Runtime::report_drops() {
  static const mm_MetricMetadataDependency* events_desc = mm_intern_metric_desc(
      "micromegas.telemetry.events_dropped", 35, "count", 5, "micromegas", 10);
  static const mm_MetricMetadataDependency* blocks_desc = mm_intern_metric_desc(
      "micromegas.telemetry.blocks_dropped", 35, "count", 5, "micromegas", 10);
  uint64_t total = 0;
  for (int k = 0; k < 4; ++k) total += g_events_dropped[k] + blocks_dropped_[k];
  if (total == reported_drops_) return;
  reported_drops_ = total;
  for (int k = 0; k < 4; ++k) {
    const char* kv[2] = {"stream", kKindNames[k]};
    const mm_PropertySet* props = mm_intern_properties(kv, 1);
    mm_metric_int_tagged(events_desc, props, g_events_dropped[k]);
    mm_metric_int_tagged(blocks_desc, props, blocks_dropped_[k]);
  }
}

void Runtime::run() {
  pthread_setname_np(pthread_self(), "mm-upload");
  std::vector<RingEntry*> entries;
  std::vector<std::vector<uint8_t>> images;
  std::vector<Completion> done;
  for (;;) {
    uint64_t flush_generation;
    bool stopping;
    {
      std::lock_guard lk(mu_);
      entries.clear();
      for (auto& e : entries_) entries.push_back(e.get());
      images.swap(images_);
      flush_generation = flush_requested_;
      stopping = stopping_;
    }
    bool crash = crash_requested_;
    bool flushing = flush_generation > flush_sealed_ || stopping || crash;
    std::vector<RingEntry*> finished;
    for (RingEntry* e : entries) {
      bool orphaned = e->orphaned;  // read before draining: later writes cannot exist
      drain(*e);
      if (orphaned) finished.push_back(e);
    }
    for (auto& img : images) {
      image_stream_->builder.append(img.data(), img.size());
    }
    images.clear();
    seal_all(!flushing);
    for (RingEntry* e : finished)
      if (e->owned && e->owned->builder.nb_objects()) seal(*e->owned, DualTime::now());
    if (!finished.empty()) {
      std::lock_guard lk(mu_);
      std::erase_if(entries_, [&](auto& e) { return std::find(finished.begin(), finished.end(), e.get()) != finished.end(); });
    }
    int64_t now = now_ms();
    if (now - last_drop_report_ms_ >= settings_.flush_period_ms) {
      last_drop_report_ms_ = now;
      report_drops();
    }
    dispatch();
    int64_t next = queue_.next_ready_ms();
    int timeout = flushing ? 1 : 5;
    if (next > now && transport_->in_flight() == 0 && !flushing) timeout = int(std::min<int64_t>(next - now, 5));
    transport_->wait(timeout, done);
    for (auto& c : done) complete(std::move(c));
    done.clear();
    dispatch();
    bool idle = queue_.empty() && transport_->in_flight() == 0;
    if (crash && idle) crash_done_ = true;
    {
      std::lock_guard lk(mu_);
      if (flush_generation > flush_sealed_) flush_sealed_ = flush_generation;
      idle_ = idle;
      if (idle) idle_cv_.notify_all();
      // `stopping` as read before this pass's drain: a shutdown that arrived
      // since then gets one more pass, so nothing recorded before it is left behind.
      if (stopping && (idle || now_ms() >= stop_deadline_ms_)) break;
    }
  }
}

void Runtime::stats(mm_stats* out) {
  for (int k = 0; k < 4; ++k) {
    out->events_dropped[k] = g_events_dropped[k];
    out->blocks_dropped[k] = blocks_dropped_[k];
  }
  out->blocks_sent = blocks_sent_;
  out->requests_sent = requests_sent_;
  out->bytes_sent = bytes_sent_;
  out->queued_bytes = queued_bytes_;
  out->retries = retries_;
}

}  // namespace mm
