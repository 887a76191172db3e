// Metrics: one descriptor per (name, unit, target), interned once; values as doubles from JS.
#include "intern.h"

namespace mmnode {
namespace {

// internMetric(name, unit, target) -> metric descriptor index
napi_value intern_metric(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  std::string name, unit, target;
  if (!get_string(env, argv[0], &name, "internMetric: name must be a string")) return nullptr;
  if (!get_string(env, argv[1], &unit, "internMetric: unit must be a string")) return nullptr;
  if (!get_string(env, argv[2], &target, "internMetric: target must be a string")) return nullptr;
  auto* d = mm_intern_metric_desc(name.data(), name.size(), unit.data(), unit.size(), target.data(), target.size());
  return make_u32(env, index_of(a->metrics, d));
}

template <bool kInt>
napi_value metric(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_MetricMetadataDependency* d;
  double v;
  if (!get_index(env, argv[0], a->metrics, &d, "metric: expected a metric descriptor id")) return nullptr;
  if (!get_f64(env, argv[1], &v, "metric: value must be a number")) return nullptr;
  if (kInt)
    mm_metric_int(d, uint64_t(int64_t(v)));
  else
    mm_metric_float(d, v);
  return nullptr;
}

template <bool kInt>
napi_value metric_tagged(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_MetricMetadataDependency* d;
  const mm_PropertySet* p;
  double v;
  if (!get_index(env, argv[0], a->metrics, &d, "metric: expected a metric descriptor id")) return nullptr;
  if (!get_index(env, argv[1], a->properties, &p, "metric: expected a property set id")) return nullptr;
  if (!get_f64(env, argv[2], &v, "metric: value must be a number")) return nullptr;
  if (kInt)
    mm_metric_int_tagged(d, p, uint64_t(int64_t(v)));
  else
    mm_metric_float_tagged(d, p, v);
  return nullptr;
}

}  // namespace

void init_metric(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {
      {"internMetric", intern_metric},
      {"metricInt", metric<true>},
      {"metricFloat", metric<false>},
      {"metricIntTagged", metric_tagged<true>},
      {"metricFloatTagged", metric_tagged<false>},
  };
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
