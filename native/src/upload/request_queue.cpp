#include "upload/request_queue.h"

namespace mm {

void RequestQueue::push(Request&& r, const std::function<void(const Request&)>& on_drop) {
  if (r.priority != kMetadata) {
    for (int p = kPriorities - 1; p > r.priority && bytes_ + r.body.size() > max_bytes_; --p) {
      while (!queues_[p].empty() && bytes_ + r.body.size() > max_bytes_) {
        Request& victim = queues_[p].back();
        bytes_ -= victim.body.size();
        --count_;
        on_drop(victim);
        queues_[p].pop_back();
      }
    }
    if (bytes_ + r.body.size() > max_bytes_) {
      on_drop(r);
      return;
    }
  }
  bytes_ += r.body.size();
  ++count_;
  queues_[r.priority].push_back(std::move(r));
}

void RequestQueue::push_front(Request&& r) {
  bytes_ += r.body.size();
  ++count_;
  queues_[r.priority].push_front(std::move(r));
}

bool RequestQueue::pop_ready(int64_t now_ms, Request& out) {
  for (auto& q : queues_) {
    if (!q.empty() && q.front().not_before_ms <= now_ms) {
      out = std::move(q.front());
      q.pop_front();
      bytes_ -= out.body.size();
      --count_;
      return true;
    }
  }
  return false;
}

int64_t RequestQueue::next_ready_ms() const {
  int64_t next = -1;
  for (auto& q : queues_)
    if (!q.empty() && (next < 0 || q.front().not_before_ms < next)) next = q.front().not_before_ms;
  return next;
}

}  // namespace mm
