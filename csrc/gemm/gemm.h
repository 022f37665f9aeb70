// Plain GEMM on strided matrices, parallel over output tiles:
//   C (M x N, row stride ldc) = A (M x K) * B (K x N) [+ bias_row[i]] [+ bias_col[j]]
// A(i,k) = A[i*rsa + k*csa], B(k,j) = B[k*rsb + j*csb]. No BLAS: the driver in
// driver.h with the active micro-kernel. Deterministic for any thread count.
#pragma once

#include <algorithm>
#include <cstdint>

namespace fastconv {

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T* C, int64_t ldc, const T* bias_row = nullptr, const T* bias_col = nullptr);

// Tasks of a GEMM-like loop: mcount row blocks by ncount column blocks.
// mblock / nblock are the largest block; the blocks themselves are balanced
// to within one micro-tile (m_range / n_range), so that with the static
// schedule every thread gets the same work (98 position tiles in 8 blocks of
// 13 had left one thread 6 tiles short at 2 threads: a spin at the barrier).
struct TileSplit {
  int64_t mblock, nblock, mcount, ncount;
  int64_t tasks() const { return mcount * ncount; }
  // rows [i0, i1) of row block mi of M, in whole tiles of mr (the last may be short)
  void m_range(int64_t mi, int64_t M, int64_t mr, int64_t& i0, int64_t& i1) const {
    range(mi, mcount, M, mr, i0, i1);
  }
  void n_range(int64_t ni, int64_t N, int64_t nr, int64_t& j0, int64_t& j1) const {
    range(ni, ncount, N, nr, j0, j1);
  }
  // Task order: the task after the group index (task = rest*groups + g) is
  // (mi, ni) with the column blocks outer (rest = ni*mcount + mi), unless
  // rows_outer. rows_outer() picks the order that gives `nthreads` threads
  // the more equal shares under the static schedule (ties: columns outer,
  // which keeps each thread's output positions contiguous). E.g. 23 position
  // tiles in 6 blocks by 2 row blocks give 2 threads 12 and 11 tiles' work,
  // and with the row blocks outer 23 each (AlexNet conv2 at batch 1, before
  // the direct forward split such layers by tiles: 1.02 -> 0.98 ms).
  bool rows_outer(int64_t M, int64_t mr, int64_t N, int64_t nr, int64_t groups, int nthreads) const;
  void task(int64_t rest, bool m_outer, int64_t& mi, int64_t& ni) const {
    mi = m_outer ? rest / ncount : rest % mcount;
    ni = m_outer ? rest % ncount : rest / mcount;
  }

 private:
  static void range(int64_t i, int64_t count, int64_t n, int64_t unit, int64_t& b, int64_t& e) {
    const int64_t tiles = (n + unit - 1) / unit, q = tiles / count, r = tiles % count;
    const int64_t tb = i * q + std::min(i, r), te = tb + q + (i < r ? 1 : 0);
    b = std::min(n, tb * unit);
    e = std::min(n, te * unit);
  }
};

// How many (row, column) blocks to cut an M x N output into so that `nthreads`
// threads have work; block sizes are whole register tiles. Column blocks come
// first, down to min_panels NR panels each, then row blocks: each row block
// packs the same B again, which only pays where B is cheap to pack. Blocks are
// cut for per_thread tasks per thread (fewer where there are too few tiles).
TileSplit split_tiles(int64_t M, int64_t N, int mr, int nr, int64_t nc, int64_t groups, int nthreads,
                      int64_t min_panels = 4, int per_thread = 4);

// Threads worth using for `flops` of work (tiny ops stay on one thread: waking
// a team costs more than it saves).
int threads_for_flops(double flops, int64_t tasks);

}  // namespace fastconv
