// Descriptor-bound record functions: the descriptor travels as the function's data pointer, so the
// JavaScript call passes only the value (or nothing). Each argument costs a napi_get_value_* call,
// the dearest part of a record, so this is the cheapest shape: a static log or a span edge takes
// no argument at all, and a metric reads its value from the shared slots (ArgSlot). Created once
// per handle (cold), called per event.
#include "intern.h"

namespace mmnode {
namespace {

struct MetricTarget {
  const mm_MetricMetadataDependency* desc;
  const mm_PropertySet* props;
  const double* args;
};

napi_value make_function(napi_env env, const char* name, napi_callback cb, void* data) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, data, &fn);
  return fn;
}

napi_value call_log_static(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  mm_log_static(static_cast<const mm_LogMetadataRecord*>(data));
  return nullptr;
}

napi_value call_log_string(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* data;
  napi_get_cb_info(env, info, &argc, argv, nullptr, &data);
  StackMessage m;
  if (!m.read(env, argv[0], "log: message must be a string")) return nullptr;
  mm_log_string_utf16(static_cast<const mm_LogMetadataRecord*>(data), m.units, m.len);
  return nullptr;
}

template <bool kInt>
napi_value call_metric(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  auto* t = static_cast<const MetricTarget*>(data);
  double v = t->args[kValue];  // JavaScript checked it is a number
  if (t->props) {
    if (kInt)
      mm_metric_int_tagged(t->desc, t->props, uint64_t(int64_t(v)));
    else
      mm_metric_float_tagged(t->desc, t->props, v);
  } else {
    if (kInt)
      mm_metric_int(t->desc, uint64_t(int64_t(v)));
    else
      mm_metric_float(t->desc, v);
  }
  return nullptr;
}

template <bool kBegin>
napi_value call_span(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  if (kBegin)
    mm_span_begin(static_cast<const mm_SpanRecord*>(data));
  else
    mm_span_end(static_cast<const mm_SpanRecord*>(data));
  return nullptr;
}

Addon* addon_of(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  void* a;
  napi_get_cb_info(env, info, argc, argv, nullptr, &a);
  return static_cast<Addon*>(a);
}

// bindLogStatic(desc) -> () => void
napi_value bind_log_static(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a = addon_of(env, info, &argc, argv);
  const mm_LogMetadataRecord* d;
  if (!get_index(env, argv[0], a->logs, &d, "bindLogStatic: expected a log descriptor id")) return nullptr;
  return make_function(env, "log", call_log_static, const_cast<mm_LogMetadataRecord*>(d));
}

// bindLogString(desc) -> (msg: string) => void
napi_value bind_log_string(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a = addon_of(env, info, &argc, argv);
  const mm_LogMetadataRecord* d;
  if (!get_index(env, argv[0], a->logs, &d, "bindLogString: expected a log descriptor id")) return nullptr;
  return make_function(env, "log", call_log_string, const_cast<mm_LogMetadataRecord*>(d));
}

// bindMetric(desc, properties, integer: 0|1) -> () => void, recording sharedArgs()[kValue]
napi_value bind_metric(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a = addon_of(env, info, &argc, argv);
  MetricTarget t;
  uint32_t integer;
  if (!get_index(env, argv[0], a->metrics, &t.desc, "bindMetric: expected a metric descriptor id")) return nullptr;
  if (!get_index(env, argv[1], a->properties, &t.props, "bindMetric: expected a property set id")) return nullptr;
  if (!get_u32(env, argv[2], &integer, "bindMetric: integer must be 0 or 1")) return nullptr;
  if (!(t.args = shared_args(env, a))) return nullptr;
  auto* owned = new MetricTarget(t);
  napi_value fn = make_function(env, "record", integer ? call_metric<true> : call_metric<false>, owned);
  napi_add_finalizer(env, fn, owned, [](napi_env, void* p, void*) { delete static_cast<MetricTarget*>(p); }, nullptr,
                     nullptr);
  return fn;
}

// bindSpan(desc) -> [begin, end]
napi_value bind_span(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a = addon_of(env, info, &argc, argv);
  const mm_SpanRecord* d;
  if (!get_index(env, argv[0], a->spans, &d, "bindSpan: expected a span descriptor id")) return nullptr;
  void* data = const_cast<mm_SpanRecord*>(d);
  napi_value pair;
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, make_function(env, "begin", call_span<true>, data));
  napi_set_element(env, pair, 1, make_function(env, "end", call_span<false>, data));
  return pair;
}

}  // namespace

void init_bound(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {
      {"bindLogStatic", bind_log_static},
      {"bindLogString", bind_log_string},
      {"bindMetric", bind_metric},
      {"bindSpan", bind_span},
  };
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
