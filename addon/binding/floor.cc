// The benchmark floor: the cheapest possible raw Node-API call taking one double, built into the
// same module so every benchmark row can be read as "our call / empty call".
#include "addon.h"

namespace mmnode {
namespace {

napi_value floor_f64(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  double v;
  napi_get_value_double(env, argv[0], &v);
  return nullptr;
}

// The same empty call reading its argument as a uint32 (how descriptor ids arrive) and as an
// external pointer (the alternative we measured against): see bench/id-passing.bench.mjs.
napi_value floor_u32(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t v;
  napi_get_value_uint32(env, argv[0], &v);
  return nullptr;
}

napi_value floor_external(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  void* p;
  napi_get_value_external(env, argv[0], &p);
  return nullptr;
}

// Two arguments (id, double), the shape of a metric record: the floor for metric.record().
napi_value floor2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t id;
  double v;
  napi_get_value_uint32(env, argv[0], &id);
  napi_get_value_double(env, argv[1], &v);
  return nullptr;
}

napi_value make_external(napi_env env, napi_callback_info) {
  static int target;
  napi_value r;
  napi_create_external(env, &target, nullptr, nullptr, &r);
  return r;
}

}  // namespace

void init_floor(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {
      {"floor", floor_f64}, {"floorU32", floor_u32}, {"floorExternal", floor_external},
      {"floor2", floor2}, {"makeExternal", make_external}};
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
