// The blocked GEMM driver: BLIS's loops around a register micro-kernel.
//
//   C[i][j] (+)= sum_k A[i][k] * B[k][j]   for i in [i0,i1), j in [j0,j1), k in [0,K)
//
// A, B and C are never touched directly: callers pass
//   apack.block(i, mb, p, kb, buf) -> const T*  MR-row panels of A[i:i+mb, p:p+kb]
//                                               (may return prepacked memory instead of buf)
//   bpack.pack(p, kb, j, nb, buf)               NR-column panels of B[p:p+kb, j:j+nb]
//   cmap.tile(i, j, ldc) -> T*                  where a full MR x NR tile lands, or
//                                               nullptr if it cannot be stored directly
//   cmap.scatter(i, j, mr, nr, tile, ldt, acc)  store (acc: add) a partial / indirect tile
//   cmap.finish(i0, i1, j, nb)                  epilogue once a block has all of K
// so the same loops serve plain GEMM, conv with implicit im2col (B packed
// straight from input windows) and the backward passes.
//
// Panel layouts (zero-padded to whole panels, so the micro-kernel never sees
// a short tile):
//   A~: panel q (rows i+q*MR ..) of kb*MR values, A~[q*MR*kb + k*MR + r]
//   B~: panel q (cols j+q*NR ..) of kb*NR values, B~[q*NR*kb + k*NR + c]
//
// Each C element is summed in the same order (k ascending inside a KC block,
// blocks in order) whatever the tile or task it lands in, so results do not
// depend on how the caller splits work across threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/parallel.h"
#include "gemm/gemm.h"
#include "gemm/ukernel.h"

