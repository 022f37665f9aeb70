// Plane kernels of max and average pooling; see pool2d.cpp for the maths.
// Included once per ISA with FASTCONV_POOL_NS set to the namespace name; each
// including file's flags decide what the vectoriser targets. The inner loops
// run along an output row with a compile-time stride (1, 2, or any) so the
// strided input reads vectorise; the scan order per output (kh, then kw) and
// the select rules are those of the portable code, so every path gives the
// same bits.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "ops/pool_planes.h"

namespace fastconv {
namespace FASTCONV_POOL_NS {
namespace {

template <typename T, bool IDX, int SW>
void max_pool_plane_s(T* __restrict y, int64_t* __restrict ind, const T* __restrict x, const Pool2dParams& p,
                    const ColTap* taps, int64_t ntaps) {
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    T* yr = y + oh * p.OW;
    int64_t* ir = IDX ? ind + oh * p.OW : nullptr;
    const int64_t hs = oh * p.sh - p.ph;
    const int64_t h0 = first_tap(hs, p.dh);
    std::fill(yr, yr + p.OW, ninf);
    if (IDX)
      for (int64_t ow = 0; ow < p.OW; ++ow) ir[ow] = h0 * p.W + first_tap(ow * p.sw - p.pw, p.dw);
    int64_t kh0, kh1;
    row_range(hs, p.KH, p.dh, p.H, kh0, kh1);
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const int64_t ih = hs + kh * p.dh;
      const T* xr = x + ih * p.W;
      const int64_t rowbase = ih * p.W;
      for (int64_t k = 0; k < ntaps; ++k) {
        const int64_t o = taps[k].off, sw = SW ? SW : p.sw, lo = taps[k].lo, hi = taps[k].hi;
        if (IDX) {
          for (int64_t ow = lo; ow < hi; ++ow) {
            const int64_t iw = ow * sw + o;
            const T v = xr[iw];
            const bool take = (v > yr[ow]) | (v != v);
            yr[ow] = take ? v : yr[ow];
            ir[ow] = take ? rowbase + iw : ir[ow];
          }
        } else {  // values only: NaN still wins (v != v)
          for (int64_t ow = lo; ow < hi; ++ow) {
            const T v = xr[ow * sw + o];
            yr[ow] = ((v > yr[ow]) | (v != v)) ? v : yr[ow];
          }
        }
      }
    }
  }
}

template <typename T, int SW>
void avg_pool_plane_s(T* __restrict y, const T* __restrict x, const Pool2dParams& p, const ColTap* taps,
                    int64_t ntaps) {
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    T* yr = y + oh * p.OW;
    std::fill(yr, yr + p.OW, T(0));
    const int64_t hs = oh * p.sh - p.ph;
    int64_t kh0, kh1;
    row_range(hs, p.KH, 1, p.H, kh0, kh1);
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      const T* xr = x + (hs + kh) * p.W;
      for (int64_t k = 0; k < ntaps; ++k) {
        const int64_t o = taps[k].off, sw = SW ? SW : p.sw, hi = taps[k].hi;
        for (int64_t ow = taps[k].lo; ow < hi; ++ow) yr[ow] += xr[ow * sw + o];
      }
    }
    // divisors, PyTorch's rule
    const int64_t he_pad = std::min(hs + p.KH, p.H + p.ph);
    const int64_t rows_pad = he_pad - hs;
    const int64_t rows_in = std::min(hs + p.KH, p.H) - std::max<int64_t>(hs, 0);
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t ws = ow * p.sw - p.pw;
      int64_t div;
      if (p.divisor) {
        div = p.divisor;
      } else if (p.count_include_pad) {
        div = rows_pad * (std::min(ws + p.KW, p.W + p.pw) - ws);
      } else {
        div = rows_in * (std::min(ws + p.KW, p.W) - std::max<int64_t>(ws, 0));
      }
      yr[ow] = yr[ow] / T(div);
    }
  }
}

template <typename T>
void max_plane(T* y, int64_t* ind, const T* x, const Pool2dParams& p, const ColTap* taps, int64_t ntaps) {
#ifdef FASTCONV_POOL_FAST_MAX_F32
  // an ISA file's hand-written kernel for common float shapes (returns false if it does not apply)
  if constexpr (std::is_same_v<T, float>)
    if (FASTCONV_POOL_FAST_MAX_F32(y, ind, x, p, taps, ntaps)) return;
#endif
  if (ind) {
    if (p.sw == 1) return max_pool_plane_s<T, true, 1>(y, ind, x, p, taps, ntaps);
    if (p.sw == 2) return max_pool_plane_s<T, true, 2>(y, ind, x, p, taps, ntaps);
    return max_pool_plane_s<T, true, 0>(y, ind, x, p, taps, ntaps);
  }
  if (p.sw == 1) return max_pool_plane_s<T, false, 1>(y, nullptr, x, p, taps, ntaps);
  if (p.sw == 2) return max_pool_plane_s<T, false, 2>(y, nullptr, x, p, taps, ntaps);
  return max_pool_plane_s<T, false, 0>(y, nullptr, x, p, taps, ntaps);
}

template <typename T>
void avg_plane(T* y, const T* x, const Pool2dParams& p, const ColTap* taps, int64_t ntaps) {
#ifdef FASTCONV_POOL_FAST_AVG_F32
  if constexpr (std::is_same_v<T, float>)
    if (FASTCONV_POOL_FAST_AVG_F32(y, x, p, taps, ntaps)) return;
#endif
  if (p.sw == 1) return avg_pool_plane_s<T, 1>(y, x, p, taps, ntaps);
  if (p.sw == 2) return avg_pool_plane_s<T, 2>(y, x, p, taps, ntaps);
  return avg_pool_plane_s<T, 0>(y, x, p, taps, ntaps);
}

const PoolPlaneTable kTable = {{max_plane<float>, avg_plane<float>}, {max_plane<double>, avg_plane<double>}};

}  // namespace

const PoolPlaneTable& pool_plane_table() { return kTable; }

}  // namespace FASTCONV_POOL_NS
}  // namespace fastconv
