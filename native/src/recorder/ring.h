// Single-producer single-consumer byte ring: the calling thread writes transit
// records, the upload thread reads them. No lock, no allocation on write.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>

namespace mm {

// Type index that never names a UDT: "the rest of the ring up to the wrap is padding".
inline constexpr uint8_t kWrapMarker = 0xff;

class Ring {
 public:
  Ring(uint8_t* buffer, uint64_t capacity_pow2) : buf_(buffer), mask_(capacity_pow2 - 1), cap_(capacity_pow2) {}

  // Producer: returns where to write n contiguous bytes, or nullptr when full
  // (the caller counts a drop). Publish with commit().
  uint8_t* prepare_write(uint32_t n) noexcept {
    uint64_t h = head_local_;
    uint64_t pos = h & mask_;
    uint64_t contiguous = cap_ - pos;
    uint64_t need = n <= contiguous ? n : contiguous + n;
    if (h + need - cached_tail_ > cap_) {
      // Looks full: only now read the consumer's position (one shared cache line).
      cached_tail_ = tail_.load(std::memory_order_acquire);
      if (h + need - cached_tail_ > cap_) return nullptr;
    }
    if (n > contiguous) {
      buf_[pos] = kWrapMarker;
      h += contiguous;
      pos = 0;
    }
    pending_ = h + n;
    return buf_ + pos;
  }
  void commit() noexcept {
    head_local_ = pending_;
    head_.store(pending_, std::memory_order_release);
  }

  // Consumer side.
  uint64_t read_head() const noexcept { return head_.load(std::memory_order_acquire); }
  uint64_t tail() const noexcept { return tail_.load(std::memory_order_relaxed); }
  void release_to(uint64_t t) noexcept { tail_.store(t, std::memory_order_release); }
  const uint8_t* at(uint64_t offset) const noexcept { return buf_ + (offset & mask_); }
  uint64_t contiguous_from(uint64_t offset) const noexcept { return cap_ - (offset & mask_); }
  uint64_t capacity() const noexcept { return cap_; }

 private:
  uint8_t* const buf_;
  const uint64_t mask_;
  const uint64_t cap_;
  // Producer-owned line.
  alignas(64) uint64_t head_local_ = 0;
  uint64_t pending_ = 0;
  uint64_t cached_tail_ = 0;
  std::atomic<uint64_t> head_{0};
  // Consumer-owned line.
  alignas(64) std::atomic<uint64_t> tail_{0};
};

}  // namespace mm
