// 2-D pooling, forward and backward.
//
//   max:      y[n,c,oh,ow] = max_{kh,kw} x[n,c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]   (in-bounds taps)
//             ind = argmax as h*W + w; scan order (kh, kw); ties keep the first, a NaN wins
//             (the last NaN), as PyTorch.  dx[n,c,ind] += dy.
//   avg:      y = sum over the window's in-bounds taps / divisor, divisor = divisor_override,
//             else the window clipped to the padded input (count_include_pad), else its
//             in-bounds part.  dx[taps] += dy / divisor.
//   adaptive: window i of OH covers rows [floor(i*H/OH), ceil((i+1)*H/OH)), likewise columns.
//   unpool:   y[n,c,ind[n,c,h,w]] = x[n,c,h,w] (zeros elsewhere); dx[n,c,h,w] = dy[n,c,ind].
//
// Layouts NCHW, C-contiguous; indices int64 per plane. Memory-bound: one pass
// over each plane, parallel over the N*C planes (each owned by one thread, so
// the scatter of the backward passes needs no atomics and has a fixed order).
// Output rows are built whole: for each window tap the in-bounds run of output
// columns is updated with branch-free selects the compiler can vectorise.
#include "ops/pool2d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/check.h"
#include "common/parallel.h"
#include "cpu/cpu.h"
#include "gemm/gemm.h"
#include "ops/im2col.h"
#include "ops/pool_planes.h"

