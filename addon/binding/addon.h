// Shared state and helpers of the micromegas Node-API binding.
//
// All state lives in one Addon object per Node environment (main thread or worker), created in
// Init and freed by napi_set_instance_data's finalizer: no statics, so the addon can be loaded by
// several worker threads at once (node-addon-api doc/addon.md gives the reason). The descriptors
// themselves are interned by the native core, process-wide and immortal, so each table here only
// holds pointers, and an index into it is what JavaScript passes back on every record call.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "micromegas/micromegas.h"

namespace mmnode {

struct Addon {
  std::vector<const mm_LogMetadataRecord*> logs;
  std::vector<const mm_MetricMetadataDependency*> metrics;
  std::vector<const mm_SpanRecord*> spans;
  std::vector<const mm_PropertySet*> properties;  // index 0 = no properties (nullptr)
  std::vector<const char*> strings;                // interned strings (dynamic-level targets)
  napi_ref args_ref = nullptr;                     // the Float64Array of shared_args()
  double* args = nullptr;                          // its kArgSlots numbers
  Addon() { properties.push_back(nullptr); }
};

// Every exported function receives the Addon as its callback data, so the hot path needs no
// napi_get_instance_data lookup.
struct Export {
  const char* name;
  napi_callback cb;
};
void define(napi_env env, napi_value exports, Addon* addon, const Export* list, size_t n);

// Throws a TypeError (code ERR_INVALID_ARG_TYPE) and returns nullptr, for `return throw_type(...)`.
napi_value throw_type(napi_env env, const char* message);
napi_value throw_range(napi_env env, const char* message);

// Argument readers: false means a TypeError was thrown.
bool get_u32(napi_env env, napi_value v, uint32_t* out, const char* what);
bool get_f64(napi_env env, napi_value v, double* out, const char* what);
bool get_string(napi_env env, napi_value v, std::string* out, const char* what);

// Reads a table index and checks its bounds.
template <typename T>
inline bool get_index(napi_env env, napi_value v, const std::vector<T>& table, T* out, const char* what) {
  uint32_t i;
  if (napi_get_value_uint32(env, v, &i) != napi_ok) {
    throw_type(env, what);
    return false;
  }
  if (i >= table.size()) {
    throw_range(env, what);
    return false;
  }
  *out = table[i];
  return true;
}

// A dynamic message copied to the stack as UTF-16: up to MM_MAX_MESSAGE_BYTES units plus slack,
// so that a longer string reaches the native core with more than the limit and gets cut there
// with its marker. UTF-16 because Node-API's UTF-8 getter encodes one character at a time (V8's
// WriteUtf8) and costs ~3x the UTF-16 getter, a plain copy, for a short ASCII message; the core
// narrows ASCII straight into its queue (mm_log_*_utf16) and encodes the rest.
struct StackMessage {
  static constexpr size_t kCapacity = MM_MAX_MESSAGE_BYTES + 64;
  uint16_t units[kCapacity];
  size_t len = 0;
  bool read(napi_env env, napi_value v, const char* what) {
    if (napi_get_value_string_utf16(env, v, reinterpret_cast<char16_t*>(units), kCapacity, &len) != napi_ok) {
      throw_type(env, what);
      return false;
    }
    return true;
  }
};

// Numbers JavaScript hands the bound record functions through one Float64Array per environment
// (sharedArgs()), written right before the call with no JS in between, instead of as arguments:
// each napi_get_value_* costs a few ns, a typed-array store next to nothing. An async span edge
// reads [span id, parent span id, depth] (begin writes the new id into kSpanId), a metric kValue.
enum ArgSlot { kSpanId, kParentId, kDepth, kValue, kArgSlots };
// Creates the environment's slots on first use; null (with an exception pending) if that failed.
double* shared_args(napi_env env, Addon* a);

void init_lifecycle(napi_env env, napi_value exports, Addon* addon);
void init_log(napi_env env, napi_value exports, Addon* addon);
void init_metric(napi_env env, napi_value exports, Addon* addon);
void init_span(napi_env env, napi_value exports, Addon* addon);
void init_floor(napi_env env, napi_value exports, Addon* addon);
void init_bound(napi_env env, napi_value exports, Addon* addon);

}  // namespace mmnode
