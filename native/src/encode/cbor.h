// Minimal CBOR (RFC 8949) writer for the ingestion envelopes. Runs on the upload thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace mm::cbor {

class Writer {
 public:
  // indefinite: containers as 0xbf/0x9f ... 0xff (what the Unreal plugin emits);
  // otherwise definite lengths (what Rust's ciborium emits).
  explicit Writer(std::vector<uint8_t>& out, bool indefinite = false) : out_(out), indefinite_(indefinite) {}

  void begin_map(uint64_t n) { indefinite_ ? out_.push_back(0xbf) : head(5, n); }
  void begin_array(uint64_t n) { indefinite_ ? out_.push_back(0x9f) : head(4, n); }
  void end() { if (indefinite_) out_.push_back(0xff); }
  void uint(uint64_t v) { head(0, v); }
  void sint(int64_t v) { v >= 0 ? head(0, uint64_t(v)) : head(1, uint64_t(-1 - v)); }
  void boolean(bool b) { out_.push_back(b ? 0xf5 : 0xf4); }
  void null() { out_.push_back(0xf6); }
  void text(std::string_view s) {
    head(3, s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void bytes(const uint8_t* p, size_t n) {
    head(2, n);
    out_.insert(out_.end(), p, p + n);
  }
  // Upstream Rust sinks up to 0.28 sent byte buffers as arrays of small integers.
  void bytes_as_int_array(const uint8_t* p, size_t n) {
    head(4, n);
    for (size_t i = 0; i < n; ++i) head(0, p[i]);
  }
  void key(std::string_view k) { text(k); }

 private:
  void head(uint8_t major, uint64_t v) {
    uint8_t m = uint8_t(major << 5);
    if (v < 24) {
      out_.push_back(m | uint8_t(v));
    } else if (v <= 0xff) {
      out_.push_back(m | 24);
      out_.push_back(uint8_t(v));
    } else if (v <= 0xffff) {
      out_.push_back(m | 25);
      push_be(v, 2);
    } else if (v <= 0xffffffffull) {
      out_.push_back(m | 26);
      push_be(v, 4);
    } else {
      out_.push_back(m | 27);
      push_be(v, 8);
    }
  }
  void push_be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(uint8_t(v >> (8 * i)));
  }
  std::vector<uint8_t>& out_;
  bool indefinite_;
};

}  // namespace mm::cbor
