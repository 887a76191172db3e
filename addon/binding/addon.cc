// Module entry: creates the per-environment Addon and fills the one export table.
#include "addon.h"

namespace mmnode {

void define(napi_env env, napi_value exports, Addon* addon, const Export* list, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    napi_value fn;
    napi_create_function(env, list[i].name, NAPI_AUTO_LENGTH, list[i].cb, addon, &fn);
    napi_set_named_property(env, exports, list[i].name, fn);
  }
}

napi_value throw_type(napi_env env, const char* message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return nullptr;
}

napi_value throw_range(napi_env env, const char* message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return nullptr;
}

bool get_u32(napi_env env, napi_value v, uint32_t* out, const char* what) {
  if (napi_get_value_uint32(env, v, out) == napi_ok) return true;
  throw_type(env, what);
  return false;
}

bool get_f64(napi_env env, napi_value v, double* out, const char* what) {
  if (napi_get_value_double(env, v, out) == napi_ok) return true;
  throw_type(env, what);
  return false;
}

bool get_string(napi_env env, napi_value v, std::string* out, const char* what) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    throw_type(env, what);
    return false;
  }
  out->resize(len + 1);
  napi_get_value_string_utf8(env, v, out->data(), len + 1, &len);
  out->resize(len);
  return true;
}

}  // namespace mmnode

using namespace mmnode;

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  auto* addon = new Addon();
  napi_set_instance_data(
      env, addon, [](napi_env, void* data, void*) { delete static_cast<Addon*>(data); }, nullptr);
  init_lifecycle(env, exports, addon);
  init_log(env, exports, addon);
  init_metric(env, exports, addon);
  init_span(env, exports, addon);
  init_floor(env, exports, addon);
  init_bound(env, exports, addon);
  return exports;
}
