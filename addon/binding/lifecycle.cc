// init / flush / shutdown / stats: cold entry points, so they favour clarity over speed.
#include <cstring>

#include "addon.h"

namespace mmnode {
namespace {

napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

napi_value make_string(napi_env env, const char* s) {
  napi_value r;
  napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &r);
  return r;
}

// init(url, apiKey, directory, properties: string[] (k, v, k, v...), exe, blockSize,
//      flushPeriodMs, cpuTracing, crashHandler, ringSize) -> mm_init's return code.
// Empty strings and zero numbers keep the native defaults (which read MICROMEGAS_* variables).
napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 10) return throw_type(env, "init: expected 10 arguments");
  std::string url, key, dir, exe;
  if (!get_string(env, argv[0], &url, "init: url must be a string")) return nullptr;
  if (!get_string(env, argv[1], &key, "init: apiKey must be a string")) return nullptr;
  if (!get_string(env, argv[2], &dir, "init: directory must be a string")) return nullptr;
  bool is_array = false;
  napi_is_array(env, argv[3], &is_array);
  if (!is_array) return throw_type(env, "init: properties must be an array of strings");
  uint32_t n = 0;
  napi_get_array_length(env, argv[3], &n);
  std::vector<std::string> props(n);
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e;
    napi_get_element(env, argv[3], i, &e);
    if (!get_string(env, e, &props[i], "init: properties must be an array of strings")) return nullptr;
  }
  if (!get_string(env, argv[4], &exe, "init: exe must be a string")) return nullptr;
  uint32_t block_size, flush_ms, cpu, crash, ring_size;
  if (!get_u32(env, argv[5], &block_size, "init: blockSize must be a number")) return nullptr;
  if (!get_u32(env, argv[6], &flush_ms, "init: flushPeriodMs must be a number")) return nullptr;
  if (!get_u32(env, argv[7], &cpu, "init: cpuTracing must be 0 or 1")) return nullptr;
  if (!get_u32(env, argv[8], &crash, "init: crashHandler must be 0 or 1")) return nullptr;
  if (!get_u32(env, argv[9], &ring_size, "init: ringSize must be a number")) return nullptr;

  std::vector<const char*> kv;
  for (size_t i = 0; i + 1 < props.size(); i += 2) {
    kv.push_back(props[i].c_str());
    kv.push_back(props[i + 1].c_str());
  }
  kv.push_back(nullptr);
  mm_config c;
  mm_config_init(&c);
  if (!url.empty()) c.url = url.c_str();
  if (!key.empty()) c.api_key = key.c_str();
  if (!dir.empty()) c.directory = dir.c_str();
  if (!exe.empty()) c.exe = exe.c_str();
  c.properties = kv.data();
  if (block_size) c.block_size = block_size;
  if (flush_ms) c.flush_period_ms = flush_ms;
  if (ring_size) c.ring_size = ring_size;
  c.cpu_tracing = int(cpu);
  c.crash_handler = int(crash);
  return make_int(env, mm_init(&c));
}

napi_value flush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t ms;
  if (argc < 1 || !get_u32(env, argv[0], &ms, "flush: timeoutMs must be a number")) return nullptr;
  return make_int(env, mm_flush(ms));
}

napi_value shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t ms;
  if (argc < 1 || !get_u32(env, argv[0], &ms, "shutdown: deadlineMs must be a number")) return nullptr;
  return make_int(env, mm_shutdown(ms));
}

napi_value set_thread_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  std::string name;
  if (argc < 1 || !get_string(env, argv[0], &name, "setThreadName: name must be a string")) return nullptr;
  mm_set_thread_name(name.c_str());
  return nullptr;
}

napi_value is_enabled(napi_env env, napi_callback_info) {
  napi_value r;
  napi_get_boolean(env, mm_is_enabled() != 0, &r);
  return r;
}

napi_value process_id(napi_env env, napi_callback_info) { return make_string(env, mm_process_id()); }
napi_value last_error(napi_env env, napi_callback_info) { return make_string(env, mm_last_error()); }

napi_value stats(napi_env env, napi_callback_info) {
  mm_stats s{};
  mm_get_stats(&s);
  napi_value o;
  napi_create_object(env, &o);
  auto set = [&](const char* k, uint64_t v) {
    napi_value n;
    napi_create_double(env, double(v), &n);
    napi_set_named_property(env, o, k, n);
  };
  set("eventsDropped", s.events_dropped[0] + s.events_dropped[1] + s.events_dropped[2] + s.events_dropped[3]);
  set("blocksDropped", s.blocks_dropped[0] + s.blocks_dropped[1] + s.blocks_dropped[2] + s.blocks_dropped[3]);
  set("blocksSent", s.blocks_sent);
  set("requestsSent", s.requests_sent);
  set("bytesSent", s.bytes_sent);
  set("queuedBytes", s.queued_bytes);
  set("retries", s.retries);
  return o;
}

}  // namespace

void init_lifecycle(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {
      {"init", init},           {"flush", flush},          {"shutdown", shutdown},
      {"setThreadName", set_thread_name}, {"isEnabled", is_enabled}, {"processId", process_id},
      {"lastError", last_error}, {"stats", stats},
  };
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
