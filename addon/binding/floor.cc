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

}  // namespace

void init_floor(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {{"floor", floor_f64}};
  define(env, exports, addon, list, 1);
}

}  // namespace mmnode
