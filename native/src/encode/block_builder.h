// Accumulates one block of a stream on the upload thread: copies the transit
// records the recorder wrote, replaces every pointer they hold by a small
// block-local id, and writes each referenced string, descriptor and property set
// once into the dependencies buffer, before anything that uses it. Driven only by
// the stream's generated UDT tables, so it serves every producer layout.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "micromegas/protocol/udt.h"

namespace mm {

class BlockBuilder {
 public:
  explicit BlockBuilder(const mm_stream_schema* schema);

  // Size of the record starting at p (type index included), or 0 when fewer
  // than `available` bytes hold it. Throws on an unknown type index (a bug).
  size_t record_size(const uint8_t* p, size_t available) const;
  // Copies one complete record.
  void append(const uint8_t* record, size_t size);

  uint32_t nb_objects() const { return nb_objects_; }
  size_t objects_bytes() const { return objects_.size(); }
  const std::vector<uint8_t>& objects() const { return objects_; }
  const std::vector<uint8_t>& dependencies() const { return dependencies_; }
  const mm_stream_schema* schema() const { return schema_; }
  void clear();

 private:
  struct Key {
    uintptr_t ptr;
    uint32_t len;
    uint32_t kind;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept { return k.ptr * 0x9E3779B97F4A7C15ull ^ (uint64_t(k.len) << 32 | k.kind); }
  };

  void patch_refs(uint8_t* body, const mm_udt& udt);
  uint64_t string_id(const void* ptr, uint32_t len, uint8_t codec);
  uint64_t record_id(const void* ptr, const char* type_name);
  uint64_t property_set_id(const void* ptr);
  int dependency_index(const char* name) const;
  const mm_udt* dependency_udt(const char* name) const;

  const mm_stream_schema* schema_;
  int static_string_index_;             // "StaticString" (UTF-8 only), or -1
  int static_string_dependency_index_;  // "StaticStringDependency", or -1
  std::vector<uint8_t> objects_;
  std::vector<uint8_t> dependencies_;
  std::unordered_map<Key, uint64_t, KeyHash> ids_;
  uint64_t next_id_ = 1;
  uint32_t nb_objects_ = 0;
};

}  // namespace mm