namespace fastconv {

namespace {

int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  const int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;  // floor division
  // the last window must start inside the input or the left padding
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

void check_shape4(const char* op, const std::vector<int64_t>& xs) {
  if (xs.size() != 4) value_error(op, ": input must be 4-D (N, C, H, W), got shape ", shape_str(xs));
  for (int64_t d : xs)
    if (d < 0) value_error(op, ": negative dimension in input shape ", shape_str(xs));
  if (xs[1] == 0 || xs[2] == 0 || xs[3] == 0)
    value_error(op, ": input must have non-zero channels, height and width, got shape ", shape_str(xs));
}

}  // namespace

Pool2dParams make_pool2d_params(const char* op, const std::vector<int64_t>& xs, int64_t KH, int64_t KW, int64_t sh,
                                int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, bool ceil_mode,
                                bool count_include_pad, int64_t divisor) {
  check_shape4(op, xs);
  if (KH < 1 || KW < 1) value_error(op, ": kernel_size must be positive, got (", KH, ", ", KW, ")");
  if (sh < 1 || sw < 1) value_error(op, ": stride must be positive, got (", sh, ", ", sw, ")");
  if (dh < 1 || dw < 1) value_error(op, ": dilation must be positive, got (", dh, ", ", dw, ")");
  if (ph < 0 || pw < 0) value_error(op, ": padding must be non-negative, got (", ph, ", ", pw, ")");
  if (KH > (int64_t(1) << 31) || KW > (int64_t(1) << 31) || dh > (int64_t(1) << 31) || dw > (int64_t(1) << 31))
    value_error(op, ": kernel_size/dilation too large");
  // PyTorch's rule (both max and average): pad <= kernel_size / 2
  if (ph > KH / 2 || pw > KW / 2)
    value_error(op, ": padding (", ph, ", ", pw, ") must be at most half of kernel_size (", KH, ", ", KW, ")");
  if (divisor < 0) value_error(op, ": divisor_override must be positive, got ", divisor);
  Pool2dParams p{};
  p.N = xs[0]; p.C = xs[1]; p.H = xs[2]; p.W = xs[3];
  p.KH = KH; p.KW = KW; p.sh = sh; p.sw = sw; p.ph = ph; p.pw = pw; p.dh = dh; p.dw = dw;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  p.divisor = divisor;
  p.OH = pooled_size(p.H, KH, ph, sh, dh, ceil_mode);
  p.OW = pooled_size(p.W, KW, pw, sw, dw, ceil_mode);
  // out < 1 only when the dilated kernel spans more than the padded input (ceil_mode never lowers out below 1)
  if (p.OH < 1 || p.OW < 1)
    value_error(op, ": output size is too small: kernel_size (", KH, ", ", KW, ") with dilation (", dh, ", ", dw,
                ") spans (", dh * (KH - 1) + 1, ", ", dw * (KW - 1) + 1, "), larger than the padded input (",
                p.H + 2 * ph, ", ", p.W + 2 * pw, "); input shape ", shape_str(xs), ", stride (", sh, ", ", sw,
                "), padding (", ph, ", ", pw, ") give an output of (", p.OH, ", ", p.OW, ")");
  checked_numel({p.N, p.C, p.OH, p.OW}, op);
  return p;
}

Pool2dParams make_adaptive_params(const char* op, const std::vector<int64_t>& xs, int64_t OH, int64_t OW) {
  check_shape4(op, xs);
  if (OH < 1 || OW < 1) value_error(op, ": output_size must be positive, got (", OH, ", ", OW, ")");
  Pool2dParams p{};
  p.N = xs[0]; p.C = xs[1]; p.H = xs[2]; p.W = xs[3];
  p.OH = OH; p.OW = OW;
  p.KH = p.KW = p.sh = p.sw = p.dh = p.dw = 1;
  checked_numel({p.N, p.C, p.OH, p.OW}, op);
  if (OH > (int64_t(1) << 40) || OW > (int64_t(1) << 40)) throw SizeError(cat(op, ": output_size too large"));
  return p;
}

Pool2dParams make_unpool_params(const std::vector<int64_t>& xs, const std::vector<int64_t>& is, int64_t OH,
                                int64_t OW) {
  const char* op = "max_unpool2d";
  if (xs.size() != 4) value_error(op, ": input must be 4-D (N, C, H, W), got shape ", shape_str(xs));
  if (is != xs)
    value_error(op, ": indices shape ", shape_str(is), " must equal the input shape ", shape_str(xs));
  for (int64_t d : xs)
    if (d < 0) value_error(op, ": negative dimension in input shape ", shape_str(xs));
  if (OH < 1 || OW < 1) value_error(op, ": output size must be positive, got (", OH, ", ", OW, ")");
  Pool2dParams p{};
  p.N = xs[0]; p.C = xs[1]; p.H = xs[2]; p.W = xs[3];
  p.OH = OH; p.OW = OW;
  p.KH = p.KW = p.sh = p.sw = p.dh = p.dw = 1;
  checked_numel({p.N, p.C, p.OH, p.OW}, op);
  return p;
}

namespace {

// The kernel columns that touch the input, in increasing kw (the scan order
// max pooling's tie rule needs). Only these are listed: a kernel far wider than
// the input (kernel_size up to 2^31 with padding up to half of it) costs
// O(OW + taps), not O(KW) time and memory. Window ow covers the kw in
// [first_at_least(0, dw, s), first_at_least(W, dw, s)), s = ow*sw - pw; both
// bounds grow as ow falls, so walking ow downwards visits each kw once, in order.
std::vector<ColTap> col_taps(const Pool2dParams& p) {
  std::vector<ColTap> taps;
  int64_t next = 0;  // the smallest kw not listed yet
  for (int64_t ow = p.OW - 1; ow >= 0; --ow) {
    const int64_t s = ow * p.sw - p.pw;
    const int64_t a = std::max(next, first_at_least(0, p.dw, s));
    const int64_t b = std::min(p.KW, first_at_least(p.W, p.dw, s));
    for (int64_t kw = a; kw < b; ++kw) {
      ColTap t;
      t.off = kw * p.dw - p.pw;
      t.lo = std::min(p.OW, first_at_least(0, p.sw, t.off));
      t.hi = std::max(t.lo, std::min(p.OW, first_at_least(p.W, p.sw, t.off)));
      taps.push_back(t);
    }
    next = std::max(next, b);
  }
  return taps;
}



// max_pool_plane / avg_pool_plane live in pool_planes_impl.h, compiled per ISA.

template <typename T>
void avg_pool_plane_backward(T* __restrict dx, const T* __restrict dy, const Pool2dParams& p, const ColTap* taps,
                             int64_t ntaps, T* __restrict scaled) {
  std::fill(dx, dx + p.H * p.W, T(0));
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    const T* gr = dy + oh * p.OW;
    const int64_t hs = oh * p.sh - p.ph;
    const int64_t rows_pad = std::min(hs + p.KH, p.H + p.ph) - hs;
    const int64_t rows_in = std::min(hs + p.KH, p.H) - std::max<int64_t>(hs, 0);
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const int64_t ws = ow * p.sw - p.pw;
      int64_t div;
      if (p.divisor)
        div = p.divisor;
      else if (p.count_include_pad)
        div = rows_pad * (std::min(ws + p.KW, p.W + p.pw) - ws);
      else
        div = rows_in * (std::min(ws + p.KW, p.W) - std::max<int64_t>(ws, 0));
      scaled[ow] = gr[ow] / T(div);
    }
    int64_t kh0, kh1;
    row_range(hs, p.KH, 1, p.H, kh0, kh1);
    for (int64_t kh = kh0; kh < kh1; ++kh) {
      T* xr = dx + (hs + kh) * p.W;
      for (int64_t k = 0; k < ntaps; ++k) {
        const int64_t o = taps[k].off, sw = p.sw, hi = taps[k].hi;
        for (int64_t ow = taps[k].lo; ow < hi; ++ow) xr[ow * sw + o] += scaled[ow];
      }
    }
  }
}

inline int64_t ad_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t ad_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// Elements read and written: the work measure for the thread count (threads_for_flops
// wants ~1 MFLOP per thread; pooling streams memory, so it is scaled to split
// anything above ~40 us of work).
double pool_work(const Pool2dParams& p) { return double(p.N) * p.C * (double(p.H) * p.W + double(p.OH) * p.OW); }

}  // namespace

template <typename T>
void max_pool2d_forward(T* y, int64_t* ind, const T* x, const Pool2dParams& p) {
  const std::vector<ColTap> taps = col_taps(p);
  const int64_t ntaps = int64_t(taps.size());
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  parallel_for(p.planes(), threads_for_flops(pool_work(p) * (p.KH * p.KW + 4), p.planes()), [&](int64_t t, int) {
    pool_planes<T>().max(y + t * P, ind ? ind + t * P : nullptr, x + t * HW, p, taps.data(), ntaps);
  });
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const int64_t* ind, const Pool2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
    T* d = dx + t * HW;
    std::fill(d, d + HW, T(0));
    const T* g = dy + t * P;
    const int64_t* ip = ind + t * P;
    for (int64_t i = 0; i < P; ++i) {
      const int64_t k = ip[i];
      if (k >= 0 && k < HW) d[k] += g[i];  // an all-padding window points nowhere
    }
  });
}

template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dParams& p) {
  const std::vector<ColTap> taps = col_taps(p);
  const int64_t ntaps = int64_t(taps.size());
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  parallel_for(p.planes(), threads_for_flops(pool_work(p) * (p.KH * p.KW + 4), p.planes()), [&](int64_t t, int) {
    pool_planes<T>().avg(y + t * P, x + t * HW, p, taps.data(), ntaps);
  });
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dParams& p) {
  const std::vector<ColTap> taps = col_taps(p);
  const int64_t ntaps = int64_t(taps.size());
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  const int nt = threads_for_flops(pool_work(p) * (p.KH * p.KW + 4), p.planes());
  std::vector<T> scratch(size_t(nt) * size_t(p.OW));
  parallel_for(p.planes(), nt, [&](int64_t t, int tid) {
    avg_pool_plane_backward(dx + t * HW, dy + t * P, p, taps.data(), ntaps,
                            scratch.data() + size_t(tid) * size_t(p.OW));
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, const Pool2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  if (P == 1) {
    // global average pooling: one contiguous sum per plane, in 8 lanes (l = i mod 8,
    // in order), then a fixed tree and the tail -- an order set by H*W alone
    parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
      const T* xp = x + t * HW;
      T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= HW; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += xp[i + l];
      T s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
      for (; i < HW; ++i) s += xp[i];
      y[t] = s / T(HW);
    });
    return;
  }
  parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
    const T* xp = x + t * HW;
    T* yp = y + t * P;
    for (int64_t oh = 0; oh < p.OH; ++oh) {
      const int64_t h0 = ad_start(oh, p.H, p.OH), h1 = ad_end(oh, p.H, p.OH);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t w0 = ad_start(ow, p.W, p.OW), w1 = ad_end(ow, p.W, p.OW);
        T s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += xp[h * p.W + w];
        yp[oh * p.OW + ow] = s / T((h1 - h0) * (w1 - w0));
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, const Pool2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
    T* dp = dx + t * HW;
    const T* gp = dy + t * P;
    std::fill(dp, dp + HW, T(0));
    for (int64_t oh = 0; oh < p.OH; ++oh) {
      const int64_t h0 = ad_start(oh, p.H, p.OH), h1 = ad_end(oh, p.H, p.OH);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t w0 = ad_start(ow, p.W, p.OW), w1 = ad_end(ow, p.W, p.OW);
        const T g = gp[oh * p.OW + ow] / T((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dp[h * p.W + w] += g;
      }
    }
  });
}

