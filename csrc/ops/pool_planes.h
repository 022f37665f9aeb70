// Per-ISA plane kernels of max and average pooling (pool_planes_impl.h is
// compiled once per ISA: pool2d.cpp for the portable path, pool2d_avx2.cpp with
// AVX2 flags); pool2d.cpp calls them through the table of the active ISA.
#pragma once

#include <cstdint>

#include "ops/im2col.h"
#include "ops/pool2d.h"

namespace fastconv {

// A kernel column kw that is inside the input for some output column: the run
// [lo, hi) of output columns ow whose tap column ow*sw + off (off = kw*dw - pw)
// is inside [0, W).
struct ColTap {
  int64_t lo, hi, off;
};

// Kernel rows [kh0, kh1) of a window starting at row hs that are inside [0, H).
inline void row_range(int64_t hs, int64_t KH, int64_t dil, int64_t H, int64_t& kh0, int64_t& kh1) {
  kh0 = std::min(KH, first_at_least(0, dil, hs));
  kh1 = std::max(kh0, std::min(KH, first_at_least(H, dil, hs)));
}

// First in-bounds tap of a window starting at s (PyTorch's initial argmax: s
// advanced by whole dilation steps until >= 0, even when that passes the end).
inline int64_t first_tap(int64_t s, int64_t dil) { return s + first_at_least(0, dil, s) * dil; }

template <typename T>
struct PoolPlanes {
  // one N*C plane: y (OH x OW), ind (nullptr: values only), x (H x W)
  void (*max)(T* y, int64_t* ind, const T* x, const Pool2dParams& p, const ColTap* taps, int64_t ntaps);
  void (*avg)(T* y, const T* x, const Pool2dParams& p, const ColTap* taps, int64_t ntaps);
};

struct PoolPlaneTable {
  PoolPlanes<float> f32;
  PoolPlanes<double> f64;
};

template <typename T>
const PoolPlanes<T>& pool_planes();

namespace scalar {
const PoolPlaneTable& pool_plane_table();
}
namespace avx2 {
const PoolPlaneTable& pool_plane_table();
}

}  // namespace fastconv
