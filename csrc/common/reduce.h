// Sums that vectorise without reassociating one running total: 16 lane
// partial sums combined in a fixed tree order, so the result is reproducible.
#pragma once

#include <cstdint>

namespace fastconv {

template <typename T>
inline T sum_lanes(const T* __restrict x, int64_t n) {
  constexpr int L = 16;
  T acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int l = 0; l < L; ++l) acc[l] += x[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += x[i];
  for (int width = L / 2; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  return acc[0];
}

}  // namespace fastconv
