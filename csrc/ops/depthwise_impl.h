// Depthwise convolution (Cg == 1): each output plane o reads one input plane c = o / OCg.
//
//   y[n, o, oh, ow]  = b[o] + sum_{kh, kw} w[o, 0, kh, kw] * x[n, c, oh*sh + kh*dh - pt, ow*sw + kw*dw - pl]
//   dx[n, c, ih, iw] = sum_{o of c, kh, kw, (oh, ow) -> (ih, iw)} w[o, 0, kh, kw] * dy[n, o, oh, ow]
//   dw[o, 0, kh, kw] = sum_{n, oh, ow} dy[n, o, oh, ow] * x[n, c, ih, iw]
//
// Too little arithmetic per element for a GEMM: these are plane kernels. The
// input plane is first copied into a zero-padded plane (Hp x Wp, thread-local,
// L1/L2-sized) so the inner loops have no bounds logic; L outputs of a row are
// accumulated in registers over all KH*KW taps and stored once. The loops are
// plain C++ over fixed-size lane arrays: this header is compiled once per ISA
// (depthwise_scalar.cpp, depthwise_avx2.cpp, depthwise_avx512.cpp with 512-bit
// vectors, used where rows are wide enough: see depthwise_scalar.cpp) and the
// vectoriser targets each file's flags. Stride-1 backward data is the forward kernel on dy with the
// flipped kernel; other strides scatter into a padded dx plane.
//
// Parallel: forward over (n, c) planes (each producing its OCg outputs),
// backward data over (n, c), backward weight over output channels, each
// summing its images in order -- every result is independent of the thread count.
//
// Include with FASTCONV_DW_NS defined to the ISA's namespace name.
#include <algorithm>
#include <cstring>

#include "common/buffer.h"
#include "common/padded_row.h"
#include "common/parallel.h"
#include "gemm/gemm.h"
#include "ops/depthwise.h"

