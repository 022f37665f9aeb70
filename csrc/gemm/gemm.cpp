#include "gemm/gemm.h"

#include <algorithm>

#include "common/buffer.h"
#include "common/parallel.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"

namespace fastconv {

TileSplit split_tiles(int64_t M, int64_t N, int mr, int nr, int64_t nc, int64_t groups, int nthreads,
                      int64_t min_panels, int per_thread) {
  TileSplit s;
  const int64_t want = int64_t(per_thread) * nthreads;  // (a few tasks per thread for balance)
  s.ncount = std::max<int64_t>(1, ceil_div(N, nc));
  s.mcount = 1;
  if (nthreads > 1 && groups * s.ncount < want) {
    // more column blocks first (keeps the A block whole), down to min_panels panels each
    const int64_t max_n = std::max<int64_t>(1, ceil_div(N, min_panels * int64_t(nr)));
    s.ncount = std::min(max_n, std::max(s.ncount, ceil_div(want, groups)));
    if (groups * s.ncount < want) {
      const int64_t max_m = std::max<int64_t>(1, ceil_div(M, mr));
      s.mcount = std::min(max_m, ceil_div(want, groups * s.ncount));
    }
  }
  auto finalize = [&](TileSplit& t) {
    t.nblock = round_up(ceil_div(N, t.ncount), nr);
    t.mblock = round_up(ceil_div(M, t.mcount), mr);
    t.ncount = std::max<int64_t>(1, ceil_div(N, t.nblock));
    t.mcount = std::max<int64_t>(1, ceil_div(M, t.mblock));
  };
  finalize(s);
  // Equal tasks in a count that is a multiple of the thread count: 9 tasks on
  // 2 threads would leave one idle for a ninth of the time.
  if (nthreads > 1 && (groups * s.tasks()) % nthreads != 0) {
    const int64_t max_n = std::max<int64_t>(1, ceil_div(N, int64_t(nr)));
    for (int64_t nc2 = s.ncount + 1; nc2 <= std::min(max_n, 2 * s.ncount + nthreads); ++nc2) {
      TileSplit t = s;
      t.ncount = nc2;
      finalize(t);
      if ((groups * t.tasks()) % nthreads == 0) {
        s = t;
        break;
      }
    }
  }
  return s;
}

bool TileSplit::rows_outer(int64_t M, int64_t mr, int64_t N, int64_t nr, int64_t groups, int nthreads) const {
  const int64_t tasks = groups * mcount * ncount;
  if (nthreads <= 1 || mcount == 1 || ncount == 1 || tasks > 4096) return false;
  // the largest share of rows x columns any thread gets, for either order
  // (static schedule: contiguous shares, the first tasks % nthreads one longer)
  auto worst = [&](bool m_outer) {
    int64_t most = 0;
    for (int th = 0; th < nthreads; ++th) {
      int64_t b, e, sum = 0;
      split_range(tasks, nthreads, th, b, e);  // libgomp's static shares
      for (int64_t t = b; t < e; ++t) {
        int64_t mi, ni, i0, i1, j0, j1;
        task(t / groups, m_outer, mi, ni);
        m_range(mi, M, mr, i0, i1);
        n_range(ni, N, nr, j0, j1);
        sum += (i1 - i0) * (j1 - j0);
      }
      most = std::max(most, sum);
    }
    return most;
  };
  return worst(true) < worst(false);
}

int threads_for_flops(double flops, int64_t tasks) {
  const int nt = threads_for(tasks);
  if (nt <= 1) return 1;
  // ~1 MFLOP is a few microseconds here, about what starting a team costs
  const double per_thread = 1.0e6;
  return std::max(1, std::min<int>(nt, int(flops / per_thread) + 1));
}

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T* C, int64_t ldc, const T* bias_row, const T* bias_col) {
  if (M <= 0 || N <= 0) return;
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  const TileSplit s = split_tiles(M, N, kr.mr, kr.nr, kr.nc, 1, num_threads());
  const int nt = threads_for_flops(2.0 * M * N * K, s.tasks());
  const int64_t sa = gemm_scratch_a(kr), sb = gemm_scratch_b(kr, s.nblock);
  Buffer<T> scratch(checked_mul(nt, sa + sb, "gemm scratch"));
  AStrided<T> ap{A, rsa, csa, kr.mr};
  BStrided<T> bp{B, rsb, csb, kr.nr};
  CRowMajor<T> cm{C, ldc, bias_row, bias_col};
  const bool m_outer = s.rows_outer(M, kr.mr, N, kr.nr, 1, nt);
  parallel_for(s.tasks(), nt, [&](int64_t t, int tid) {
    int64_t mi, ni, i0, i1, j0, j1;
    s.task(t, m_outer, mi, ni);
    s.m_range(mi, M, kr.mr, i0, i1);
    s.n_range(ni, N, kr.nr, j0, j1);
    T* bufA = scratch.data() + tid * (sa + sb);
    gemm_macro(kr, i0, i1, j0, j1, K, ap, bp, cm, bufA, bufA + sa);
  });
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, int64_t,
                          float*, int64_t, const float*, const float*);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                           int64_t, double*, int64_t, const double*, const double*);

}  // namespace fastconv
