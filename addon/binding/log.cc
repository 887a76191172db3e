// Logs: descriptors interned once per (level, target, message) call site; the record calls take
// table indices and a message, copy it to the stack and let the core stamp the time.
#include "intern.h"

namespace mmnode {
namespace {

// internLog(level: 1..6, target, fmt) -> log descriptor index
napi_value intern_log(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  uint32_t level;
  std::string target, fmt;
  if (!get_u32(env, argv[0], &level, "internLog: level must be a number")) return nullptr;
  if (level < 1 || level > 6) return throw_range(env, "internLog: level must be 1 (fatal) .. 6 (trace)");
  if (!get_string(env, argv[1], &target, "internLog: target must be a string")) return nullptr;
  if (!get_string(env, argv[2], &fmt, "internLog: message must be a string")) return nullptr;
  auto* d = mm_intern_log_desc(level, target.data(), target.size(), fmt.data(), fmt.size());
  return make_u32(env, index_of(a->logs, d));
}

// internProperties(["k", "v", ...]) -> property set index (0 means none)
napi_value intern_properties(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const char* msg = "internProperties: expected an array of strings [key, value, ...]";
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array) return throw_type(env, msg);
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  std::vector<std::string> s(n & ~1u);
  std::vector<const char*> kv;
  for (uint32_t i = 0; i < s.size(); ++i) {
    napi_value e;
    napi_get_element(env, argv[0], i, &e);
    if (!get_string(env, e, &s[i], msg)) return nullptr;
  }
  for (auto& x : s) kv.push_back(x.c_str());
  if (kv.empty()) return make_u32(env, 0);
  return make_u32(env, index_of(a->properties, mm_intern_properties(kv.data(), kv.size() / 2)));
}

// internString(s) -> string index (targets of logDynamic)
napi_value intern_string(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  std::string s;
  if (!get_string(env, argv[0], &s, "internString: expected a string")) return nullptr;
  return make_u32(env, index_of(a->strings, mm_intern_string(s.data(), s.size())));
}

// logStatic(desc)
napi_value log_static(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_LogMetadataRecord* d;
  if (!get_index(env, argv[0], a->logs, &d, "logStatic: expected a log descriptor id")) return nullptr;
  mm_log_static(d);
  return nullptr;
}

// logString(desc, message)
napi_value log_string(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_LogMetadataRecord* d;
  if (!get_index(env, argv[0], a->logs, &d, "logString: expected a log descriptor id")) return nullptr;
  StackMessage m;
  if (!m.read(env, argv[1], "logString: message must be a string")) return nullptr;
  mm_log_string_utf16(d, m.units, m.len);
  return nullptr;
}

// logTagged(desc, properties, message)
napi_value log_tagged(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_LogMetadataRecord* d;
  const mm_PropertySet* p;
  if (!get_index(env, argv[0], a->logs, &d, "logTagged: expected a log descriptor id")) return nullptr;
  if (!get_index(env, argv[1], a->properties, &p, "logTagged: expected a property set id")) return nullptr;
  StackMessage m;
  if (!m.read(env, argv[2], "logTagged: message must be a string")) return nullptr;
  if (p)
    mm_log_tagged_utf16(d, p, m.units, m.len);
  else
    mm_log_string_utf16(d, m.units, m.len);
  return nullptr;
}

// logDynamic(level, target string id, message): level and target chosen at run time.
napi_value log_dynamic(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  uint32_t level;
  const char* target;
  if (!get_u32(env, argv[0], &level, "logDynamic: level must be a number")) return nullptr;
  if (!get_index(env, argv[1], a->strings, &target, "logDynamic: expected an interned target id")) return nullptr;
  StackMessage m;
  if (!m.read(env, argv[2], "logDynamic: message must be a string")) return nullptr;
  mm_log_dynamic_utf16(level, target, m.units, m.len);
  return nullptr;
}

}  // namespace

void init_log(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {
      {"internLog", intern_log},   {"internProperties", intern_properties}, {"internString", intern_string},
      {"logStatic", log_static},   {"logString", log_string},               {"logTagged", log_tagged},
      {"logDynamic", log_dynamic},
  };
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