namespace fastconv {
namespace FASTCONV_DW_NS {
namespace {

// Bytes per vector register: 32 (AVX2, portable), 64 (the AVX-512 file).
#ifndef FASTCONV_DW_VBYTES
#define FASTCONV_DW_VBYTES 32
#endif
constexpr int kVBytes = FASTCONV_DW_VBYTES;

template <typename T>
constexpr int lanes() {
  return kVBytes / int(sizeof(T)) * 4;  // 4 registers: 256-bit 32 floats / 16 doubles, 512-bit twice that
}

struct PlaneGeom {
  int64_t OH, OW, KH, KW, sh, sw, dh, dw;
  int64_t Hp, Wp;  // padded input plane
};

// Zero-padded copy: dst (Hp x Wp) = src (H x W) shifted by (pt, pl); negative pads crop.
template <typename T>
void pad_plane(T* __restrict dst, const T* __restrict src, int64_t H, int64_t W, int64_t pt, int64_t pl,
               int64_t Hp, int64_t Wp) {
  const int64_t q_lo = std::max<int64_t>(0, pl), q_hi = std::min(Wp, W + pl);
  for (int64_t r = 0; r < Hp; ++r) {
    T* d = dst + r * Wp;
    const int64_t sr = r - pt;
    if (sr < 0 || sr >= H || q_hi <= q_lo) {
      std::fill(d, d + Wp, T(0));
      continue;
    }
    padded_row::write(d, src + sr * W + (q_lo - pl), Wp, q_lo, q_hi);
  }
}

// Four 256-bit registers of lanes as GCC/Clang vector types, so the
// accumulators stay in registers across the tap loop (arrays get spilled).
// In the portable file they lower to whatever the baseline ISA has.
template <typename T, int B = kVBytes>
struct Vec {
  typedef T type __attribute__((vector_size(B)));
  static constexpr int n = B / int(sizeof(T));
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(T* p, type v) { std::memcpy(p, &v, sizeof(v)); }
  // scalar - vector broadcasts the scalar, and x - 0 folds to x (x + 0 would
  // not: -0 + 0 is +0): one broadcast instruction. A lane loop had been
  // lowered to a chain of inserts per tap.
  static type splat(T x) { return x - type{}; }
};

// Stride 1, 4 vectors of outputs from ow0: out[ow] (= init | +=) sum_{kh, kw}
// wk[kh*KW + kw] * xr[kh*dh*Wp + ow + kw*dw]. Four independent accumulators
// keep the FMA pipes busy (one would wait on its own latency every tap).
// Lanes before `from` are computed but not stored (an overlapping last block).
template <typename T>
inline void conv_block_s1(T* __restrict out, const T* __restrict xr, const T* __restrict wk, const PlaneGeom& g,
                          int64_t ow0, int64_t from, T init, bool accumulate) {
  using V = Vec<T>;
  constexpr int n = V::n;
  typename V::type a0 = V::splat(init), a1 = a0, a2 = a0, a3 = a0;
  if (accumulate) a0 = a1 = a2 = a3 = V::splat(T(0));
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const T* r = xr + kh * g.dh * g.Wp + ow0;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const typename V::type wv = V::splat(wk[kh * g.KW + kw]);
      const T* s = r + kw * g.dw;
      a0 += wv * V::load(s);
      a1 += wv * V::load(s + n);
      a2 += wv * V::load(s + 2 * n);
      a3 += wv * V::load(s + 3 * n);
    }
  }
  T* o = out + ow0;
  // (not accumulating, an overlapping block's first lanes are rewritten with
  // the values they hold: the same sums in the same order)
  if (from == 0 || !accumulate) {
    if (accumulate) {
      a0 += V::load(o);
      a1 += V::load(o + n);
      a2 += V::load(o + 2 * n);
      a3 += V::load(o + 3 * n);
    }
    V::store(o, a0);
    V::store(o + n, a1);
    V::store(o + 2 * n, a2);
    V::store(o + 3 * n, a3);
    return;
  }
  T res[4 * n];
  V::store(res, a0);
  V::store(res + n, a1);
  V::store(res + 2 * n, a2);
  V::store(res + 3 * n, a3);
  for (int64_t l = from; l < 4 * n; ++l) o[l] = accumulate ? o[l] + res[l] : res[l];
}

// Stride 1, two vectors of outputs from ow0 on each of `rows` (1 or 2)
// consecutive output rows: four accumulators as in conv_block_s1, for rows of
// 2 to 4 vectors (512-bit vectors: 56-wide rows, two blocks per row pair, the
// second overlapping the first; lanes before `from` not stored).
template <typename T>
inline void conv_block2_s1(T* __restrict out, int64_t ldo, const T* __restrict xr, const T* __restrict wk,
                           const PlaneGeom& g, int64_t ow0, int64_t from, int rows, T init, bool accumulate) {
  using V = Vec<T>;
  constexpr int n = V::n;
  typename V::type a0 = V::splat(init), a1 = a0, b0 = a0, b1 = a0;
  if (accumulate) a0 = a1 = b0 = b1 = V::splat(T(0));
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const T* r = xr + kh * g.dh * g.Wp + ow0;
    const T* r2 = r + g.Wp;  // the next output row's input row (stride 1)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const typename V::type wv = V::splat(wk[kh * g.KW + kw]);
      const T* s = r + kw * g.dw;
      a0 += wv * V::load(s);
      a1 += wv * V::load(s + n);
      if (rows > 1) {
        const T* s2 = r2 + kw * g.dw;
        b0 += wv * V::load(s2);
        b1 += wv * V::load(s2 + n);
      }
    }
  }
  if (!accumulate) {  // lanes before `from` rewritten with the values they hold (the same sums, same order)
    V::store(out + ow0, a0);
    V::store(out + ow0 + n, a1);
    if (rows > 1) {
      V::store(out + ldo + ow0, b0);
      V::store(out + ldo + ow0 + n, b1);
    }
    return;
  }
  T res[2 * n];
  for (int q = 0; q < rows; ++q) {
    T* o = out + q * ldo + ow0;
    V::store(res, q == 0 ? a0 : b0);
    V::store(res + n, q == 0 ? a1 : b1);
    for (int64_t l = from; l < 2 * n; ++l) o[l] += res[l];
  }
}

