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

double* shared_args(napi_env env, Addon* a) {
  if (!a->args) {
    void* data;
    napi_value ab, view;
    if (napi_create_arraybuffer(env, kArgSlots * sizeof(double), &data, &ab) != napi_ok ||
        napi_create_typedarray(env, napi_float64_array, kArgSlots, ab, 0, &view) != napi_ok ||
        napi_create_reference(env, view, 1, &a->args_ref) != napi_ok)
      return nullptr;
    a->args = static_cast<double*>(data);  // an ArrayBuffer's backing store never moves
  }
  return a->args;
}

namespace {

// sharedArgs() -> Float64Array(kArgSlots); the reference keeps it alive as long as the environment.
napi_value shared_args_js(napi_env env, napi_callback_info info) {
  Addon* a;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, reinterpret_cast<void**>(&a));
  if (!shared_args(env, a)) return nullptr;
  napi_value view;
  napi_get_reference_value(env, a->args_ref, &view);
  return view;
}

}  // namespace

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
  static const Export list[] = {{"sharedArgs", shared_args_js}};
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
  return exports;
}
