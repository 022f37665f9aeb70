// linear: y[b, o] = bias[o] + sum_i x[b, i] * w[o, i]
//
//   dx[b, i] = sum_o dy[b, o] * w[o, i]
//   dw[o, i] = sum_b dy[b, o] * x[b, i]
//   db[o]    = sum_b dy[b, o]
//
// Layouts: x (B, IN), w (OUT, IN), y / dy (B, OUT), C-contiguous.
// Forward: x and w are both contiguous along the reduction, so y is built
// from 4x3 inner-product tiles (no packing); at B == 1 it is a matrix-vector
// product bound by reading w once (the ISA's dot-product kernel over row
// blocks of w, one block per thread). The backward products reduce over OUT
// and B, along which one operand is strided: the blocked GEMM of gemm/ (w^T
// and dy^T are read through strides by the packers, never transposed in memory).
#include "ops/linear.h"

#include <algorithm>

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