// Stride 1, NV vectors of outputs from ow0 on each of R consecutive output
// rows (R*NV <= 4 accumulators): four rows of 1 to 2 vectors (R = 4, and the
// last rows of a plane, R < 4), two blocks per row group, the second
// overlapping the first (lanes before `from` not stored). The accumulators
// are an array indexed by constants only, after unrolling, so they stay in
// registers; R is a template argument so that no row test sits in the tap
// loop. (As the two-row block above, R = 2, NV = 2, it was 5-10% slower on
// 8x64x56x56 than conv_block2_s1 in separate processes; that one stays.)
template <typename T, int R, int NV>
__attribute__((always_inline)) inline void conv_block_rows_s1(T* __restrict out, int64_t ldo, const T* __restrict xr,
                                                              const T* __restrict wk, const PlaneGeom& g, int64_t ow0,
                                                              int64_t from, T init, bool accumulate) {
  using V = Vec<T>;
  constexpr int n = V::n;
  typename V::type acc[R][NV];
#pragma GCC unroll 4
  for (int q = 0; q < R; ++q)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[q][v] = V::splat(accumulate ? T(0) : init);
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const T* r = xr + kh * g.dh * g.Wp + ow0;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const typename V::type wv = V::splat(wk[kh * g.KW + kw]);
      const T* s = r + kw * g.dw;
#pragma GCC unroll 4
      for (int q = 0; q < R; ++q)  // the next output rows' input rows: Wp apart (stride 1)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[q][v] += wv * V::load(s + q * g.Wp + v * n);
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < R; ++q) {
    T* o = out + q * ldo + ow0;
    if (!accumulate) {  // lanes before `from` rewritten with the values they hold (the same sums, same order)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(o + v * n, acc[q][v]);
      continue;
    }
    T res[NV * n];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) V::store(res + v * n, acc[q][v]);
    for (int64_t l = from; l < NV * n; ++l) o[l] += res[l];
  }
}

// One group of R rows from output row oh: its two blocks
template <typename T, int R, int NV>
inline void conv_group_s1(T* __restrict out, const T* __restrict xp, const T* __restrict wk, const PlaneGeom& g,
                          int64_t oh, T init, bool accumulate) {
  constexpr int W = NV * Vec<T>::n;  // a block's width
  const T* xr = xp + oh * g.Wp;
  conv_block_rows_s1<T, R, NV>(out + oh * g.OW, g.OW, xr, wk, g, 0, 0, init, accumulate);
  if (g.OW > W)
    conv_block_rows_s1<T, R, NV>(out + oh * g.OW, g.OW, xr, wk, g, g.OW - W, 2 * W - g.OW, init, accumulate);
}

// Rows of 1 to 2 vectors: four rows at a time, one vector each; the last
// rows (OH % 4) as a smaller group.
template <typename T>
void conv_rows4_s1(T* __restrict out, const T* __restrict xp, const T* __restrict wk, const PlaneGeom& g, T init,
                   bool accumulate) {
  int64_t oh = 0;
  for (; oh + 4 <= g.OH; oh += 4) conv_group_s1<T, 4, 1>(out, xp, wk, g, oh, init, accumulate);
  switch (g.OH - oh) {
    case 3: conv_group_s1<T, 3, 1>(out, xp, wk, g, oh, init, accumulate); break;
    case 2: conv_group_s1<T, 2, 1>(out, xp, wk, g, oh, init, accumulate); break;
    case 1: conv_group_s1<T, 1, 1>(out, xp, wk, g, oh, init, accumulate); break;
    default: break;
  }
}

// General stride, L outputs (the tail, and strided convolutions)
template <typename T, int L>
inline void conv_block(T* __restrict out, const T* __restrict xr, const T* __restrict wk, const PlaneGeom& g,
                       int64_t ow0, T init, bool accumulate) {
  T acc[L];
  for (int l = 0; l < L; ++l) acc[l] = accumulate ? out[ow0 + l] : init;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    const T* r = xr + kh * g.dh * g.Wp + ow0 * g.sw;
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const T wv = wk[kh * g.KW + kw];
      const T* s = r + kw * g.dw;
      for (int l = 0; l < L; ++l) acc[l] += wv * s[l * g.sw];
    }
  }
  for (int l = 0; l < L; ++l) out[ow0 + l] = acc[l];
}

template <typename T>
void conv_plane(T* __restrict out, const T* __restrict xp, const T* __restrict wk, const PlaneGeom& g, T init,
                bool accumulate) {
  constexpr int L = lanes<T>();
  if (g.sw == 1 && g.sh == 1 && g.OW < L && 2 * g.OW >= L) {
    // rows of 2 to 4 vectors: two rows at a time, two vectors each, the
    // second block of a row overlapping the first
    for (int64_t oh = 0; oh < g.OH; oh += 2) {
      const int rows = int(std::min<int64_t>(2, g.OH - oh));
      const T* xr = xp + oh * g.Wp;
      conv_block2_s1(out + oh * g.OW, g.OW, xr, wk, g, 0, 0, rows, init, accumulate);
      if (2 * g.OW > L)
        conv_block2_s1(out + oh * g.OW, g.OW, xr, wk, g, g.OW - L / 2, L - g.OW, rows, init, accumulate);
    }
    return;
  }
  if (g.sw == 1 && g.sh == 1 && 2 * g.OW < L && 4 * g.OW >= L) {
    // rows of 1 to 2 vectors: four at a time. Alternated in one process at 1
    // thread against the 1-vector blocks one row at a time, 2 runs: AVX2
    // 8x256x14x14 3x3 1.63-1.69 -> 0.30 ms, 8x512x10x10 1.48-1.55 -> 0.44-0.45;
    // the portable build 1.41-1.42 -> 0.79-0.82 and 1.33-1.36 -> 1.18-1.23
    conv_rows4_s1(out, xp, wk, g, init, accumulate);
    return;
  }
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    T* orow = out + oh * g.OW;
    const T* xr = xp + oh * g.sh * g.Wp;
    int64_t ow = 0;
    if (g.sw == 1 && g.OW >= L) {
      for (; ow + L <= g.OW; ow += L) conv_block_s1(orow, xr, wk, g, ow, 0, init, accumulate);
      if (ow < g.OW) {  // last block overlaps the previous one; only its new lanes are stored
        conv_block_s1(orow, xr, wk, g, g.OW - L, ow - (g.OW - L), init, accumulate);
        ow = g.OW;
      }
    }
    for (; ow + L / 4 <= g.OW; ow += L / 4) conv_block<T, L / 4>(orow, xr, wk, g, ow, init, accumulate);
    for (; ow < g.OW; ++ow) conv_block<T, 1>(orow, xr, wk, g, ow, init, accumulate);
  }
}

// sum_{oh, ow} dy[oh, ow] * xp[(oh*sh + kh*dh)*Wp + ow*sw + kw*dw] for every tap,
// added to out[kh*KW + kw]; L lane partial sums per tap, combined in a fixed order.
template <typename T>
void dot_plane(T* __restrict out, const T* __restrict dy, const T* __restrict xp, const PlaneGeom& g) {
  constexpr int L = lanes<T>() / 4;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      T acc[L] = {};
      T tail = 0;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const T* a = dy + oh * g.OW;
        const T* s = xp + (oh * g.sh + kh * g.dh) * g.Wp + kw * g.dw;
        int64_t ow = 0;
        if (g.sw == 1) {
          for (; ow + L <= g.OW; ow += L)
            for (int l = 0; l < L; ++l) acc[l] += a[ow + l] * s[ow + l];
        } else {
          for (; ow + L <= g.OW; ow += L)
            for (int l = 0; l < L; ++l) acc[l] += a[ow + l] * s[(ow + l) * g.sw];
        }
        for (; ow < g.OW; ++ow) tail += a[ow] * s[ow * g.sw];
      }
      for (int width = L / 2; width >= 1; width /= 2)
        for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
      out[kh * g.KW + kw] += acc[0] + tail;
    }
}

// 3x3, stride 1: all nine taps in one pass over dy, nine vector accumulators
// in registers; rows of x are read at their three shifts.
template <typename T>
void dot_plane_3x3s1(T* __restrict out, const T* __restrict dy, const T* __restrict xp, const PlaneGeom& g) {
  // 256-bit vectors in every build: the columns past the last whole vector go
  // one at a time (with 512-bit ones, 8 of a 56-wide row: 8x64x56x56's
  // weight gradient 0.57 -> 0.89 ms)
  using V = Vec<T, 32>;
  constexpr int n = V::n;
  typename V::type acc[9];
  for (int t = 0; t < 9; ++t) acc[t] = V::splat(T(0));
  T tail[9] = {};
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* a = dy + oh * g.OW;
    const T* r0 = xp + oh * g.sh * g.Wp;
    const T* r1 = r0 + g.dh * g.Wp;
    const T* r2 = r1 + g.dh * g.Wp;
    int64_t ow = 0;
    for (; ow + n <= g.OW; ow += n) {
      const typename V::type av = V::load(a + ow);
#pragma GCC unroll 3
      for (int kw = 0; kw < 3; ++kw) {
        acc[kw] += av * V::load(r0 + ow + kw * g.dw);
        acc[3 + kw] += av * V::load(r1 + ow + kw * g.dw);
        acc[6 + kw] += av * V::load(r2 + ow + kw * g.dw);
      }
    }
    for (; ow < g.OW; ++ow)
      for (int kw = 0; kw < 3; ++kw) {
        tail[kw] += a[ow] * r0[ow + kw * g.dw];
        tail[3 + kw] += a[ow] * r1[ow + kw * g.dw];
        tail[6 + kw] += a[ow] * r2[ow + kw * g.dw];
      }
  }
  for (int t = 0; t < 9; ++t) {
    T lane[n];
    V::store(lane, acc[t]);
    for (int width = n / 2; width >= 1; width /= 2)
      for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
    out[t] += lane[0] + tail[t];
  }
}

PlaneGeom forward_geom(const Conv2dParams& p) {
  PlaneGeom g{p.OH, p.OW, p.KH, p.KW, p.stride_h, p.stride_w, p.dil_h, p.dil_w, 0, 0};
  g.Hp = (p.OH - 1) * p.stride_h + (p.KH - 1) * p.dil_h + 1;
  g.Wp = (p.OW - 1) * p.stride_w + (p.KW - 1) * p.dil_w + 1;
  return g;
}

template <typename T>
void forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, P = p.P(), OCg = p.OCg(), KK = p.KH * p.KW;
  const PlaneGeom g = forward_geom(p);
  const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * P * KK, planes);
  Buffer<T> scratch(checked_mul(nt, g.Hp * g.Wp, "depthwise padded plane"));
  parallel_for(planes, nt, [&](int64_t t, int tid) {
    const int64_t n = t / p.C, c = t - n * p.C;
    T* xp = scratch.data() + tid * g.Hp * g.Wp;
    pad_plane(xp, x + t * HW, p.H, p.W, p.pad_t, p.pad_l, g.Hp, g.Wp);
    for (int64_t m = 0; m < OCg; ++m) {
      const int64_t o = c * OCg + m;
      conv_plane(y + (n * p.OC + o) * P, xp, w + o * KK, g, b ? b[o] : T(0), false);
    }
  });
}

template <typename T>
void backward_data(T* dx, const T* dy, const T* w, const Conv2dParams& p) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, P = p.P(), OCg = p.OCg(), KK = p.KH * p.KW;
  const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * P * KK, planes);
  if (p.stride_h == 1 && p.stride_w == 1) {
    // dx = sum over the channel's outputs of dy convolved with the flipped kernel
    PlaneGeom g{p.H, p.W, p.KH, p.KW, 1, 1, p.dil_h, p.dil_w, 0, 0};
    g.Hp = p.H + (p.KH - 1) * p.dil_h;
    g.Wp = p.W + (p.KW - 1) * p.dil_w;
    const int64_t pt = (p.KH - 1) * p.dil_h - p.pad_t, pl = (p.KW - 1) * p.dil_w - p.pad_l;
    Buffer<T> flipped(checked_mul(p.OC, KK, "depthwise flipped weight"));
    for (int64_t o = 0; o < p.OC; ++o)
      for (int64_t k = 0; k < KK; ++k) flipped[o * KK + k] = w[o * KK + (KK - 1 - k)];
    Buffer<T> scratch(checked_mul(nt, g.Hp * g.Wp, "depthwise padded plane"));
    parallel_for(planes, nt, [&](int64_t t, int tid) {
      const int64_t n = t / p.C, c = t - n * p.C;
      T* yp = scratch.data() + tid * g.Hp * g.Wp;
      for (int64_t m = 0; m < OCg; ++m) {
        const int64_t o = c * OCg + m;
        pad_plane(yp, dy + (n * p.OC + o) * P, p.OH, p.OW, pt, pl, g.Hp, g.Wp);
        conv_plane(dx + t * HW, yp, flipped.data() + o * KK, g, T(0), m > 0);
      }
    });
    return;
  }
  // strided: scatter into a padded dx plane, then crop
  const PlaneGeom g = forward_geom(p);
  Buffer<T> scratch(checked_mul(nt, g.Hp * g.Wp, "depthwise padded plane"));
  parallel_for(planes, nt, [&](int64_t t, int tid) {
    const int64_t n = t / p.C, c = t - n * p.C;
    T* xp = scratch.data() + tid * g.Hp * g.Wp;
    std::fill(xp, xp + g.Hp * g.Wp, T(0));
    for (int64_t m = 0; m < OCg; ++m) {
      const int64_t o = c * OCg + m;
      const T* yp = dy + (n * p.OC + o) * P;
      const T* wk = w + o * KK;
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        const T* __restrict yr = yp + oh * p.OW;
        for (int64_t kh = 0; kh < p.KH; ++kh)
          for (int64_t kw = 0; kw < p.KW; ++kw) {
            T* __restrict d = xp + (oh * p.stride_h + kh * p.dil_h) * g.Wp + kw * p.dil_w;
            const T wv = wk[kh * p.KW + kw];
            for (int64_t ow = 0; ow < p.OW; ++ow) d[ow * p.stride_w] += wv * yr[ow];
          }
      }
    }
    T* out = dx + t * HW;
    for (int64_t ih = 0; ih < p.H; ++ih) {
      const int64_t r = ih + p.pad_t;
      T* orow = out + ih * p.W;
      for (int64_t iw = 0; iw < p.W; ++iw) {
        const int64_t q = iw + p.pad_l;
        orow[iw] = (r < g.Hp && q < g.Wp) ? xp[r * g.Wp + q] : T(0);
      }
    }
  });
}

template <typename T>
void backward_weight(T* dw, const T* dy, const T* x, const Conv2dParams& p) {
  const int64_t HW = p.H * p.W, P = p.P(), OCg = p.OCg(), KK = p.KH * p.KW;
  const PlaneGeom g = forward_geom(p);
  const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * P * KK, p.OC);
  Buffer<T> scratch(checked_mul(nt, g.Hp * g.Wp, "depthwise padded plane"));
  parallel_for(p.OC, nt, [&](int64_t o, int tid) {
    const int64_t c = o / OCg;
    T* xp = scratch.data() + tid * g.Hp * g.Wp;
    T* out = dw + o * KK;
    std::fill(out, out + KK, T(0));
    for (int64_t n = 0; n < p.N; ++n) {
      pad_plane(xp, x + (n * p.C + c) * HW, p.H, p.W, p.pad_t, p.pad_l, g.Hp, g.Wp);
      if (p.KH == 3 && p.KW == 3 && p.stride_w == 1)
        dot_plane_3x3s1(out, dy + (n * p.OC + o) * P, xp, g);
      else
        dot_plane(out, dy + (n * p.OC + o) * P, xp, g);
    }
  });
}

}  // namespace

extern const DepthwiseKernels kTable;
const DepthwiseKernels kTable = {
    forward<float>, backward_data<float>, backward_weight<float>,
    forward<double>, backward_data<double>, backward_weight<double>,
};

}  // namespace FASTCONV_DW_NS
}  // namespace fastconv
