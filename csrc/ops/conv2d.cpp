// conv2d: cross-correlation with stride, per-side padding, dilation, groups.
//
//   y[n, o, oh, ow] = b[o] + sum_{c, kh, kw} w[o, c, kh, kw] * x[n, g*Cg + c, ih, iw]
//       ih = oh*sh + kh*dh - pt,  iw = ow*sw + kw*dw - pl,  g = o / OCg,  x = 0 outside
//
//   dx[n, g*Cg + c, ih, iw] = sum_{o in g, kh, kw, (oh, ow) hitting (ih, iw)} w[o, c, kh, kw] * dy[n, o, oh, ow]
//   dw[o, c, kh, kw]        = sum_{n, oh, ow} dy[n, o, oh, ow] * x[n, g*Cg + c, ih, iw]
//   db[o]                   = sum_{n, oh, ow} dy[n, o, oh, ow]
//
// Layouts: x (N, C, H, W), w (OC, Cg, KH, KW), y / dy (N, OC, OH, OW), all
// C-contiguous. Per group the convolution is a GEMM on the implicit im2col
// matrix X_col (Kg = Cg*KH*KW rows, N*OH*OW columns; see im2col.h):
//
//   forward          Y_g  (OCg x N*P) = W_g (OCg x Kg) * X_col
//                    A = W_g prepacked once per call; B~ panels packed straight
//                    from input windows (no im2col buffer); the batch is folded
//                    into the columns so small images still give both cores work.
//                    Parallel over (group, row block, column block) tiles.
//   backward data    dX_col (Kg x P) = W_g^T * dY_g, per image, in blocks of a few
//                    channels; each block is scattered back (col2im) at once.
//                    Parallel over (image, group, channel block): disjoint dx.
//   backward weight  dW_g (OCg x Kg) = dY_g (OCg x N*P) * X_col^T. The reduction
//                    over images is cut into a fixed number of chunks (set by the
//                    shape, never by the thread count), each into its own partial
//                    dW, summed in chunk order: bitwise identical for any thread count.
//
// Stride-1 float32 3x3 convolutions with enough channels and tiles run as
// Winograd F(2x2, 3x3) (winograd_impl.h; 5x5 too when asked for); other
// stride-1 convolutions run as a direct GEMM reading the input in place
// (conv2d_direct.cpp); depthwise-style groups (one input channel per group)
// have their own row kernels (depthwise.cpp): a 1-row GEMM would waste most
// of each register tile.
#include "ops/conv2d.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "common/buffer.h"
#include "common/check.h"
#include "common/parallel.h"
#include "common/reduce.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/gemm.h"
#include "ops/conv2d_direct.h"
#include "ops/depthwise.h"
#include "ops/im2col.h"
#include "ops/weight_pack.h"
#include "ops/winograd.h"

