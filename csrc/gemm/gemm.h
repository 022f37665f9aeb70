// Plain GEMM on strided matrices, parallel over output tiles:
//   C (M x N, row stride ldc) = A (M x K) * B (K x N) [+ bias_row[i]] [+ bias_col[j]]
// A(i,k) = A[i*rsa + k*csa], B(k,j) = B[k*rsb + j*csb]. No BLAS: the driver in
// driver.h with the active micro-kernel. Deterministic for any thread count.
#pragma once

#include <cstdint>

namespace fastconv {

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, T* C, int64_t ldc, const T* bias_row = nullptr, const T* bias_col = nullptr);

// How many (row, column) blocks to cut an M x N output into so that `nthreads`
// threads have work; block sizes are whole register tiles. Column blocks come
// first, down to min_panels NR panels each, then row blocks: each row block
// packs the same B again, which only pays where B is cheap to pack.
struct TileSplit {
  int64_t mblock, nblock, mcount, ncount;
  int64_t tasks() const { return mcount * ncount; }
};
TileSplit split_tiles(int64_t M, int64_t N, int mr, int nr, int64_t nc, int64_t groups, int nthreads,
                      int64_t min_panels = 4);

// Threads worth using for `flops` of work (tiny ops stay on one thread: waking
// a team costs more than it saves).
int threads_for_flops(double flops, int64_t tasks);

}  // namespace fastconv
