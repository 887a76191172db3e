// Helpers for the cold intern* entry points: read strings, register a pointer once per table.
#pragma once
#include <algorithm>

#include "addon.h"

namespace mmnode {

// Returns the index of p in table, appending it the first time. Interning is cold (once per call
// site), so a linear scan is fine and keeps indices stable and dense.
template <typename T>
inline uint32_t index_of(std::vector<T>& table, T p) {
  auto it = std::find(table.begin(), table.end(), p);
  if (it != table.end()) return uint32_t(it - table.begin());
  table.push_back(p);
  return uint32_t(table.size() - 1);
}

inline napi_value make_u32(napi_env env, uint32_t v) {
  napi_value r;
  napi_create_uint32(env, v, &r);
  return r;
}

}  // namespace mmnode