namespace fastconv {

constexpr int kMaxTile = 32 * 32;  // largest MR*NR of any kernel

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scratch each thread needs for gemm_macro with column blocks of at most `nb`.
template <typename T>
inline int64_t gemm_scratch_a(const GemmKernel<T>& kr) { return int64_t(kr.mc) * kr.kc; }
template <typename T>
inline int64_t gemm_scratch_b(const GemmKernel<T>& kr, int64_t nb) {
  return int64_t(kr.kc) * round_up(std::min<int64_t>(nb, kr.nc), kr.nr);
}

template <typename T, class APack, class BPack, class CMap>
void gemm_macro(const GemmKernel<T>& kr, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K,
                APack& apack, BPack& bpack, CMap& cmap, T* bufA, T* bufB) {
  const int MR = kr.mr, NR = kr.nr;
  alignas(64) T tmp[kMaxTile];
  if (K == 0) {  // empty sum: C = 0, then the epilogue
    std::fill(tmp, tmp + kMaxTile, T(0));
    for (int64_t j = j0; j < j1; j += NR)
      for (int64_t i = i0; i < i1; i += MR)
        cmap.scatter(i, j, int(std::min<int64_t>(MR, i1 - i)), int(std::min<int64_t>(NR, j1 - j)), tmp, NR,
                     false);
    cmap.finish(i0, i1, j0, j1 - j0);
    return;
  }
  // loop 5 (jc): column blocks of B~ (NC)
  for (int64_t jc = j0; jc < j1; jc += kr.nc) {
    const int64_t nb = std::min<int64_t>(kr.nc, j1 - jc);
    // loop 4 (pc): the reduction in KC slices; B~ slice packed once, reused by every row block
    for (int64_t pc = 0; pc < K; pc += kr.kc) {
      const int64_t kb = std::min<int64_t>(kr.kc, K - pc);
      const bool acc = pc > 0;
      bpack.pack(pc, kb, jc, nb, bufB);
      // loop 3 (ic): row blocks of A~ (MC), sized for L2
      for (int64_t ic = i0; ic < i1; ic += kr.mc) {
        const int64_t mb = std::min<int64_t>(kr.mc, i1 - ic);
        const T* Ablk = apack.block(ic, mb, pc, kb, bufA);
        // loop 2 (jr): one NR panel of B~ stays in L1 ...
        for (int64_t jr = 0; jr < nb; jr += NR) {
          const int nr = int(std::min<int64_t>(NR, nb - jr));
          const T* bp = bufB + (jr / NR) * NR * kb;
          // loop 1 (ir): ... while the MR panels of A~ stream past it
          for (int64_t ir = 0; ir < mb; ir += MR) {
            const int mr = int(std::min<int64_t>(MR, mb - ir));
            const T* ap = Ablk + (ir / MR) * MR * kb;
            int64_t ldc = 0;
            T* c = (mr == MR && nr == NR) ? cmap.tile(ic + ir, jc + jr, ldc) : nullptr;
            if (c) {
              kr.ukernel(kb, ap, bp, c, ldc, acc);
            } else if (mr <= 8 && mr < MR && kr.ukernel_edge) {  // a short last row panel: its rows only
              kr.ukernel_edge(mr, kb, ap, bp, nullptr, 0, tmp, NR, false);
              cmap.scatter(ic + ir, jc + jr, mr, nr, tmp, NR, acc);
            } else {
              kr.ukernel(kb, ap, bp, tmp, NR, false);
              cmap.scatter(ic + ir, jc + jr, mr, nr, tmp, NR, acc);
            }
          }
        }
      }
    }
    cmap.finish(i0, i1, jc, nb);
  }
}

// ---- packers for matrices given by strides ---------------------------------

// A~ panels of A[i0:i0+mb, p0:p0+kb], A(i,k) = A[i*rs + k*cs].
template <typename T>
void pack_a_strided(T* dst, const T* A, int64_t rs, int64_t cs, int64_t i0, int64_t mb, int64_t p0, int64_t kb,
                    int MR) {
  for (int64_t q = 0; q * MR < mb; ++q) {
    T* d = dst + q * MR * kb;
    const int rows = int(std::min<int64_t>(MR, mb - q * MR));
    const T* a = A + (i0 + q * MR) * rs + p0 * cs;
    if (cs == 1) {
      for (int r = 0; r < rows; ++r) {
        const T* ar = a + r * rs;
        for (int64_t k = 0; k < kb; ++k) d[k * MR + r] = ar[k];
      }
    } else {
      for (int64_t k = 0; k < kb; ++k)
        for (int r = 0; r < rows; ++r) d[k * MR + r] = a[k * cs + r * rs];
    }
    for (int r = rows; r < MR; ++r)
      for (int64_t k = 0; k < kb; ++k) d[k * MR + r] = T(0);
  }
}

// B~ panels of B[p0:p0+kb, j0:j0+nb], B(k,j) = B[k*rs + j*cs].
template <typename T>
void pack_b_strided(T* dst, const T* B, int64_t rs, int64_t cs, int64_t p0, int64_t kb, int64_t j0, int64_t nb,
                    int NR) {
  for (int64_t q = 0; q * NR < nb; ++q) {
    T* d = dst + q * NR * kb;
    const int cols = int(std::min<int64_t>(NR, nb - q * NR));
    const T* b = B + p0 * rs + (j0 + q * NR) * cs;
    if (cs == 1) {
      for (int64_t k = 0; k < kb; ++k) {
        std::memcpy(d + k * NR, b + k * rs, sizeof(T) * cols);
        for (int c = cols; c < NR; ++c) d[k * NR + c] = T(0);
      }
    } else {
      for (int c = 0; c < cols; ++c) {
        const T* bc = b + c * cs;
        for (int64_t k = 0; k < kb; ++k) d[k * NR + c] = bc[k * rs];
      }
      for (int c = cols; c < NR; ++c)
        for (int64_t k = 0; k < kb; ++k) d[k * NR + c] = T(0);
    }
  }
}

template <typename T>
inline int64_t prepacked_a_size(int64_t M, int64_t K, const GemmKernel<T>& kr) {
  return round_up(M, kr.mr) * K;
}

// Prepack of G row-major M x K matrices (A_g = A + g*M*K), one after another
// (prepacked_a_size apart), into the layout APrepacked reads: for each KC slice
// p0 (kc: the slice length the consumer will use), all row panels at
// base + Mpad*p0 + q*MR*kb. Each panel slice is an MR x kb block of A turned
// with the ISA's register transposes (one scalar store per element had taken
// 35% of a 1x256x8x8 3x3 convolution's time on AVX-512); the panels are spread
// over the threads: a pass over memory that would otherwise run on one thread
// while the others wait (serial: all on the calling thread, e.g. in a task).
template <typename T>
void prepack_a_groups(T* dst, const T* A, int64_t G, int64_t M, int64_t K, const GemmKernel<T>& kr, int64_t kc,
                      bool serial = false) {
  const int MR = kr.mr;
  const int64_t panels = ceil_div(M, MR), asz = prepacked_a_size(M, K, kr), tasks = G * panels;
  const int64_t Mpad = round_up(M, int64_t(MR));
  parallel_for(tasks, serial ? 1 : threads_for_flops(16.0 * double(G) * M * K, tasks), [&](int64_t t, int) {
    const int64_t g = t / panels, q = t - g * panels;
    const int64_t i0 = q * MR, rows = std::min<int64_t>(MR, M - i0);
    for (int64_t pc = 0; pc < K; pc += kc) {
      const int64_t kb = std::min<int64_t>(kc, K - pc);
      T* d = dst + g * asz + Mpad * pc + q * MR * kb;
      kr.transpose(rows, kb, A + (g * M + i0) * K + pc, K, d, MR);
      for (int64_t k = 0; k < kb; ++k)
        for (int r = int(rows); r < MR; ++r) d[k * MR + r] = T(0);
    }
  });
}

// A reduction of length K cut into equal slices of at most kc_max (a short
// last slice would pay the C load/store of a whole one for little work).
inline int64_t balanced_kc(int64_t K, int64_t kc_max) {
  const int64_t slices = std::max<int64_t>(1, ceil_div(K, kc_max));
  return ceil_div(K, slices);
}

template <typename T>
struct APrepacked {
  const T* base;
  int64_t Mpad;
  int MR;
  const T* block(int64_t i, int64_t mb, int64_t p, int64_t kb, T*) const {
    return base + Mpad * p + (i / MR) * MR * kb;
  }
};

template <typename T>
struct AStrided {
  const T* A;
  int64_t rs, cs;
  int MR;
  const T* block(int64_t i, int64_t mb, int64_t p, int64_t kb, T* buf) const {
    pack_a_strided(buf, A, rs, cs, i, mb, p, kb, MR);
    return buf;
  }
};

template <typename T>
struct BStrided {
  const T* B;
  int64_t rs, cs;
  int NR;
  void pack(int64_t p, int64_t kb, int64_t j, int64_t nb, T* buf) const {
    pack_b_strided(buf, B, rs, cs, p, kb, j, nb, NR);
  }
};

// C row-major with row stride ldc; optional bias per row (bias_row[i]) or per
// column (bias_col[j]) added in the epilogue.
template <typename T>
struct CRowMajor {
  T* C;
  int64_t ldc;
  const T* bias_row = nullptr;
  const T* bias_col = nullptr;
  T* tile(int64_t i, int64_t j, int64_t& ld) const {
    ld = ldc;
    return C + i * ldc + j;
  }
  void scatter(int64_t i, int64_t j, int mr, int nr, const T* t, int64_t ldt, bool acc) const {
    for (int r = 0; r < mr; ++r) {
      T* c = C + (i + r) * ldc + j;
      const T* s = t + r * ldt;
      if (acc)
        for (int q = 0; q < nr; ++q) c[q] += s[q];
      else
        for (int q = 0; q < nr; ++q) c[q] = s[q];
    }
  }
  void finish(int64_t i0, int64_t i1, int64_t j, int64_t nb) const {
    if (bias_row)
      for (int64_t i = i0; i < i1; ++i) {
        T* c = C + i * ldc + j;
        const T bv = bias_row[i];
        for (int64_t q = 0; q < nb; ++q) c[q] += bv;
      }
    if (bias_col)
      for (int64_t i = i0; i < i1; ++i) {
        T* c = C + i * ldc + j;
        for (int64_t q = 0; q < nb; ++q) c[q] += bias_col[j + q];
      }
  }
};

}  // namespace fastconv