namespace fastconv {

// ---------------------------------------------------------------------------
// algorithm choice (a process-wide override, for tests and benchmarks)

namespace {
std::atomic<int> g_algorithm{int(ConvAlgorithm::automatic)};
}
ConvAlgorithm conv2d_algorithm() { return ConvAlgorithm(g_algorithm.load(std::memory_order_relaxed)); }
void set_conv2d_algorithm(ConvAlgorithm a) { g_algorithm.store(int(a), std::memory_order_relaxed); }

// ---------------------------------------------------------------------------
// parameters

Conv2dParams make_conv2d_params(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, int64_t bias_len,
                                int64_t stride_h, int64_t stride_w, int64_t pad_t, int64_t pad_b, int64_t pad_l,
                                int64_t pad_r, int64_t dil_h, int64_t dil_w, int64_t groups) {
  if (xs.size() != 4) value_error("conv2d: input must be 4-D (N, C, H, W), got shape ", shape_str(xs));
  if (ws.size() != 4)
    value_error("conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape ", shape_str(ws));
  Conv2dParams p{};
  p.N = xs[0]; p.C = xs[1]; p.H = xs[2]; p.W = xs[3];
  p.OC = ws[0]; p.KH = ws[2]; p.KW = ws[3];
  p.G = groups;
  p.stride_h = stride_h; p.stride_w = stride_w;
  p.pad_t = pad_t; p.pad_b = pad_b; p.pad_l = pad_l; p.pad_r = pad_r;
  p.dil_h = dil_h; p.dil_w = dil_w;
  // built only when an error is raised (this runs on every call)
  const auto shapes = [&] { return cat("input shape ", shape_str(xs), ", weight shape ", shape_str(ws)); };
  for (int64_t d : xs)
    if (d < 0) value_error("conv2d: negative dimension in ", shapes());
  for (int64_t d : ws)
    if (d < 0) value_error("conv2d: negative dimension in ", shapes());
  if (groups < 1) value_error("conv2d: groups must be a positive integer, got ", groups);
  if (stride_h < 1 || stride_w < 1)
    value_error("conv2d: stride must be positive, got (", stride_h, ", ", stride_w, ")");
  if (dil_h < 1 || dil_w < 1) value_error("conv2d: dilation must be positive, got (", dil_h, ", ", dil_w, ")");
  if (pad_t < 0 || pad_b < 0 || pad_l < 0 || pad_r < 0)
    value_error("conv2d: padding must be non-negative, got (top ", pad_t, ", bottom ", pad_b, ", left ", pad_l,
                ", right ", pad_r, ")");
  if (p.C == 0 || p.H == 0 || p.W == 0)
    value_error("conv2d: input must have non-zero channels, height and width, got ", shape_str(xs));
  if (p.KH == 0 || p.KW == 0) value_error("conv2d: kernel size must be positive; ", shapes());
  if (p.C % groups != 0)
    value_error("conv2d: input channels (", p.C, ") must be divisible by groups (", groups, "); ", shapes());
  if (p.OC % groups != 0)
    value_error("conv2d: weight out_channels (", p.OC, ") must be divisible by groups (", groups, "); ", shapes());
  if (ws[1] != p.C / groups)
    value_error("conv2d: weight expects ", ws[1], " input channels per group, but input has ", p.C,
                " channels with groups=", groups, " (", p.C / groups, " per group); ", shapes());
  if (bias_len >= 0 && bias_len != p.OC)
    value_error("conv2d: bias must have shape (", p.OC, ",) to match weight out_channels, got (", bias_len, ",)");
  // effective kernel extent vs padded input (checked, as users can pass huge values)
  const int64_t eff_h = checked_add(checked_mul(dil_h, p.KH - 1, "conv2d kernel extent"), 1, "conv2d kernel extent");
  const int64_t eff_w = checked_add(checked_mul(dil_w, p.KW - 1, "conv2d kernel extent"), 1, "conv2d kernel extent");
  const int64_t ph = checked_add(checked_add(p.H, pad_t, "conv2d padded height"), pad_b, "conv2d padded height");
  const int64_t pw = checked_add(checked_add(p.W, pad_l, "conv2d padded width"), pad_r, "conv2d padded width");
  if (eff_h > ph || eff_w > pw)
    value_error("conv2d: kernel (", p.KH, ", ", p.KW, ") with dilation (", dil_h, ", ", dil_w,
                ") spans (", eff_h, ", ", eff_w, "), larger than the padded input (", ph, ", ", pw, "); ", shapes());
  p.OH = (ph - eff_h) / stride_h + 1;
  p.OW = (pw - eff_w) / stride_w + 1;
  // every size the kernels index with must fit in int64
  checked_numel({p.N, p.OC, p.OH, p.OW}, "conv2d output");
  checked_numel({p.N, p.C, p.H, p.W}, "conv2d input");
  checked_numel({p.OC, p.Cg(), p.KH, p.KW}, "conv2d weight");
  checked_numel({p.G, p.OCg() + 64, p.Cg(), p.KH, p.KW}, "conv2d packed weight");
  return p;
}

namespace {

// True when no element is Inf or NaN: x * 0 is 0 for finite x and NaN otherwise;
// eight lanes of sums (vectorisable without reassociation), checked per block.
template <typename T>
bool all_finite(const T* x, int64_t n) {
  constexpr int64_t kBlock = 4096;
  std::atomic<bool> ok{true};
  parallel_for(ceil_div(n, kBlock), threads_for_flops(double(n) / 4, ceil_div(n, kBlock)), [&](int64_t b, int) {
    if (!ok.load(std::memory_order_relaxed)) return;
    const int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8)
      for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * T(0);
    T s = 0;
    for (int l = 0; l < 8; ++l) s += acc[l];
    for (; i < i1; ++i) s += x[i] * T(0);
    if (s != T(0)) ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}

// ---------------------------------------------------------------------------
// GEMM adapters

// B~ for the forward pass: rows k of X_col, columns j folded over the batch.
template <typename T>
struct BIm2colFwd {
  const Im2colGeom* g;
  const Im2colRow* rows;
  const T* xg;  // x + c0*H*W: channel 0 of the group in image 0
  int NR;
  void pack(int64_t p0, int64_t kb, int64_t j0, int64_t nb, T* buf) const {
    const int64_t npad = round_up(nb, NR);
    for (int64_t kk = 0; kk < kb; ++kk) {
      T* dk = buf + kk * NR;
      // column t of the block lands in panel t/NR, lane t%NR
      auto zero = [&](int64_t t, int64_t cnt) {
        while (cnt > 0) {
          const int64_t q = t / NR, lane = t - q * NR, m = std::min<int64_t>(cnt, NR - lane);
          std::fill_n(dk + q * NR * kb + lane, m, T(0));
          t += m;
          cnt -= m;
        }
      };
      auto run = [&](int64_t t, int64_t cnt, int64_t idx, int64_t s) {
        while (cnt > 0) {
          const int64_t q = t / NR, lane = t - q * NR, m = std::min<int64_t>(cnt, NR - lane);
          T* d = dk + q * NR * kb + lane;
          const T* src = xg + idx;
          if (s == 1)
            std::memcpy(d, src, sizeof(T) * m);
          else if (s == 2)  // the common strided case, with a constant stride the compiler can vectorise
            for (int64_t i = 0; i < m; ++i) d[i] = src[2 * i];
          else
            for (int64_t i = 0; i < m; ++i) d[i] = src[i * s];
          t += m;
          cnt -= m;
          idx += m * s;
        }
      };
      walk_row(*g, rows[p0 + kk], j0, nb, zero, run);
      zero(nb, npad - nb);
    }
  }
};

// Where forward tiles land: C(i, j) = y[n, o0 + i, p] with j = n*P + p.
template <typename T>
struct CConvOut {
  T* y;
  int64_t OC, P, o0;
  const T* bias;  // bias + o0, or null
  int NR;
  T* tile(int64_t i, int64_t j, int64_t& ldc) const {
    const int64_t n = j / P, p = j - n * P;
    if (p + NR > P) return nullptr;  // the tile crosses into the next image
    ldc = P;
    return y + (n * OC + o0 + i) * P + p;
  }
  void scatter(int64_t i, int64_t j, int mr, int nr, const T* t, int64_t ldt, bool acc) const {
    int64_t n = j / P, p = j - n * P;
    for (int c = 0; c < nr; ++c) {
      T* col = y + (n * OC + o0 + i) * P + p;
      if (acc)
        for (int r = 0; r < mr; ++r) col[r * P] += t[r * ldt + c];
      else
        for (int r = 0; r < mr; ++r) col[r * P] = t[r * ldt + c];
      if (++p == P) {
        p = 0;
        ++n;
      }
    }
  }
  void finish(int64_t i0, int64_t i1, int64_t j, int64_t nb) const {
    if (!bias) return;
    while (nb > 0) {
      const int64_t n = j / P, p = j - n * P, cnt = std::min(nb, P - p);
      for (int64_t i = i0; i < i1; ++i) {
        T* row = y + (n * OC + o0 + i) * P + p;
        const T bv = bias[i];
        for (int64_t q = 0; q < cnt; ++q) row[q] += bv;
      }
      j += cnt;
      nb -= cnt;
    }
  }
};

// A~ panels of a row block [i0, i0 + M) packed ahead (pack_a_strided per KC
// slice of kc, at base + Mpad*p + ((i - i0)/MR)*MR*kb), shared by every call.
template <typename T>
struct AChunk {
  const T* base;
  int64_t i0, Mpad;
  int MR;
  const T* block(int64_t i, int64_t, int64_t p, int64_t kb, T*) const {
    return base + Mpad * p + (i - i0) / MR * MR * kb;
  }
};

// C(i, j) = buf[(i - i0) * ldc + (j - j0)]: a scratch block with its own origin.
template <typename T>
struct CBlock {
  T* buf;
  int64_t ldc, i0, j0;
  T* tile(int64_t i, int64_t j, int64_t& ld) const {
    ld = ldc;
    return buf + (i - i0) * ldc + (j - j0);
  }
  void scatter(int64_t i, int64_t j, int mr, int nr, const T* t, int64_t ldt, bool acc) const {
    for (int r = 0; r < mr; ++r) {
      T* c = buf + (i - i0 + r) * ldc + (j - j0);
      if (acc)
        for (int q = 0; q < nr; ++q) c[q] += t[r * ldt + q];
      else
        for (int q = 0; q < nr; ++q) c[q] = t[r * ldt + q];
    }
  }
  void finish(int64_t, int64_t, int64_t, int64_t) const {}
};

// A~ for backward weight: A(o, r) = dy[n, o0 + o, p] over the folded reduction
// index r = n*P + p (offset by r0 = first image of the chunk * P).
template <typename T>
struct ADyRows {
  const T* dy;
  int64_t OC, P, o0, r0;
  int MR;
  TransposeFn<T> transpose;
  const T* block(int64_t i, int64_t mb, int64_t p, int64_t kb, T* buf) const {
    for (int64_t q = 0; q * MR < mb; ++q) {
      T* d = buf + q * MR * kb;
      const int rows = int(std::min<int64_t>(MR, mb - q * MR));
      const int64_t o = o0 + i + q * MR;
      // the panel's rows are dy rows P apart within an image: one block transpose per image run
      int64_t j = r0 + p, t = 0;
      while (t < kb) {
        const int64_t n = j / P, pp = j - n * P, cnt = std::min(kb - t, P - pp);
        transpose(rows, cnt, dy + (n * OC + o) * P + pp, P, d + t * MR, MR);  // d[(t+s)*MR + rr] = dy row rr [pp+s]
        t += cnt;
        j += cnt;
      }
      for (int rr = rows; rr < MR; ++rr)
        for (int64_t k = 0; k < kb; ++k) d[k * MR + rr] = T(0);
    }
    return buf;
  }
};

// B~ for backward weight: B(r, k) = X_col[k][r0 + r] (X_col transposed).
// Per panel, the NR im2col rows are walked into a row-major scratch block
// (contiguous runs: plain copies), then turned into the k-major panel by the
// ISA's block transpose.
template <typename T>
struct BIm2colT {
  const Im2colGeom* g;
  const Im2colRow* rows;
  const T* xg;
  int64_t r0;
  int NR;
  TransposeFn<T> transpose;
  bool pointwise;  // 1x1, stride 1, no padding: im2col row c is channel c itself
  // From a padded copy of x, or (strided) its phase planes (xpad: the group's
  // channel 0 in image 0; rows of pWp, images pimg apart): column j of X_col^T
  // at an output row's run of positions is the contiguous run at xpad +
  // toffs[j] + (that row's origin), so a panel's NR columns for each run are
  // one copy_runs -- no walk, no padding tests, no strided gathers.
  const T* xpad = nullptr;
  int64_t pWp = 0, pimg = 0;
  const int64_t* toffs = nullptr;
  CopyRunsFn<T> copy_runs = nullptr;
  TransposeRunsFn<T> transpose_runs = nullptr;  // (where the ISA has one: no staging copy)
  void pack(int64_t p0, int64_t kb, int64_t j0, int64_t nb, T* buf) const {
    if (pointwise) {
      // NR channels x a run of positions inside one image: one block transpose, no walk
      for (int64_t q = 0; q * NR < nb; ++q) {
        const int64_t cols = std::min<int64_t>(NR, nb - q * NR);
        T* d = buf + q * NR * kb;
        int64_t j = r0 + p0, t = 0;
        while (t < kb) {
          const int64_t n = j / g->P, pp = j - n * g->P, cnt = std::min(kb - t, g->P - pp);
          transpose(cols, cnt, xg + n * g->CHW + (j0 + q * NR) * g->HW + pp, g->HW, d + t * NR, NR);
          t += cnt;
          j += cnt;
        }
        for (int64_t c = cols; c < NR; ++c)
          for (int64_t k = 0; k < kb; ++k) d[k * NR + c] = T(0);
      }
      return;
    }
    thread_local std::vector<T> scratch;
    if (scratch.size() < size_t(NR * kb)) scratch.resize(size_t(NR * kb));
    T* tmp = scratch.data();
    if (xpad) {
      // f(t, cnt, src): the slice's runs of positions along output rows, run
      // position t of the slice from src + toffs[j] for column j
      auto runs = [&](auto&& f) {
        int64_t j = r0 + p0, t = 0;
        int64_t n = j / g->P, rem = j - n * g->P, oh = rem / g->OW, ow = rem - oh * g->OW;
        while (t < kb) {
          const int64_t cnt = std::min<int64_t>({g->OW - ow, kb - t, int64_t(NR)});
          f(t, cnt, xpad + n * pimg + oh * pWp + ow);
          t += cnt;
          if ((ow += cnt) == g->OW) {
            ow = 0;
            if (++oh == g->OH) {
              oh = 0;
              ++n;
            }
          }
        }
      };
      for (int64_t q = 0; q * NR < nb; ++q) {
        const int64_t cols = std::min<int64_t>(NR, nb - q * NR);
        const int64_t* offs = toffs + j0 + q * NR;
        T* panel = buf + q * NR * kb;
        // Where the ISA has transpose_runs, each run's NR columns go transposed
        // straight into the panel, with no staging copy. Alternated in one
        // process against copy_runs + transpose, 1 thread, 2 runs: AlexNet
        // conv1's weight gradient 0.761-0.762 -> 0.715-0.720 ms, conv2's
        // 1.916-1.922 -> 1.871-1.886, 8x64x32x32 3x3/2's 1.449-1.490 ->
        // 1.410-1.463, 1x256x8x8's 0.348-0.359 -> 0.342-0.355.
        if (transpose_runs) {
          runs([&](int64_t t, int64_t cnt, const T* src) { transpose_runs(cols, NR, cnt, src, offs, panel + t * NR, NR); });
          continue;
        }
        runs([&](int64_t t, int64_t cnt, const T* src) { copy_runs(cols, src, offs, cnt, tmp + t, kb); });
        for (int64_t c = cols; c < NR; ++c) std::fill(tmp + c * kb, tmp + (c + 1) * kb, T(0));
        transpose(NR, kb, tmp, kb, panel, NR);  // panel[t*NR + c] = tmp[c*kb + t]
      }
      return;
    }
    if (g->sw != 1) {
      // strided rows: each column written straight into its panel lane (a scalar
      // gather either way; staging it for the transpose would only add a pass)
      for (int64_t jj = 0; jj < round_up(nb, NR); ++jj) {
        T* d = buf + (jj / NR) * NR * kb + (jj % NR);  // element t at d[t*NR]
        if (jj >= nb) {
          for (int64_t t = 0; t < kb; ++t) d[t * NR] = T(0);
          continue;
        }
        auto zero = [&](int64_t t, int64_t cnt) {
          for (int64_t s = 0; s < cnt; ++s) d[(t + s) * NR] = T(0);
        };
        auto run = [&](int64_t t, int64_t cnt, int64_t idx, int64_t st) {
          const T* src = xg + idx;
          for (int64_t s = 0; s < cnt; ++s) d[(t + s) * NR] = src[s * st];
        };
        walk_row(*g, rows[j0 + jj], r0 + p0, kb, zero, run);
      }
      return;
    }
    for (int64_t q = 0; q * NR < nb; ++q) {
      const int64_t cols = std::min<int64_t>(NR, nb - q * NR);
      for (int64_t c = 0; c < NR; ++c) {
        T* d = tmp + c * kb;
        if (c >= cols) {
          std::fill(d, d + kb, T(0));
          continue;
        }
        auto zero = [&](int64_t t, int64_t cnt) { std::fill(d + t, d + t + cnt, T(0)); };
        auto run = [&](int64_t t, int64_t cnt, int64_t idx, int64_t st) {
          const T* src = xg + idx;
          if (st == 1)
            std::memcpy(d + t, src, sizeof(T) * size_t(cnt));
          else
            for (int64_t s = 0; s < cnt; ++s) d[t + s] = src[s * st];
        };
        walk_row(*g, rows[j0 + q * NR + c], r0 + p0, kb, zero, run);
      }
      transpose(NR, kb, tmp, kb, buf + q * NR * kb, NR);  // buf[t*NR + c] = tmp[c*kb + t]
    }
  }
};

template <typename T>
void fill_parallel(T* p, int64_t n, T v) {
  const int64_t chunk = 1 << 16;
  const int64_t tasks = ceil_div(n, chunk);
  parallel_for(tasks, threads_for_flops(double(n), tasks), [&](int64_t t, int) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    std::fill(p + b, p + e, v);
  });
}

// Whether this call takes the Winograd path, per the algorithm setting
// (weight_grad: the weight gradient's own threshold).
bool takes_winograd(const Conv2dParams& p, bool weight_grad = false) {
  switch (conv2d_algorithm()) {
    case ConvAlgorithm::automatic:
      return weight_grad ? conv2d_winograd_weight_grad_preferred(p) : conv2d_winograd_preferred(p);
    case ConvAlgorithm::winograd:
      return weight_grad ? conv2d_winograd_weight_grad_applies(p) : conv2d_winograd_applies(p, true);
    default: return false;
  }
}

// y by Winograd (F(2x2, 3x3), or F(2x2, 5x5) when forced) where this call
// takes that path (float32 only);
// false where it does not, or where an input failed its bound.
bool winograd_forward(float* y, const float* x, const float* w, const float* b, const Conv2dParams& p,
                      ConvWeightPack<float>* pack, bool flipped = false) {
  return takes_winograd(p) && conv2d_winograd_forward(y, x, w, b, p, pack, flipped);
}
template <typename T>
bool winograd_forward(T*, const T*, const T*, const T*, const Conv2dParams&, ConvWeightPack<T>*, bool = false) {
  return false;
}

// dw by Winograd where this call takes that path (float32 only), as above.
bool winograd_backward_weight(float* dw, const float* dy, const float* x, const Conv2dParams& p) {
  return takes_winograd(p, true) && conv2d_winograd_backward_weight(dw, dy, x, p);
}
template <typename T>
bool winograd_backward_weight(T*, const T*, const T*, const Conv2dParams&) {
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------
// entry points

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p, ConvWeightPack<T>* pack) {
  if (p.N == 0 || p.OC == 0) return;
  if (depthwise_kernels_apply(p)) return depthwise_forward(y, x, w, b, p);
  if (winograd_forward(y, x, w, b, p, pack)) return;  // (when it fails its bound, y is recomputed below)
  if (conv2d_direct_forward_applies(p) && conv2d_algorithm() != ConvAlgorithm::im2col)
    return conv2d_direct_forward(y, x, w, b, p, pack);
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  const int64_t M = p.OCg(), K = p.Kg(), J = p.N * p.P();
  // A: every group's weight matrix packed once, shared by all tasks
  const int64_t asz = prepacked_a_size(M, K, kr);
  Buffer<T> apacked;
  const T* apanels;
  if (pack && pack->matches(w, p.G, M, K)) {
    apanels = pack->panels(kr, int64_t(kr.kc));
  } else {
    apacked.reset(checked_mul(p.G, asz, "conv2d packed weight"), "conv2d packed weight");
    prepack_a_groups(apacked.data(), w, p.G, M, K, kr, int64_t(kr.kc));
    apanels = apacked.data();
  }

  const TileSplit s = split_tiles(M, J, kr.mr, kr.nr, kr.nc, p.G, num_threads());
  const int64_t tasks = checked_mul(p.G, s.tasks(), "conv2d tasks");
  const int nt = threads_for_flops(2.0 * double(p.OC) * K * J, tasks);
  const int64_t sb = gemm_scratch_b(kr, s.nblock);
  Buffer<T> scratch(checked_mul(nt, sb, "conv2d scratch"));
  const Im2colGeom geom = make_im2col_geom(p);
  const std::vector<Im2colRow> rows = make_im2col_rows(p);

  const bool m_outer = s.rows_outer(M, kr.mr, J, kr.nr, p.G, nt);
  parallel_for(tasks, nt, [&](int64_t t, int tid) {
    const int64_t g = t % p.G, rest = t / p.G;
    int64_t mi, ni, i0, i1, j0, j1;
    s.task(rest, m_outer, mi, ni);
    s.m_range(mi, M, kr.mr, i0, i1);
    s.n_range(ni, J, kr.nr, j0, j1);
    APrepacked<T> ap{apanels + g * asz, round_up(M, kr.mr), kr.mr};
    BIm2colFwd<T> bp{&geom, rows.data(), x + g * p.Cg() * p.H * p.W, kr.nr};
    CConvOut<T> cm{y, p.OC, p.P(), g * M, b ? b + g * M : nullptr, kr.nr};
    gemm_macro(kr, i0, i1, j0, j1, K, ap, bp, cm, static_cast<T*>(nullptr), scratch.data() + tid * sb);
  });
}

template <typename T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dParams& p) {
  if (p.N == 0) return;
  const int64_t HW = p.H * p.W, P = p.P();
  if (p.OC == 0) return fill_parallel(dx, p.N * p.C * HW, T(0));
  if (depthwise_kernels_apply(p)) return depthwise_backward_data(dx, dy, w, p);
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  // The direct form computes Cg output channels in MR-row panels: with few
  // input channels most rows are padding (LeNet's C = 1 uses 1 of AVX-512's 12),
  // and the GEMM + col2im below wins. Alternated in one process at 1 thread on
  // AVX-512 and AVX2 (C = 1 .. 32, 3x3 and 5x5): the GEMM 2.4x faster at C = 1,
  // 2.0x at C = 3, even to 1.26x with half the rows used; the direct form
  // 1.2-1.5x faster from three quarters up.
  const bool rows_fill = 2 * p.Cg() > round_up(p.Cg(), int64_t(kr.mr));
  if (conv2d_direct_applies(p) && conv2d_algorithm() != ConvAlgorithm::im2col) {
    // Stride 1: dx is the direct convolution of dy with the flipped, transposed
    // weights, w'[g*Cg + c, o, kh, kw] = w[g*OCg + o, c, KH-1-kh, KW-1-kw], padded by
    // the kernel extent minus the forward padding (negative = crop). The direct
    // forward packs w' straight from w (flipped). Against the flip written out
    // first and then packed, alternated in one process: AlexNet conv2's dx at
    // 1 thread 1.93-2.02 -> 1.91-1.97 ms (3 runs, 1.01-1.03x), at 2 threads
    // 1.04 -> 1.01; 1x64x32x32 3x3's 1.01x, 1x256x8x8's 1.00x (40 rounds, 2 runs).
    Conv2dParams q = p;
    q.C = p.OC; q.H = p.OH; q.W = p.OW;
    q.OC = p.C; q.OH = p.H; q.OW = p.W;
    q.pad_t = p.dil_h * (p.KH - 1) - p.pad_t;
    q.pad_b = p.dil_h * (p.KH - 1) - p.pad_b;
    q.pad_l = p.dil_w * (p.KW - 1) - p.pad_l;
    q.pad_r = p.dil_w * (p.KW - 1) - p.pad_r;
    // Winograd where this call takes it for that convolution (its pads KH-1-p >= 0)
    if (winograd_forward(dx, dy, w, static_cast<const T*>(nullptr), q, static_cast<ConvWeightPack<T>*>(nullptr), true))
      return;
    if (rows_fill)
      return conv2d_direct_forward(dx, dy, w, static_cast<const T*>(nullptr), q,
                                   static_cast<ConvWeightPack<T>*>(nullptr), true);
  }
  const int64_t Cg = p.Cg(), OCg = p.OCg(), KK = p.KH * p.KW, Kg = p.Kg();

  // "Pitch" form: dX_col is computed on a row pitch Wq -- dy widened to it with
  // zero junk columns -- so that each tap's col2im is one contiguous run into a
  // plane of the padded dx: with stride (sh, sw), tap (kh, kw) (extent eh =
  // kh*dil_h, ew = kw*dil_w) lands in the phase plane (eh % sh, ew % sw) of the
  // padded dx, at plane row eh / sh and column ew / sw plus the position j:
  //   dxq[c][phase][(eh/sh)*Wq + ew/sw + j] += dX_col[(c, kh, kw)][j]
  // (stride 1: one plane, the padded dx itself). Junk positions carry zeros.
  // Then dx is read back out of the phase planes. Instead of a run per output
  // row: LeNet's 10-wide rows had spent 63% of conv2's dx in that walk. The
  // walk stays for shapes whose phase planes would dwarf dx and dy.
  const int64_t sh = p.stride_h, sw = p.stride_w;
  const int64_t Hq = p.OH + p.dil_h * (p.KH - 1) / sh, Wq = p.OW + p.dil_w * (p.KW - 1) / sw;
  // (the phase count in double: two strides over 2**31 would overflow int64)
  const bool pitch = sw <= 8 && p.pad_t >= 0 && p.pad_l >= 0 &&
                     double(sh) * double(sw) * Hq * Wq <= 4.0 * (double(p.H) * p.W + double(P)) + 65536;
  const int64_t S = pitch ? sh * sw : 0;  // phase planes per channel (bounded by the test above); pitch form only
  const int64_t J = pitch ? (p.OH - 1) * Wq + p.OW : P;  // positions per image (pitch: the last row's junk left out)
  const int64_t Jimg = pitch ? p.OH * Wq : P;           // dy's per-channel stride
  Buffer<T> wide;
  const T* DY = dy;
  if (pitch && Wq != p.OW) {
    const int64_t rows = checked_mul(p.N, p.OC, "conv2d output gradient");
    wide.reset(checked_mul(rows, Jimg, "conv2d output gradient"), "conv2d output gradient");
    parallel_for(rows, threads_for_flops(16.0 * double(rows) * Jimg, rows), [&](int64_t r, int) {
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        T* d = wide.data() + r * Jimg + oh * Wq;
        std::memcpy(d, dy + r * P + oh * p.OW, sizeof(T) * size_t(p.OW));
        std::fill(d + p.OW, d + Wq, T(0));
      }
    });
    DY = wide.data();
  }
  if (!pitch) fill_parallel(dx, p.N * p.C * HW, T(0));

