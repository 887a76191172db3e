// Interned strings, descriptors and property sets: created once, never freed, so
// their addresses can stand in for them in every event.
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_set>

#include "micromegas/micromegas.h"

namespace {

std::mutex g_mu;

const char* intern_locked(std::string_view s) {
  static std::unordered_set<std::string>* strings = new std::unordered_set<std::string>();  // outlives exit handlers
  return strings->emplace(s).first->c_str();
}

std::string_view view(const char* s, size_t len) { return s ? std::string_view(s, len) : std::string_view(); }

template <class T, class Key>
T* find_or_make(std::map<Key, T*>& table, const Key& key, bool& made) {
  auto [it, inserted] = table.try_emplace(key, nullptr);
  made = inserted;
  if (inserted) it->second = new T{};
  return it->second;
}

}  // namespace

extern "C" {

const char* mm_intern_string(const char* s, size_t len) {
  std::lock_guard lk(g_mu);
  return intern_locked(view(s, len));
}

const mm_LogMetadataRecord* mm_intern_log_desc(uint32_t level, const char* target, size_t target_len, const char* fmt,
                                               size_t fmt_len) {
  static auto* table = new std::map<std::tuple<uint32_t, std::string, std::string>, mm_LogMetadataRecord*>();
  std::lock_guard lk(g_mu);
  bool made;
  auto* d = find_or_make(*table, std::make_tuple(level, std::string(view(target, target_len)),
                                                 std::string(view(fmt, fmt_len))), made);
  if (made) {
    d->target = d->module_path = intern_locked(view(target, target_len));
    d->fmt_str = intern_locked(view(fmt, fmt_len));
    d->file = intern_locked("");
    d->level = level;
  }
  return d;
}

const mm_MetricMetadataDependency* mm_intern_metric_desc(const char* name, size_t name_len, const char* unit,
                                                         size_t unit_len, const char* target, size_t target_len) {
  static auto* table = new std::map<std::tuple<std::string, std::string, std::string>, mm_MetricMetadataDependency*>();
  std::lock_guard lk(g_mu);
  bool made;
  auto* d = find_or_make(*table, std::make_tuple(std::string(view(name, name_len)), std::string(view(unit, unit_len)),
                                                 std::string(view(target, target_len))), made);
  if (made) {
    d->name = intern_locked(view(name, name_len));
    d->unit = intern_locked(view(unit, unit_len));
    d->target = intern_locked(view(target, target_len));
    d->file = intern_locked("");
    d->lod = MM_LOD_MED;
  }
  return d;
}

const mm_SpanRecord* mm_intern_span_desc(const char* name, size_t name_len, const char* target, size_t target_len,
                                         const char* file, size_t file_len, uint32_t line) {
  static auto* table = new std::map<std::tuple<std::string, std::string, std::string, uint32_t>, mm_SpanRecord*>();
  std::lock_guard lk(g_mu);
  bool made;
  auto* d = find_or_make(*table, std::make_tuple(std::string(view(name, name_len)), std::string(view(target, target_len)),
                                                 std::string(view(file, file_len)), line), made);
  if (made) {
    d->name = intern_locked(view(name, name_len));
    d->target = d->module_path = intern_locked(view(target, target_len));
    d->file = intern_locked(view(file, file_len));
    d->line = line;
    d->lod = MM_LOD_MED;
  }
  return d;
}

const mm_SpanLocationRecord* mm_intern_span_location(const char* target, size_t target_len, const char* file,
                                                     size_t file_len, uint32_t line) {
  static auto* table = new std::map<std::tuple<std::string, std::string, uint32_t>, mm_SpanLocationRecord*>();
  std::lock_guard lk(g_mu);
  bool made;
  auto* d = find_or_make(*table, std::make_tuple(std::string(view(target, target_len)), std::string(view(file, file_len)), line),
                         made);
  if (made) {
    d->target = d->module_path = intern_locked(view(target, target_len));
    d->file = intern_locked(view(file, file_len));
    d->line = line;
    d->lod = MM_LOD_MED;
  }
  return d;
}

const mm_PropertySet* mm_intern_properties(const char* const* kv, size_t count) {
  static auto* table = new std::map<std::string, mm_PropertySet*>();
  std::string key;
  for (size_t i = 0; i < 2 * count; ++i) {
    key += kv[i] ? kv[i] : "";
    key.push_back('\0');
  }
  std::lock_guard lk(g_mu);
  bool made;
  auto* set = find_or_make(*table, key, made);
  if (made) {
    auto* props = new mm_Property[count]();
    for (size_t i = 0; i < count; ++i) {
      const char* k = intern_locked(kv[2 * i] ? kv[2 * i] : "");
      const char* v = intern_locked(kv[2 * i + 1] ? kv[2 * i + 1] : "");
      props[i].name = {k, uint32_t(strlen(k)), MM_CODEC_UTF8};
      props[i].value = {v, uint32_t(strlen(v)), MM_CODEC_UTF8};
    }
    set->count = count;
    set->properties = props;
  }
  return set;
}

}  // extern "C"
