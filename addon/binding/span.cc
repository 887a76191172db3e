// Spans: thread spans (begin/end on the calling thread's cpu stream) and async spans whose
// parent id and depth come from JavaScript's AsyncLocalStorage. Span ids are small counters,
// so they travel as plain numbers.
#include "intern.h"

namespace mmnode {
namespace {

// internSpan(name, target, file, line) -> span descriptor index
napi_value intern_span(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  std::string name, target, file;
  uint32_t line;
  if (!get_string(env, argv[0], &name, "internSpan: name must be a string")) return nullptr;
  if (!get_string(env, argv[1], &target, "internSpan: target must be a string")) return nullptr;
  if (!get_string(env, argv[2], &file, "internSpan: file must be a string")) return nullptr;
  if (!get_u32(env, argv[3], &line, "internSpan: line must be a number")) return nullptr;
  auto* d = mm_intern_span_desc(name.data(), name.size(), target.data(), target.size(), file.data(), file.size(), line);
  return make_u32(env, index_of(a->spans, d));
}

template <bool kBegin>
napi_value thread_span(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_SpanRecord* d;
  if (!get_index(env, argv[0], a->spans, &d, "span: expected a span descriptor id")) return nullptr;
  if (kBegin)
    mm_span_begin(d);
  else
    mm_span_end(d);
  return nullptr;
}

// asyncSpanBegin(desc, parentSpanId, depth) -> span id
napi_value async_begin(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_SpanRecord* d;
  double parent;
  uint32_t depth;
  if (!get_index(env, argv[0], a->spans, &d, "asyncSpanBegin: expected a span descriptor id")) return nullptr;
  if (!get_f64(env, argv[1], &parent, "asyncSpanBegin: parent span id must be a number")) return nullptr;
  if (!get_u32(env, argv[2], &depth, "asyncSpanBegin: depth must be a number")) return nullptr;
  uint64_t id = mm_async_span_begin(d, uint64_t(parent), depth);
  napi_value r;
  napi_create_double(env, double(id), &r);
  return r;
}

// asyncSpanEnd(desc, spanId, parentSpanId, depth)
napi_value async_end(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_SpanRecord* d;
  double id, parent;
  uint32_t depth;
  if (!get_index(env, argv[0], a->spans, &d, "asyncSpanEnd: expected a span descriptor id")) return nullptr;
  if (!get_f64(env, argv[1], &id, "asyncSpanEnd: span id must be a number")) return nullptr;
  if (!get_f64(env, argv[2], &parent, "asyncSpanEnd: parent span id must be a number")) return nullptr;
  if (!get_u32(env, argv[3], &depth, "asyncSpanEnd: depth must be a number")) return nullptr;
  mm_async_span_end(d, uint64_t(id), uint64_t(parent), depth);
  return nullptr;
}

// Async span edges bound to their descriptor, reading their numbers from the shared slots
// (ArgSlot): they cost what a zero-argument thread span edge costs.
struct AsyncTarget {
  const mm_SpanRecord* desc;
  double* args;
};

template <bool kBegin>
napi_value call_async(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  auto* t = static_cast<const AsyncTarget*>(data);
  double* args = t->args;
  if (kBegin)
    args[kSpanId] = double(mm_async_span_begin(t->desc, uint64_t(args[kParentId]), uint32_t(args[kDepth])));
  else
    mm_async_span_end(t->desc, uint64_t(args[kSpanId]), uint64_t(args[kParentId]), uint32_t(args[kDepth]));
  return nullptr;
}

// bindAsyncSpan(desc) -> [begin, end], both without arguments (see AsyncTarget).
napi_value bind_async(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Addon* a;
  napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&a));
  const mm_SpanRecord* d;
  if (!get_index(env, argv[0], a->spans, &d, "bindAsyncSpan: expected a span descriptor id")) return nullptr;
  double* args = shared_args(env, a);
  if (!args) return nullptr;
  napi_value pair, edge[2];
  for (int i = 0; i < 2; ++i) {
    auto* owned = new AsyncTarget{d, args};  // one per function: each may outlive the other
    napi_create_function(env, i ? "end" : "begin", NAPI_AUTO_LENGTH, i ? call_async<false> : call_async<true>, owned,
                         &edge[i]);
    napi_add_finalizer(env, edge[i], owned, [](napi_env, void* p, void*) { delete static_cast<AsyncTarget*>(p); },
                       nullptr, nullptr);
  }
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, edge[0]);
  napi_set_element(env, pair, 1, edge[1]);
  return pair;
}

}  // namespace

void init_span(napi_env env, napi_value exports, Addon* addon) {
  static const Export list[] = {
      {"internSpan", intern_span},       {"spanBegin", thread_span<true>}, {"spanEnd", thread_span<false>},
      {"asyncSpanBegin", async_begin},   {"asyncSpanEnd", async_end},
      {"bindAsyncSpan", bind_async},
  };
  define(env, exports, addon, list, sizeof list / sizeof list[0]);
}

}  // namespace mmnode
