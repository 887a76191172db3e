// Encoded requests waiting for upload, drained strictly by priority, under a
// memory cap that sheds cpu traces first, then metrics, then logs, and never
// process or stream metadata.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace mm {

enum Priority : int { kMetadata = 0, kLogs = 1, kMetrics = 2, kTraces = 3 };
inline constexpr int kPriorities = 4;

struct Request {
  const char* route;  // "insert_process", "insert_stream", "insert_block"
  std::vector<uint8_t> body;
  Priority priority;
  int stream_kind = -1;  // StreamKind of a block, for drop accounting
  uint32_t attempts = 0;
  int64_t not_before_ms = 0;  // steady clock
  int64_t first_failure_ms = 0;  // steady clock; the retry window counts from here
};

class RequestQueue {
 public:
  explicit RequestQueue(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Admits r, evicting queued blocks of a lower priority (newest first) when the
  // cap is reached; a block that still does not fit is dropped. Every dropped
  // block goes to on_drop.
  void push(Request&& r, const std::function<void(const Request&)>& on_drop);
  // A failed request goes back to the front of its queue.
  void push_front(Request&& r);
  // The first request, by priority, allowed to go at now_ms.
  bool pop_ready(int64_t now_ms, Request& out);
  // Earliest not_before among queue fronts, or -1 when empty.
  int64_t next_ready_ms() const;
  bool empty() const { return count_ == 0; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::deque<Request> queues_[kPriorities];
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  size_t count_ = 0;
};

}  // namespace mm