  // channels per GEMM block: ~256 rows of dX_col, at least one channel
  const int64_t cblk = std::max<int64_t>(1, std::min<int64_t>(Cg, 256 / KK));
  const int64_t nchunks = ceil_div(Cg, cblk);
  const int64_t pblk = std::min<int64_t>(round_up(J, kr.nr), 512);
  const int64_t tasks = checked_mul(checked_mul(p.N, p.G, "conv2d tasks"), nchunks, "conv2d tasks");
  const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * Kg * P, tasks);
  const int64_t ldt = round_up(pblk, kr.nr);
  const int64_t st = round_up(cblk * KK, kr.mr) * ldt;
  const int64_t sa = gemm_scratch_a(kr), sb = gemm_scratch_b(kr, pblk);
  // (pitch only: Hq * Wq is bounded by the pitch test above, and can overflow without it)
  const int64_t qplane = pitch ? Hq * Wq : 0, sp = pitch ? checked_mul(cblk * S, qplane, "conv2d padded input gradient") : 0;
  Buffer<T> scratch(checked_mul(nt, st + sa + sb + sp, "conv2d scratch"));
  const Im2colGeom geom = make_im2col_geom(p);
  const std::vector<Im2colRow> rows = make_im2col_rows(p);
  // A = w^T per group, each channel chunk's row panels packed once for all
  // images (packed per image and block, 4% of 8x64x32x32 3x3/2's dx in a perf
  // profile). The driver's row blocks (mc, a multiple of MR in every kernel
  // table) start on panel boundaries. Against
  // packing per call, 3 runs each at 1 thread: that dx 1.71-1.74 -> 1.68-1.69
  // ms; 32x3x32x32 -> 64 dx 1.04-1.08 -> 1.01 ms.
  const int64_t Mchunk = round_up(cblk * KK, kr.mr);  // rows of a chunk's panels (the last may use fewer)
  Buffer<T> apre(checked_mul(checked_mul(p.G * nchunks, Mchunk, "conv2d packed weight"), OCg, "conv2d packed weight"),
                 "conv2d packed weight");
  parallel_for(p.G * nchunks, threads_for_flops(16.0 * double(p.OC) * Kg, p.G * nchunks), [&](int64_t t, int) {
    const int64_t g = t / nchunks, ci = t - g * nchunks;
    const int64_t i0 = ci * cblk * KK, i1 = std::min(Cg, (ci + 1) * cblk) * KK, Mpad = round_up(i1 - i0, kr.mr);
    T* base = apre.data() + t * Mchunk * OCg;
    for (int64_t pc = 0; pc < OCg; pc += kr.kc) {
      const int64_t kb = std::min<int64_t>(kr.kc, OCg - pc);
      pack_a_strided(base + Mpad * pc, w + g * OCg * Kg, 1, Kg, i0, i1 - i0, pc, kb, kr.mr);
    }
  });

  parallel_for(tasks, nt, [&](int64_t t, int tid) {
    const int64_t ci = t % nchunks, rest = t / nchunks;
    const int64_t g = rest % p.G, n = rest / p.G;
    const int64_t i0 = ci * cblk * KK, i1 = std::min(Cg, (ci + 1) * cblk) * KK;
    T* tbuf = scratch.data() + tid * (st + sa + sb + sp);
    T* dxq = tbuf + st + sa + sb;  // pitch: this task's channels' phase planes
    if (pitch) std::fill(dxq, dxq + (i1 - i0) / KK * S * qplane, T(0));
    // A(k', o) = w[g*OCg + o, k'],  B(o, j) = dy[n, g*OCg + o, j]
    const AChunk<T> ap{apre.data() + (g * nchunks + ci) * Mchunk * OCg, i0, round_up(i1 - i0, kr.mr), kr.mr};
    BStrided<T> bp{DY + (n * p.OC + g * OCg) * Jimg, Jimg, 1, kr.nr};
    T* dxg = dx + g * Cg * HW;  // walk indices include n*C*H*W
    for (int64_t p0 = 0; p0 < J; p0 += pblk) {
      const int64_t pe = std::min(J, p0 + pblk);
      CBlock<T> cm{tbuf, ldt, i0, p0};
      gemm_macro(kr, i0, i1, p0, pe, OCg, ap, bp, cm, tbuf + st, tbuf + st + sa);
      for (int64_t k = i0; k < i1; ++k) {
        const T* src = tbuf + (k - i0) * ldt;
        if (pitch) {
          const int64_t c = k / KK - i0 / KK, eh = (k % KK) / p.KW * p.dil_h, ew = k % p.KW * p.dil_w;
          T* plane = dxq + (c * S + (eh % sh) * sw + ew % sw) * qplane;
          kr.add_to(pe - p0, src, plane + (eh / sh) * Wq + ew / sw + p0);
          continue;
        }
        auto zero = [](int64_t, int64_t) {};
        auto run = [&](int64_t t0, int64_t cnt, int64_t idx, int64_t s) {
          T* d = dxg + idx;
          for (int64_t q = 0; q < cnt; ++q) d[q * s] += src[t0 + q];
        };
        walk_row(geom, rows[k], n * P + p0, pe - p0, zero, run);
      }
    }
    if (!pitch) return;
    // dx[n, g*Cg + c][ih][iw] = padded element (r, q) = (ih + pad_t, iw + pad_l):
    // phase plane (r % sh, q % sw), row r / sh, column q / sw (zero past the
    // planes). Column phase b holds iw = iw0[b] + i*sw at v = v0[b] + i.
    int64_t iw0[8], v0[8], cnt[8], valid[8];
    for (int64_t b = 0; b < sw; ++b) {
      iw0[b] = ((b - p.pad_l) % sw + sw) % sw;
      v0[b] = (iw0[b] + p.pad_l) / sw;
      cnt[b] = iw0[b] < p.W ? ceil_div(p.W - iw0[b], sw) : 0;
      valid[b] = std::min(cnt[b], std::max<int64_t>(0, Wq - v0[b]));
    }
    for (int64_t c = 0; c < (i1 - i0) / KK; ++c) {
      T* out = dxg + (n * p.C + i0 / KK + c) * HW;
      for (int64_t ih = 0; ih < p.H; ++ih) {
        T* o = out + ih * p.W;
        const int64_t r = ih + p.pad_t, u = r / sh;
        if (u >= Hq) {
          std::fill(o, o + p.W, T(0));
          continue;
        }
        const T* row = dxq + (c * S + (r % sh) * sw) * qplane + u * Wq;  // phase b's row at + b*qplane
        int64_t done = 0;  // elements of each phase already out
        if (sw == 2 && iw0[0] + iw0[1] == 1) {
          // both column phases at once: o[2i] from the phase holding iw = 0, o[2i+1]
          // from the other (the ISA's interleave2 where it has one, else a loop the
          // compiler vectorises for the baseline ISA; the strided loop below had been
          // 7% of 8x64x32x32 3x3/2's dx in a perf profile, the baseline loop 9%)
          const int64_t e = iw0[0] == 0 ? 0 : 1;
          const T* s0 = row + e * qplane + v0[e];
          const T* s1 = row + (1 - e) * qplane + v0[1 - e];
          done = std::min(valid[0], valid[1]);
          if (kr.interleave2) {
            kr.interleave2(done, s0, s1, o);
          } else {
            for (int64_t i = 0; i < done; ++i) {
              o[2 * i] = s0[i];
              o[2 * i + 1] = s1[i];
            }
          }
        }
        for (int64_t b = 0; b < sw; ++b) {
          const T* src = row + b * qplane + v0[b];
          T* d = o + iw0[b];
          if (sw == 1) {
            std::memcpy(d, src, sizeof(T) * size_t(valid[b]));
          } else {
            for (int64_t i = done; i < valid[b]; ++i) d[i * sw] = src[i];
          }
          for (int64_t i = valid[b]; i < cnt[b]; ++i) d[i * sw] = T(0);
        }
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight(T* dw, T* db, const T* dy, const T* x, const Conv2dParams& p) {
  const int64_t P = p.P(), OCg = p.OCg(), Kg = p.Kg();
  if (db) {
    const double flops = double(p.N) * p.OC * P;
    parallel_for(p.OC, threads_for_flops(flops, p.OC), [&](int64_t o, int) {
      double acc = 0;
      for (int64_t n = 0; n < p.N; ++n) {
        acc += double(sum_lanes(dy + (n * p.OC + o) * P, P));
      }
      db[o] = T(acc);
    });
  }
  if (!dw || p.OC == 0) return;
  if (p.N == 0) return fill_parallel(dw, p.OC * Kg, T(0));
  if (depthwise_kernels_apply(p)) return depthwise_backward_weight(dw, dy, x, p);
  if (winograd_backward_weight(dw, dy, x, p)) return;
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());

  // Inner products along the Wp pitch win when each image gives long rows to
  // reduce over (>= ~1k positions) or the reduction K is too short for the
  // packed GEMM to amortise its packing; measured on the benchmark layers.
  // From 256 positions per image on, with several images, when the output
  // channels fill a gather tile (the transposed form): alternated in one
  // process at 1 / 2 threads, 32x128x16x16 3x3 1.21x / 1.32x faster than the
  // GEMM, 8x128x16x16 1.18x / 1.22x. Smaller images from 1024 positions in
  // all, since that form runs over valid positions only, a group of images
  // per kernel call (alternated in one process at 1 / 2 threads: 32x256x8x8
  // 11.33 -> 10.40 / 5.88 -> 5.32 ms, 16x256x8x8 5.56 -> 5.36 / 2.82 -> 2.68,
  // 64x512x4x4 25.8 -> 21.9 / 11.43 -> 11.38, 8x96x12x12 5x5 2.48 -> 2.18 /
  // 1.36 -> 1.14); below that the GEMM (4x256x8x8 1.38 against 1.58 ms,
  // 32x512x4x4 11.8 against 12.4, 8x512x4x4 2.7 against 4.1 at 1 thread), and
  // at batch 1 (AlexNet conv2, 833 positions: 0.94x / 0.96x).
  // The inner products (not the transposed form, which reads valid positions
  // only) also multiply the zero dy of junk columns with real inputs (the next
  // row's first pixels): exact only while every input is finite (0 * Inf is
  // NaN), so there an input holding Inf or NaN takes the GEMM path.
  const int64_t Wp = p.OW + p.dil_w * (p.KW - 1) / p.stride_w;  // the padded input's pitch (its phase planes')
  const bool long_rows = p.OH * Wp >= 1024;
  const bool fills_gather = 4 * OCg >= 3 * round_up(OCg, int64_t(kr.nr)) ||
                            (kr.ukernel_gather_narrow && 4 * OCg >= 3 * round_up(OCg, int64_t(kr.nr / 2)));
  const bool many_positions = p.N >= 2 && ((p.OH - 1) * Wp + p.OW >= 256 || p.N * P >= 1024);
  const bool mid_rows = many_positions && fills_gather;
  if (conv2d_direct_applies(p) && conv2d_algorithm() != ConvAlgorithm::im2col && (long_rows || mid_rows || Kg <= 160) &&
      (!conv2d_direct_backward_weight_reads_junk<T>(p) || all_finite(x, p.N * p.C * p.H * p.W)))
    return conv2d_direct_backward_weight(dw, dy, x, p);
  // Strided: the same gather form over the phase planes of x, where it has
  // the positions of mid_rows. Alternated in one process with the GEMM below,
  // 7 rounds, AMD Zen 4, 1 / 2 threads: AVX-512, 8x64x32x32 3x3/2 -> 128
  // 1.01-1.06x / 1.01-1.07x, 32x64x32x32 1.10x / 1.11x, 32x32x64x64 -> 64
  // 1.17x / 1.28x, 4x3x224x224 11x11/4 -> 64 1.15x / 1.14x, 16x16x32x32 -> 24
  // 1.01x / 1.00x; AVX2, the same five 1.27-1.48x / 1.27-1.48x.
  if (conv2d_algorithm() != ConvAlgorithm::im2col && many_positions && conv2d_direct_backward_weight_strided<T>(p))
    return conv2d_direct_backward_weight(dw, dy, x, p);

  const int64_t dw_size = p.OC * Kg;
  const int64_t R = weight_grad_chunks(p.N, dw_size), per = ceil_div(p.N, R);
  Buffer<T> partial(R > 1 ? checked_mul(R, dw_size, "conv2d weight-gradient partial sums") : 0);

  // Column blocks down to single panels before any row split: B~ is im2col
  // gathered (strided reads when strided), dearer than dy's rows -- AlexNet
  // conv1's weight gradient had packed B three times over at 2 threads and ran
  // slower than at 1. And one task per thread where there are columns enough:
  // each column block packs all of dy's rows (A~, transposed) again. Against
  // four per thread, alternated in one process at 2 threads, 2 runs: AlexNet
  // conv1's dW 0.468 -> 0.424 ms, conv2's 1.073-1.092 -> 1.009-1.035, 8x64x32x32
  // 3x3/2's 0.815-0.851 -> 0.760-0.809, 1x256x8x8's 0.207 -> 0.202.
  const TileSplit s = split_tiles(OCg, Kg, kr.mr, kr.nr, kr.nc, p.G * R, num_threads(), 1, 1);
  const int64_t tasks = checked_mul(p.G * R, s.tasks(), "conv2d tasks");
  const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * Kg * P, tasks);
  const int64_t sa = gemm_scratch_a(kr), sb = gemm_scratch_b(kr, s.nblock);
  Buffer<T> scratch(checked_mul(nt, sa + sb, "conv2d scratch"));
  const Im2colGeom geom = make_im2col_geom(p);
  const std::vector<Im2colRow> rows = make_im2col_rows(p);
  const bool pointwise = p.KH == 1 && p.KW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 &&
                         p.pad_b == 0 && p.pad_l == 0 && p.pad_r == 0 && p.OH == p.H && p.OW == p.W;
  // Stride 1: B~ packed from a padded copy of x by copy_runs (see BIm2colT).
  // The walk's short runs (memmove, memset per 8-pixel row) had been ~20% of
  // 32x256x8x8's weight gradient in a perf profile. Alternated with the walk,
  // two runs each: that gradient 12.6-12.7 -> 10.7-11.3 ms at 1 thread, 6.6-7.4
  // -> 5.7-6.4 ms at 2; AlexNet conv2's 2.06-2.09 -> 1.90 ms at 1 thread.
  // Strided: from the phase planes of x (as the direct forward reads them),
  // where each tap's run is contiguous again, instead of one strided gather per
  // panel lane. Alternated with the gather, 2 runs each at 1 thread: 8x64x32x32
  // 3x3/2 dW 1.95-1.97 -> 1.54 ms (0.86-0.87 ms at 2 threads), AlexNet conv1
  // 1.19-1.20 -> 0.79 ms, 32x128x16x16 3x3/2 -> 256 6.50 -> 6.01-6.04 ms.
  // (The geometry only where the copy is made: strides near 2^62 are valid
  // and would overflow the plane sizes.)
  const bool padded = conv2d_direct_forward_applies(p) && !pointwise;
  Buffer<T> xpad;
  std::vector<int64_t> toffs;
  int64_t Wq = 0, chan = 0;  // the copy's row pitch and elements per channel
  if (padded) {
    const int64_t sh = p.stride_h, sw = p.stride_w, S = sh * sw;  // S <= 64 where the phase split applies
    const int64_t Hq = p.OH + p.dil_h * (p.KH - 1) / sh;
    Wq = p.OW + p.dil_w * (p.KW - 1) / sw;
    const int64_t plane = checked_mul(Hq, Wq, "conv2d padded input");
    chan = checked_mul(S, plane, "conv2d padded input");
    xpad.reset(checked_mul(checked_mul(p.N, p.C, "conv2d padded input"), chan, "conv2d padded input"),
               "conv2d padded input");
    if (S == 1)
      build_padded(xpad.data(), x, p, Hq, Wq, 0);
    else
      build_phases(xpad.data(), x, p, Hq, Wq, 0);
    toffs.resize(size_t(Kg));
    for (int64_t c = 0, k = 0; c < p.Cg(); ++c)
      for (int64_t kh = 0; kh < p.KH; ++kh)
        for (int64_t kw = 0; kw < p.KW; ++kw) {
          const int64_t eh = kh * p.dil_h, ew = kw * p.dil_w;
          toffs[size_t(k++)] = c * chan + ((eh % sh) * sw + ew % sw) * plane + (eh / sh) * Wq + ew / sw;
        }
  }

  const bool m_outer = s.rows_outer(OCg, kr.mr, Kg, kr.nr, p.G * R, nt);
  parallel_for(tasks, nt, [&](int64_t t, int tid) {
    const int64_t g = t % p.G, rest = t / p.G;
    const int64_t r = rest % R, rest2 = rest / R;
    int64_t mi, ni, i0, i1, j0, j1;
    s.task(rest2, m_outer, mi, ni);
    s.m_range(mi, OCg, kr.mr, i0, i1);
    s.n_range(ni, Kg, kr.nr, j0, j1);
    const int64_t n0 = r * per, n1 = std::min(p.N, n0 + per);
    T* out = (R > 1 ? partial.data() + r * dw_size : dw) + g * OCg * Kg;
    ADyRows<T> ap{dy, p.OC, P, g * OCg, n0 * P, kr.mr, kr.transpose};
    BIm2colT<T> bp{&geom, rows.data(), x + g * p.Cg() * p.H * p.W, n0 * P, kr.nr, kr.transpose, pointwise};
    if (padded) {
      bp.xpad = xpad.data() + g * p.Cg() * chan;
      bp.pWp = Wq;
      bp.pimg = p.C * chan;
      bp.toffs = toffs.data();
      bp.copy_runs = kr.copy_runs;
      bp.transpose_runs = kr.transpose_runs;
    }
    CRowMajor<T> cm{out, Kg};
    T* buf = scratch.data() + tid * (sa + sb);
    gemm_macro(kr, i0, i1, j0, j1, (n1 - n0) * P, ap, bp, cm, buf, buf + sa);
  });

  if (R > 1) sum_partials(dw, partial.data(), R, dw_size);
}

int64_t weight_grad_chunks(int64_t N, int64_t dw_size) {
  // Chunks give the threads work when dW is small (LeNet's 16x150); a large
  // dW has tiles enough, and its chunk partials only add a memory-bound sum
  // (8 x 2.4 MB for 256x256x3x3, 9% of that weight gradient's time in a
  // profile). Either way the chunks follow from the shape alone, so results
  // stay bitwise the same at any thread count.
  int64_t R = std::min<int64_t>(N, 8);
  R = std::max<int64_t>(1, std::min<int64_t>(R, (int64_t(1) << 17) / std::max<int64_t>(1, dw_size)));
  return ceil_div(N, ceil_div(std::max<int64_t>(N, 1), R));
}

template <typename T>
void sum_partials(T* dw, const T* partial, int64_t R, int64_t size) {
  const int64_t chunk = 1 << 14, ntask = ceil_div(size, chunk);
  parallel_for(ntask, threads_for_flops(double(R) * size, ntask), [&](int64_t t, int) {
    const int64_t b = t * chunk, e = std::min(size, b + chunk);
    for (int64_t i = b; i < e; ++i) {
      T acc = partial[i];
      for (int64_t rr = 1; rr < R; ++rr) acc += partial[rr * size + i];
      dw[i] = acc;
    }
  });
}
template void sum_partials<float>(float*, const float*, int64_t, int64_t);
template void sum_partials<double>(double*, const double*, int64_t, int64_t);

#define FASTCONV_INSTANTIATE(T)                                                                  \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dParams&, ConvWeightPack<T>*); \
  template void conv2d_backward_data<T>(T*, const T*, const T*, const Conv2dParams&);            \
  template void conv2d_backward_weight<T>(T*, T*, const T*, const T*, const Conv2dParams&);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv
