// linear: y[b, o] = bias[o] + sum_i x[b, i] * w[o, i]
//
//   dx[b, i] = sum_o dy[b, o] * w[o, i]
//   dw[o, i] = sum_b dy[b, o] * x[b, i]
//   db[o]    = sum_b dy[b, o]
//
// Layouts: x (B, IN), w (OUT, IN), y / dy (B, OUT), C-contiguous.
// Forward, by batch size:
//   B == 1: a matrix-vector product bound by reading w once (the ISA's
//     dot-product kernel over row blocks of w, one block per thread);
//   small B: 4x3 inner-product tiles straight from x and w (no packing);
//   larger B: y^T = W * X^T as a GEMM whose A operand is w itself, read in
//     place row by row (ukernel_rows: w is never packed and is read from
//     memory once per column block), B~ = X^T packed once per call (the size
//     of x), C = y^T in a scratch block transposed into y at the end. The backward products reduce over OUT
// and B, along which one operand is strided: the blocked GEMM of gemm/ (w^T
// and dy^T are read through strides by the packers, never transposed in memory).
#include "ops/linear.h"

#include <algorithm>

#include "common/buffer.h"
#include "common/check.h"
#include "common/parallel.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/gemm.h"

namespace fastconv {

LinearParams make_linear_params(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, int64_t bias_len) {
  if (ws.size() != 2) value_error("linear: weight must be 2-D (out_features, in_features), got shape ", shape_str(ws));
  if (xs.empty()) value_error("linear: input must have at least 1 dimension, got a scalar");
  for (int64_t d : xs)
    if (d < 0) value_error("linear: negative dimension in input shape ", shape_str(xs));
  if (ws[0] < 0 || ws[1] < 0) value_error("linear: negative dimension in weight shape ", shape_str(ws));
  LinearParams p{};
  p.IN = xs.back();
  p.OUT = ws[0];
  if (ws[1] != p.IN)
    value_error("linear: input has ", p.IN, " features (last dim of shape ", shape_str(xs), ") but weight of shape ",
                shape_str(ws), " expects in_features=", ws[1]);
  if (bias_len >= 0 && bias_len != p.OUT)
    value_error("linear: bias must have shape (", p.OUT, ",) to match weight out_features, got (", bias_len, ",)");
  p.B = checked_numel(std::vector<int64_t>(xs.begin(), xs.end() - 1), "linear input");
  checked_numel(xs, "linear input");
  checked_mul(p.B, p.OUT, "linear output");
  checked_mul(p.OUT, p.IN, "linear weight");
  return p;
}

// Which forward: the GEMM with w read in place, from batch 16 on, unless both
// the batch and out_features are small (under 32: the tile would be mostly
// padding); else the inner-product tiles, which need no packing or
// transposition but end every 4x3 tile with 12 horizontal sums. Alternated in
// one process at 1 and 2 threads on AVX-512 and AVX2 over 9 shapes (batch
// 16-128, weights 10x84 .. 256x256): the GEMM 1.0-3.8x faster (LeNet's
// 64x400 -> 120: 2.8x on AVX-512, 1.1x on AVX2), except 16x512 -> 10
// (0.35-0.75x) and 64x512 -> 64 on AVX2 at 2 threads (0.91x).
inline bool use_rows_gemm(const LinearParams& p) {
  return p.B >= 16 && (p.B >= 32 || p.OUT >= 32);
}

template <typename T>
void linear_forward_rows(T* y, const T* x, const T* w, const T* b, const LinearParams& p, const GemmKernel<T>& kr) {
  const int NR = kr.nr, MR = kr.rows_mr;
  const int64_t IN = p.IN, OUT = p.OUT;
  const int64_t kc = balanced_kc(IN, kr.kc);
  const int64_t Bpad = round_up(p.B, NR);
  const int64_t Opad = round_up(OUT, MR);
  // B~: X^T in kc slices; slice pc holds Bpad/NR panels of kb x NR: [pc*Bpad + q*NR*kb + k*NR + c]
  Buffer<T> bt(checked_mul(Bpad, IN, "linear packed input"), "linear packed input");
  // y^T panel by panel: panel q (batch rows q*NR ..) is an Opad x NR block, so a
  // register tile's rows are NR apart (not Bpad: rows a power of two apart
  // would fight over the same cache sets)
  Buffer<T> yt(checked_mul(Opad, Bpad, "linear output block"), "linear output block");
  const int64_t panels = Bpad / NR;
  {
    const int64_t slices = ceil_div(IN, kc), ptasks = checked_mul(slices, panels, "linear packing tasks");
    parallel_for(ptasks, threads_for_flops(double(Bpad) * IN, ptasks), [&](int64_t t, int) {
      const int64_t s = t / panels, q = t % panels, pc = s * kc, kb = std::min(kc, IN - pc);
      T* d = bt.data() + pc * Bpad + q * NR * kb;
      const int cols = int(std::min<int64_t>(NR, p.B - q * NR));
      kr.transpose(cols, kb, x + q * NR * IN + pc, IN, d, NR);  // d[k*NR + c] = x[(q*NR + c)*IN + pc + k]
      for (int c = cols; c < NR; ++c)
        for (int64_t k = 0; k < kb; ++k) d[k * NR + c] = T(0);
    });
  }
  // tasks: (row block of w) x (column block of the batch)
  const int64_t mblock = std::max<int64_t>(MR, int64_t(kr.mc) / MR * MR);
  const int64_t mcount = ceil_div(OUT, mblock);
  // column blocks of the batch: B~ (kc x NB) stays in L2 while w streams past;
  // narrower when there are too few row blocks to keep every thread busy
  int64_t NB = std::min(Bpad, std::max<int64_t>(NR, int64_t(kr.nc) / NR * NR));
  const int64_t want = 4 * int64_t(num_threads());
  if (mcount * ceil_div(Bpad, NB) < want) NB = std::max<int64_t>(NR, round_up(ceil_div(Bpad, ceil_div(want, mcount)), NR));
  const int64_t ncount = ceil_div(Bpad, NB);
  const int64_t tasks = checked_mul(mcount, ncount, "linear tasks");
  const int nt = threads_for_flops(2.0 * double(p.B) * OUT * IN, tasks);
  Buffer<T> edge(checked_mul(nt, int64_t(MR) * kc, "linear scratch"));
  parallel_for(tasks, nt, [&](int64_t t, int tid) {
    const int64_t mi = t % mcount, ni = t / mcount;
    const int64_t o0 = mi * mblock, o1 = std::min(OUT, o0 + mblock);
    const int64_t j0 = ni * NB, j1 = std::min(Bpad, j0 + NB);
    T* rows = edge.data() + tid * int64_t(MR) * kc;
    for (int64_t pc = 0; pc < IN; pc += kc) {
      const int64_t kb = std::min(kc, IN - pc);
      for (int64_t j = j0; j < j1; j += NR) {
        const T* bp = bt.data() + pc * Bpad + (j / NR) * NR * kb;
        for (int64_t o = o0; o < o1; o += MR) {
          const T* a = w + o * IN + pc;
          int64_t lda = IN;
          if (o + MR > OUT) {  // last panel: the rows that exist, zero-padded
            const int64_t have = OUT - o;
            for (int64_t r = 0; r < MR; ++r)
              for (int64_t k = 0; k < kb; ++k) rows[r * kb + k] = r < have ? a[r * IN + k] : T(0);
            a = rows;
            lda = kb;
          }
          kr.ukernel_rows(kb, a, lda, bp, yt.data() + ((j / NR) * Opad + o) * NR, NR, pc > 0);
        }
      }
    }
  });
  // y = (y^T)^T + bias, in row blocks
  const int64_t rb = 16, rtasks = ceil_div(p.B, rb);
  parallel_for(rtasks, threads_for_flops(double(p.B) * OUT, rtasks), [&](int64_t t, int) {
    const int64_t r0 = t * rb, r1 = std::min(p.B, r0 + rb);
    for (int64_t r = r0; r < r1; ++r) {
      const T* src = yt.data() + (r / NR) * Opad * NR + r % NR;
      T* dst = y + r * OUT;
      if (b)
        for (int64_t o = 0; o < OUT; ++o) dst[o] = src[o * NR] + b[o];
      else
        for (int64_t o = 0; o < OUT; ++o) dst[o] = src[o * NR];
    }
  });
}

template <typename T>
void linear_forward(T* y, const T* x, const T* w, const T* b, const LinearParams& p) {
  if (p.B == 0 || p.OUT == 0) return;
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  if (p.B == 1 && p.IN > 0) {
    const int64_t rows_per_task = 256;
    const int64_t tasks = ceil_div(p.OUT, rows_per_task);
    parallel_for(tasks, threads_for_flops(2.0 * double(p.OUT) * p.IN, tasks), [&](int64_t t, int) {
      const int64_t j0 = t * rows_per_task, j1 = std::min(p.OUT, j0 + rows_per_task);
      kr.gemv(j1 - j0, p.IN, w + j0 * p.IN, p.IN, x, y + j0);
      if (b)
        for (int64_t j = j0; j < j1; ++j) y[j] += b[j];
    });
    return;
  }
  if (p.IN == 0) {
    // Y (B x OUT) = X (B x IN) * W^T  (IN == 0: bias or zeros)
    gemm<T>(p.B, p.OUT, p.IN, x, p.IN, 1, w, 1, p.IN, y, p.OUT, nullptr, b);
    return;
  }
  if (use_rows_gemm(p)) return linear_forward_rows(y, x, w, b, p, kr);
  // Both operands are contiguous along the reduction: 4x3 inner-product tiles,
  // no packing. The reduction is cut into slices whose block of x (B x JB)
  // stays in L2 while the rows of w stream past once; each task owns a range
  // of output features (disjoint rows of w and columns of y).
  const int64_t JB = std::min(p.IN, std::max<int64_t>(256, (int64_t(1) << 16) / std::max<int64_t>(p.B, 1)) / 8 * 8);
  const int64_t otiles = ceil_div(p.OUT, 3);
  const int64_t tasks = std::min<int64_t>(otiles, 8 * int64_t(num_threads()));
  const int nt = threads_for_flops(2.0 * double(p.B) * p.OUT * p.IN, tasks);
  parallel_for(tasks, nt, [&](int64_t t, int) {
    int64_t tb, te;
    split_range(otiles, tasks, t, tb, te);
    const int64_t o0 = tb * 3, o1 = std::min(p.OUT, te * 3);
    for (int64_t jb = 0; jb < p.IN; jb += JB) {
      const int64_t len = std::min(JB, p.IN - jb);
      for (int64_t o = o0; o < o1; o += 3) {
        const T* wr[3];
        for (int j = 0; j < 3; ++j) wr[j] = w + std::min(o + j, o1 - 1) * p.IN + jb;
        for (int64_t r = 0; r < p.B; r += 4) {
          const T* xr[4];
          for (int i = 0; i < 4; ++i) xr[i] = x + std::min(r + i, p.B - 1) * p.IN + jb;
          T res[12];
          kr.dot4x3(len, xr, wr, res);
          for (int i = 0; i < 4 && r + i < p.B; ++i)
            for (int j = 0; j < 3 && o + j < o1; ++j) {
              T& dst = y[(r + i) * p.OUT + o + j];
              dst = jb == 0 ? res[i * 3 + j] : dst + res[i * 3 + j];
            }
        }
      }
    }
    if (b)
      for (int64_t r = 0; r < p.B; ++r)
        for (int64_t o = o0; o < o1; ++o) y[r * p.OUT + o] += b[o];
  });
}

template <typename T>
void linear_backward_data(T* dx, const T* dy, const T* w, const LinearParams& p) {
  // dX (B x IN) = dY (B x OUT) * W (OUT x IN)
  gemm<T>(p.B, p.IN, p.OUT, dy, p.OUT, 1, w, p.IN, 1, dx, p.IN);
}

template <typename T>
void linear_backward_weight(T* dw, T* db, const T* dy, const T* x, const LinearParams& p) {
  // dW (OUT x IN) = dY^T (OUT x B) * X (B x IN)
  if (dw) gemm<T>(p.OUT, p.IN, p.B, dy, 1, p.OUT, x, p.IN, 1, dw, p.IN);
  if (db) {
    const int64_t cols = 256, tasks = ceil_div(p.OUT, cols);
    parallel_for(tasks, threads_for_flops(double(p.B) * p.OUT, tasks), [&](int64_t t, int) {
      const int64_t j0 = t * cols, j1 = std::min(p.OUT, j0 + cols);
      double acc[256] = {};  // fixed order over the batch, wide accumulators
      for (int64_t r = 0; r < p.B; ++r) {
        const T* row = dy + r * p.OUT;
        for (int64_t j = j0; j < j1; ++j) acc[j - j0] += double(row[j]);
      }
      for (int64_t j = j0; j < j1; ++j) db[j] = T(acc[j - j0]);
    });
  }
}

#define FASTCONV_INSTANTIATE(T)                                                           \
  template void linear_forward<T>(T*, const T*, const T*, const T*, const LinearParams&); \
  template void linear_backward_data<T>(T*, const T*, const T*, const LinearParams&);     \
  template void linear_backward_weight<T>(T*, T*, const T*, const T*, const LinearParams&);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv
