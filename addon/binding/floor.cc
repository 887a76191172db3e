// The benchmark floor: the cheapest possible raw Node-API call taking one double, built into the
// same module so every benchmark row can be read as "our call / empty call".
#include "addon.h"

namespace mmnode {
namespace {

// The one double argument, read the raw way (inlined into each floor).
inline double arg_f64(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  double v;
  napi_get_value_double(env, argv[0], &v);
  return v;
}

napi_value floor_f64(napi_env env, napi_callback_info info) {
  arg_f64(env, info);
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

// The string floors: the same empty call reading a string argument each way Node-API offers, to a
// stack buffer (bench/string-passing.bench.mjs): what a dynamic log pays before recording.
template <int kHow>
napi_value floor_string(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  alignas(16) char buf[256];
  size_t len = 0;
  if (kHow == 0) napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &len);
  if (kHow == 1) napi_get_value_string_latin1(env, argv[0], buf, sizeof buf, &len);
  if (kHow == 2) napi_get_value_string_utf16(env, argv[0], reinterpret_cast<char16_t*>(buf), sizeof buf / 2, &len);
  if (kHow == 3) napi_get_value_string_utf16(env, argv[0], nullptr, 0, &len);  // length only
  return nullptr;
}

// The floor plus one read of the tick counter (mm_now_ticks, what every record call takes):
// the cheapest call that can record an event. On some hosts the counter alone costs as much as
// the call: 19.6 ns on a Xeon KVM guest, where the AMD guest read it and stored 16 bytes in 10.6.
napi_value floor_clock(napi_env env, napi_callback_info info) {
  arg_f64(env, info);
  [[maybe_unused]] static volatile int64_t sink;  // volatile: the read is kept
  sink = mm_now_ticks();
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
      {"floor2", floor2}, {"floorClock", floor_clock}, {"makeExternal", make_external},
      {"floorStringUtf8", floor_string<0>}, {"floorStringLatin1", floor_string<1>},
      {"floorStringUtf16", floor_string<2>}, {"floorStringLength", floor_string<3>}};
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
