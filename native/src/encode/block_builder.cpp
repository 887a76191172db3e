#include "encode/block_builder.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace mm {

namespace {

constexpr uint8_t kCodecUtf8 = 2;
constexpr uint8_t kCodecWide = 1;
constexpr uint32_t kKindRecord = 0x100;
constexpr uint32_t kKindPropertySet = 0x101;

template <class T>
T load(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void store(uint8_t* p, T v) {
  memcpy(p, &v, sizeof v);
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  uint8_t b[4];
  memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  uint8_t b[8];
  memcpy(b, &v, 8);
  out.insert(out.end(), b, b + 8);
}

}  // namespace

BlockBuilder::BlockBuilder(const mm_stream_schema* schema)
    : schema_(schema),
      static_string_index_(dependency_index("StaticString")),
      static_string_dependency_index_(dependency_index("StaticStringDependency")) {}

int BlockBuilder::dependency_index(const char* name) const {
  for (uint32_t i = 0; i < schema_->dependencies_queue_count; ++i)
    if (strcmp(schema_->dependencies[i]->name, name) == 0) return int(i);
  return -1;
}

const mm_udt* BlockBuilder::dependency_udt(const char* name) const {
  for (uint32_t i = 0; i < schema_->dependencies_count; ++i)
    if (strcmp(schema_->dependencies[i]->name, name) == 0) return schema_->dependencies[i];
  return nullptr;
}

size_t BlockBuilder::record_size(const uint8_t* p, size_t available) const {
  if (available < 1) return 0;
  if (p[0] >= schema_->objects_queue_count)
    throw std::logic_error("transit record with unknown type index " + std::to_string(p[0]));
  const mm_udt& udt = *schema_->objects[p[0]];
  if (udt.size) return available >= 1 + udt.size ? 1 + udt.size : 0;
  if (available < 5) return 0;
  size_t n = 5 + load<uint32_t>(p + 1);
  return available >= n ? n : 0;
}

void BlockBuilder::append(const uint8_t* record, size_t size) {
  size_t at = objects_.size();
  objects_.insert(objects_.end(), record, record + size);
  const mm_udt& udt = *schema_->objects[record[0]];
  patch_refs(objects_.data() + at + (udt.size ? 1 : 5), udt);
  ++nb_objects_;
}

void BlockBuilder::clear() {
  objects_.clear();
  dependencies_.clear();
  ids_.clear();
  next_id_ = 1;
  nb_objects_ = 0;
}

// Replaces each pointer in `body` by its dependency id, writing the dependency first.
// `body` stays valid: lookups only ever append to dependencies_, never to objects_.
void BlockBuilder::patch_refs(uint8_t* body, const mm_udt& udt) {
  for (uint32_t i = 0; i < udt.ref_count; ++i) {
    const mm_ref_slot& s = udt.refs[i];
    uint8_t* at = body + s.offset;
    const void* ptr = load<const void*>(at);
    uint64_t id = 0;
    switch (s.kind) {
      case MM_REF_CSTRING: {
        const char* c = static_cast<const char*>(ptr);
        id = string_id(c, c ? uint32_t(strlen(c)) : 0, kCodecUtf8);
        break;
      }
      case MM_REF_WSTRING: {
        const uint16_t* w = static_cast<const uint16_t*>(ptr);
        uint32_t n = 0;
        while (w && w[n]) ++n;
        id = string_id(w, n * 2, kCodecWide);
        break;
      }
      case MM_REF_STRING_ID:
        id = string_id(ptr, load<uint32_t>(at + 8), kCodecUtf8);
        break;
      case MM_REF_STATIC_STRING_REF:
        id = string_id(ptr, load<uint32_t>(at + 8), at[12]);
        break;
      case MM_REF_RECORD:
        id = record_id(ptr, s.target);
        break;
      case MM_REF_PROPERTY_SET:
        id = property_set_id(ptr);
        break;
    }
    store<uint64_t>(at, id);
  }
}

uint64_t BlockBuilder::string_id(const void* ptr, uint32_t len, uint8_t codec) {
  if (!ptr) {  // a null string is recorded as the empty string
    ptr = "";
    len = 0;
  }
  auto [it, inserted] = ids_.try_emplace(Key{uintptr_t(ptr), len, codec}, next_id_);
  if (!inserted) return it->second;
  uint64_t id = next_id_++;
  const uint8_t* bytes = static_cast<const uint8_t*>(ptr);
  if (codec == kCodecUtf8 && static_string_index_ >= 0) {
    dependencies_.push_back(uint8_t(static_string_index_));
    put_u32(dependencies_, 8 + len);
    put_u64(dependencies_, id);
  } else if (static_string_dependency_index_ >= 0) {
    dependencies_.push_back(uint8_t(static_string_dependency_index_));
    put_u32(dependencies_, 8 + 1 + 4 + len);
    put_u64(dependencies_, id);
    dependencies_.push_back(codec);
    put_u32(dependencies_, len);
  } else {
    throw std::logic_error(std::string("stream ") + schema_->tag + " has no string dependency type");
  }
  dependencies_.insert(dependencies_.end(), bytes, bytes + len);
  return id;
}

uint64_t BlockBuilder::record_id(const void* ptr, const char* type_name) {
  auto [it, inserted] = ids_.try_emplace(Key{uintptr_t(ptr), 0, kKindRecord}, 0);
  if (!inserted) return it->second;
  int index = dependency_index(type_name);
  if (index < 0 || !ptr) throw std::logic_error(std::string("cannot write dependency ") + type_name);
  const mm_udt& udt = *schema_->dependencies[index];
  uint8_t copy[256];
  if (udt.size > sizeof copy) throw std::logic_error("dependency record too large");
  memcpy(copy, ptr, udt.size);
  patch_refs(copy, udt);  // its own dependencies go first
  uint64_t id = next_id_++;
  store<uint64_t>(copy, id);  // every fixed-size dependency starts with its `id` member
  ids_[Key{uintptr_t(ptr), 0, kKindRecord}] = id;
  dependencies_.push_back(uint8_t(index));
  dependencies_.insert(dependencies_.end(), copy, copy + udt.size);
  return id;
}

// In memory: {u64 count, const Property* properties}; on the wire the custom
// PropertySetDependency body: id:u64, n:u32, n x Property.
uint64_t BlockBuilder::property_set_id(const void* ptr) {
  auto [it, inserted] = ids_.try_emplace(Key{uintptr_t(ptr), 0, kKindPropertySet}, 0);
  if (!inserted) return it->second;
  int index = dependency_index("PropertySetDependency");
  const mm_udt* property = dependency_udt("Property");
  if (index < 0 || !property || !ptr) throw std::logic_error("stream cannot carry property sets");
  const uint8_t* set = static_cast<const uint8_t*>(ptr);
  uint64_t count = load<uint64_t>(set);
  const uint8_t* props = load<const uint8_t*>(set + 8);
  std::vector<uint8_t> body(size_t(count) * property->size);
  if (count) memcpy(body.data(), props, body.size());
  for (uint64_t i = 0; i < count; ++i) patch_refs(body.data() + i * property->size, *property);
  uint64_t id = next_id_++;
  ids_[Key{uintptr_t(ptr), 0, kKindPropertySet}] = id;
  dependencies_.push_back(uint8_t(index));
  put_u32(dependencies_, uint32_t(8 + 4 + body.size()));
  put_u64(dependencies_, id);
  put_u32(dependencies_, uint32_t(count));
  dependencies_.insert(dependencies_.end(), body.begin(), body.end());
  return id;
}

}  // namespace mm
