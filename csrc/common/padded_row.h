// One row of a zero-padded copy of an image plane (the direct convolution's
// build_padded, the depthwise kernels' pad_plane).
//
// Rows are short (8 to 56 elements on the benchmark layers), and a call of
// memcpy and two of fill per row cost about as much as the copy itself. Here
// the copy is 32-byte moves the compiler inlines, the last one overlapping the
// one before, and the border zeros are plain stores.
#pragma once

#include <cstdint>
#include <cstring>

namespace fastconv {
namespace padded_row {
// Internal linkage: included by files built for different ISAs (see
// gemm/ukernel_ref.h), each keeps its own copy.
namespace {

// d[0, n) = s[0, n)
template <typename T>
inline void copy_short(T* __restrict d, const T* __restrict s, int64_t n) {
  constexpr int64_t E = 32 / int64_t(sizeof(T));
  if (n < E) {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
    return;
  }
  for (int64_t i = 0; i + E <= n; i += E) std::memcpy(d + i, s + i, 32);
  if (n % E) std::memcpy(d + n - E, s + n - E, 32);
}

// one zero store, which the compiler does not turn into a call of memset
template <typename T>
inline void store_zero(T* d) {
  const T z(0);
  std::memcpy(d, &z, sizeof(T));
}

// d[0, n) = zeros, then s[0, hi - lo) at [lo, hi), then zeros (0 <= lo <= hi <= n)
template <typename T>
inline void write(T* __restrict d, const T* __restrict s, int64_t n, int64_t lo, int64_t hi) {
  for (int64_t q = 0; q < lo; ++q) store_zero(d + q);
  copy_short(d + lo, s, hi - lo);
  for (int64_t q = hi; q < n; ++q) store_zero(d + q);
}

}  // namespace
}  // namespace padded_row
}  // namespace fastconv