template <typename T>
void adaptive_max_pool2d_forward(T* y, int64_t* ind, const T* x, const Pool2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.OH * p.OW;
  parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
    const T* xp = x + t * HW;
    for (int64_t oh = 0; oh < p.OH; ++oh) {
      const int64_t h0 = ad_start(oh, p.H, p.OH), h1 = ad_end(oh, p.H, p.OH);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t w0 = ad_start(ow, p.W, p.OW), w1 = ad_end(ow, p.W, p.OW);
        T best = -std::numeric_limits<T>::infinity();
        int64_t bi = h0 * p.W + w0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const T v = xp[h * p.W + w];
            if (v > best || v != v) {
              best = v;
              bi = h * p.W + w;
            }
          }
        y[t * P + oh * p.OW + ow] = best;
        ind[t * P + oh * p.OW + ow] = bi;
      }
    }
  });
}

template <typename T>
bool max_unpool2d_forward(T* y, const T* x, const int64_t* ind, const Pool2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.OH * p.OW, total = p.planes() * HW;
  for (int64_t i = 0; i < total; ++i)  // validate every index before writing anything
    if (ind[i] < 0 || ind[i] >= P) return false;
  parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
    T* yp = y + t * P;
    std::fill(yp, yp + P, T(0));
    const T* xp = x + t * HW;
    const int64_t* ip = ind + t * HW;
    for (int64_t i = 0; i < HW; ++i) yp[ip[i]] = xp[i];
  });
  return true;
}

template <typename T>
bool max_unpool2d_backward(T* dx, const T* dy, const int64_t* ind, const Pool2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.OH * p.OW, total = p.planes() * HW;
  for (int64_t i = 0; i < total; ++i)
    if (ind[i] < 0 || ind[i] >= P) return false;
  parallel_for(p.planes(), threads_for_flops(4 * pool_work(p), p.planes()), [&](int64_t t, int) {
    const T* gp = dy + t * P;
    const int64_t* ip = ind + t * HW;
    T* dp = dx + t * HW;
    for (int64_t i = 0; i < HW; ++i) dp[i] = gp[ip[i]];
  });
  return true;
}

#define FASTCONV_INSTANTIATE(T)                                                                 \
  template void max_pool2d_forward<T>(T*, int64_t*, const T*, const Pool2dParams&);             \
  template void max_pool2d_backward<T>(T*, const T*, const int64_t*, const Pool2dParams&);      \
  template void avg_pool2d_forward<T>(T*, const T*, const Pool2dParams&);                       \
  template void avg_pool2d_backward<T>(T*, const T*, const Pool2dParams&);                      \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, const Pool2dParams&);              \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, const Pool2dParams&);             \
  template void adaptive_max_pool2d_forward<T>(T*, int64_t*, const T*, const Pool2dParams&);    \
  template bool max_unpool2d_forward<T>(T*, const T*, const int64_t*, const Pool2dParams&);     \
  template bool max_unpool2d_backward<T>(T*, const T*, const int64_t*, const Pool2dParams&);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE


// --- per-ISA plane kernels ------------------------------------------------------

namespace {
template <typename T>
const PoolPlaneTable* table_of(const char* isa) {
#ifdef FASTCONV_HAVE_X86_KERNELS
  if (!std::strcmp(isa, "avx2") || !std::strcmp(isa, "avx512")) return &avx2::pool_plane_table();
#endif
  (void)isa;
  return &scalar::pool_plane_table();
}
}  // namespace

template <>
const PoolPlanes<float>& pool_planes<float>() {
  return table_of<float>(active_kernels().isa)->f32;
}
template <>
const PoolPlanes<double>& pool_planes<double>() {
  return table_of<double>(active_kernels().isa)->f64;
}

}  // namespace fastconv

#define FASTCONV_POOL_NS scalar
#include "ops/pool_planes_impl.h"
