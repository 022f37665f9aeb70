// AVX-512 micro-kernels (this file alone is compiled with -mavx512f/dq/bw/vl).
//
// sgemm 12x32: 24 zmm accumulators (12 rows of A broadcast x 2 zmm of B);
// with the 2 B vectors and one broadcast that is 27 of the 32 zmm registers.
// Per k step: 2 vector loads + 12 scalar broadcasts for 24 FMAs, so the two
// FMA pipes, not the load ports, set the pace. dgemm 12x16 is the same shape
// in doubles. The GEMV and 4x3 dot kernels use 16/8 lanes with masked tails
// (nothing is read past the end of a row).
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "gemm/ukernel.h"
#include "gemm/ukernel_ref.h"

namespace fastconv {

namespace {

// B row k of a tile: its first register's lanes at rows(b, k), the second's
// `hi` elements further on (the next register for a packed panel or a run;
// the next output row's for the direct convolution's two-row tiles).
struct TwoHalves {
  int64_t hi;
  template <typename T, class Load>
  auto first(const T* bk, Load load) const { return load(bk); }
  template <typename T, class Load>
  auto second(const T* bk, Load load) const { return load(bk + hi); }
};
struct PackedRows : TwoHalves {
  int64_t stride;
  template <typename T>
  const T* operator()(const T* b, int64_t k) const { return b + k * stride; }
};
struct OffsetRows : TwoHalves {
  const int64_t* offs;
  template <typename T>
  const T* operator()(const T* b, int64_t k) const { return b + offs[k]; }
};
// Float B rows in four 8-lane quarters q apart (the direct convolution's
// four-row tiles of 8-wide outputs): each register from two 256-bit loads.
struct QuarterRows {
  const int64_t* offs;
  int64_t q;
  const float* operator()(const float* b, int64_t k) const { return b + offs[k]; }
  template <class Load>
  __m512 first(const float* bk, Load) const {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(bk)), _mm256_loadu_ps(bk + q), 1);
  }
  template <class Load>
  __m512 second(const float* bk, Load) const {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(bk + 2 * q)), _mm256_loadu_ps(bk + 3 * q), 1);
  }
};

// B rows read in place as GapLanes says: each register from a masked load of
// its lanes before the row end and a masked merge of those after it.
template <typename M>
struct GapRows {
  const int64_t* offs;
  int64_t at0, at1, g0, g1;
  M m0, m1;
  template <typename T>
  const T* operator()(const T* b, int64_t k) const { return b + offs[k]; }
  // lanes outside m from p, those in m from p + gap
  static __m512 half(const float* p, int64_t gap, M m) {
    return _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(M(~m), p), m, p + gap);
  }
  static __m512d half(const double* p, int64_t gap, M m) {
    return _mm512_mask_loadu_pd(_mm512_maskz_loadu_pd(M(~m), p), m, p + gap);
  }
  template <typename T, class Load>
  auto first(const T* bk, Load) const { return half(bk + at0, g0, m0); }
  template <typename T, class Load>
  auto second(const T* bk, Load) const { return half(bk + at1, g1, m1); }
};
template <typename M>
GapRows<M> gap_rows(const int64_t* offs, const GapLanes& g) {
  return GapRows<M>{offs, g.at[0], g.at[1], g.gap[0], g.gap[1], M(g.mask[0]), M(g.mask[1])};
}

// V: __m512 / __m512d; L = lanes per register. Rows 0..11 of the tile, two registers each.
template <typename T, typename V, int L, class Rows, class Load, class Set1, class Fma, class Add, class Store>
__attribute__((always_inline)) inline void gemm_12x2v_body(int64_t kc, const T* __restrict a, const T* __restrict b,
                                                           Rows rows, T* __restrict c, int64_t ldc, bool accumulate,
                                                           Load load, Set1 set1, Fma fma, Add add, Store store,
                                                           V zero) {
  V c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  V c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
  V c60 = zero, c61 = zero, c70 = zero, c71 = zero, c80 = zero, c81 = zero;
  V c90 = zero, c91 = zero, ca0 = zero, ca1 = zero, cb0 = zero, cb1 = zero;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = rows(b, k);
    const V b0 = rows.first(bk, load), b1 = rows.second(bk, load);
    V ai;
    ai = set1(a[0]); c00 = fma(ai, b0, c00); c01 = fma(ai, b1, c01);
    ai = set1(a[1]); c10 = fma(ai, b0, c10); c11 = fma(ai, b1, c11);
    ai = set1(a[2]); c20 = fma(ai, b0, c20); c21 = fma(ai, b1, c21);
    ai = set1(a[3]); c30 = fma(ai, b0, c30); c31 = fma(ai, b1, c31);
    ai = set1(a[4]); c40 = fma(ai, b0, c40); c41 = fma(ai, b1, c41);
    ai = set1(a[5]); c50 = fma(ai, b0, c50); c51 = fma(ai, b1, c51);
    ai = set1(a[6]); c60 = fma(ai, b0, c60); c61 = fma(ai, b1, c61);
    ai = set1(a[7]); c70 = fma(ai, b0, c70); c71 = fma(ai, b1, c71);
    ai = set1(a[8]); c80 = fma(ai, b0, c80); c81 = fma(ai, b1, c81);
    ai = set1(a[9]); c90 = fma(ai, b0, c90); c91 = fma(ai, b1, c91);
    ai = set1(a[10]); ca0 = fma(ai, b0, ca0); ca1 = fma(ai, b1, ca1);
    ai = set1(a[11]); cb0 = fma(ai, b0, cb0); cb1 = fma(ai, b1, cb1);
    a += 12;
  }
  auto put = [&](T* p, V v0, V v1) {
    if (accumulate) {
      v0 = add(load(p), v0);
      v1 = add(load(p + L), v1);
    }
    store(p, v0);
    store(p + L, v1);
  };
  put(c + 0 * ldc, c00, c01);
  put(c + 1 * ldc, c10, c11);
  put(c + 2 * ldc, c20, c21);
  put(c + 3 * ldc, c30, c31);
  put(c + 4 * ldc, c40, c41);
  put(c + 5 * ldc, c50, c51);
  put(c + 6 * ldc, c60, c61);
  put(c + 7 * ldc, c70, c71);
  put(c + 8 * ldc, c80, c81);
  put(c + 9 * ldc, c90, c91);
  put(c + 10 * ldc, ca0, ca1);
  put(c + 11 * ldc, cb0, cb1);
}

template <class Rows>
__attribute__((always_inline)) inline void sgemm_12x32(int64_t kc, const float* a, const float* b, Rows rows, float* c,
                                                       int64_t ldc, bool acc) {
  gemm_12x2v_body<float, __m512, 16>(
      kc, a, b, rows, c, ldc, acc, [](const float* p) { return _mm512_loadu_ps(p); },
      [](float v) { return _mm512_set1_ps(v); }, [](__m512 x, __m512 y, __m512 z) { return _mm512_fmadd_ps(x, y, z); },
      [](__m512 x, __m512 y) { return _mm512_add_ps(x, y); }, [](float* p, __m512 v) { _mm512_storeu_ps(p, v); },
      _mm512_setzero_ps());
}

template <class Rows>
__attribute__((always_inline)) inline void dgemm_12x16(int64_t kc, const double* a, const double* b, Rows rows,
                                                       double* c, int64_t ldc, bool acc) {
  gemm_12x2v_body<double, __m512d, 8>(
      kc, a, b, rows, c, ldc, acc, [](const double* p) { return _mm512_loadu_pd(p); },
      [](double v) { return _mm512_set1_pd(v); },
      [](__m512d x, __m512d y, __m512d z) { return _mm512_fmadd_pd(x, y, z); },
      [](__m512d x, __m512d y) { return _mm512_add_pd(x, y); }, [](double* p, __m512d v) { _mm512_storeu_pd(p, v); },
      _mm512_setzero_pd());
}

void sgemm_ukernel_12x32__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  sgemm_12x32(kc, a, b, PackedRows{{16}, 32}, c, ldc, acc);
}
void sgemm_ukernel_off_12x32__avx512(int64_t kc, const float* a, const float* b, const int64_t* offs, float* c,
                                     int64_t ldc, bool acc) {
  sgemm_12x32(kc, a, b, OffsetRows{{16}, offs}, c, ldc, acc);
}
void sgemm_ukernel_off2_12x32__avx512(int64_t kc, const float* a, const float* b, const int64_t* offs, int64_t hi,
                                      float* c, int64_t ldc, bool acc) {
  sgemm_12x32(kc, a, b, OffsetRows{{hi}, offs}, c, ldc, acc);
}
void sgemm_ukernel_off4_12x32__avx512(int64_t kc, const float* a, const float* b, const int64_t* offs, int64_t q,
                                      float* c, int64_t ldc, bool acc) {
  sgemm_12x32(kc, a, b, QuarterRows{offs, q}, c, ldc, acc);
}
// The short last row panel (UKernelEdgeFn): R = 4 or 8 rows of the 12-row
// packed panel, two vectors wide, the first `rows` of them stored. Each
// accumulator sums over k in order, as the full kernel's does.
// SPLIT (UKernelEdgeSplitFn, R = 8): rows 8..11 of the panel a, then rows
// 0..3 of the next one, 12*kc further on.
template <int R, typename T, typename V, int L, class Rows, class Ops, bool SPLIT = false>
__attribute__((always_inline)) inline void gemm_edge_body(int rows, int64_t kc, const T* __restrict a,
                                                          const T* __restrict b, Rows rowsof, T* __restrict c,
                                                          int64_t ldc, bool accumulate) {
  static_assert(!SPLIT || R == 8, "a split tile is 4 + 4 rows");
  const T* __restrict a2 = a + 12 * kc;
  if (SPLIT) a += 8;
  V acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = Ops::zero();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = rowsof(b, k);
    const V b0 = rowsof.first(bk, Ops::load), b1 = rowsof.second(bk, Ops::load);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V ai = Ops::set1(!SPLIT || r < 4 ? a[r] : a2[r - 4]);
      acc[r][0] = Ops::fma(ai, b0, acc[r][0]);
      acc[r][1] = Ops::fma(ai, b1, acc[r][1]);
    }
    a += 12;
    if (SPLIT) a2 += 12;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    T* p = c + r * ldc;
    V v0 = acc[r][0], v1 = acc[r][1];
    if (accumulate) {
      v0 = Ops::add(Ops::load(p), v0);
      v1 = Ops::add(Ops::load(p + L), v1);
    }
    Ops::store(p, v0);
    Ops::store(p + L, v1);
  }
}

void dgemm_ukernel_12x16__avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc) {
  dgemm_12x16(kc, a, b, PackedRows{{8}, 16}, c, ldc, acc);
}
void dgemm_ukernel_off_12x16__avx512(int64_t kc, const double* a, const double* b, const int64_t* offs, double* c,
                                     int64_t ldc, bool acc) {
  dgemm_12x16(kc, a, b, OffsetRows{{8}, offs}, c, ldc, acc);
}
void dgemm_ukernel_off2_12x16__avx512(int64_t kc, const double* a, const double* b, const int64_t* offs, int64_t hi,
                                      double* c, int64_t ldc, bool acc) {
  dgemm_12x16(kc, a, b, OffsetRows{{hi}, offs}, c, ldc, acc);
}

#include "gemm/ukernel_templates.h"
#include "gemm/transpose_x86.h"

void sdot4x3__avx512(int64_t len, const float* const* a, const float* const* b, float* out) {
  dot4x3_body<float, __m512>(
      len, a, b, out, 16, [](const float* p) { return _mm512_loadu_ps(p); },
      [](__m512 x, __m512 y, __m512 z) { return _mm512_fmadd_ps(x, y, z); },
      [](__m512 v) { return _mm512_reduce_add_ps(v); }, _mm512_setzero_ps());
}
void ddot4x3__avx512(int64_t len, const double* const* a, const double* const* b, double* out) {
  dot4x3_body<double, __m512d>(
      len, a, b, out, 8, [](const double* p) { return _mm512_loadu_pd(p); },
      [](__m512d x, __m512d y, __m512d z) { return _mm512_fmadd_pd(x, y, z); },
      [](__m512d v) { return _mm512_reduce_add_pd(v); }, _mm512_setzero_pd());
}

struct OpsF512 {
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 set1(float v) { return _mm512_set1_ps(v); }
  static __m512 fma(__m512 x, __m512 y, __m512 z) { return _mm512_fmadd_ps(x, y, z); }
  static __m512 add(__m512 x, __m512 y) { return _mm512_add_ps(x, y); }
  static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  static __m512 zero() { return _mm512_setzero_ps(); }
  using Mask = __mmask16;
  static __m512 load_mask(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_mask(Mask m, float* p, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
};
struct OpsD512 {
  static __m512d load(const double* p) { return _mm512_loadu_pd(p); }
  static __m512d set1(double v) { return _mm512_set1_pd(v); }
  static __m512d fma(__m512d x, __m512d y, __m512d z) { return _mm512_fmadd_pd(x, y, z); }
  static __m512d add(__m512d x, __m512d y) { return _mm512_add_pd(x, y); }
  static void store(double* p, __m512d v) { _mm512_storeu_pd(p, v); }
  static __m512d zero() { return _mm512_setzero_pd(); }
  using Mask = __mmask8;
  static __m512d load_mask(Mask m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store_mask(Mask m, double* p, __m512d v) { _mm512_mask_storeu_pd(p, m, v); }
};

template <typename T, typename V, int L, class Ops>
void gemm_edge(int rows, int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi, T* c, int64_t ldc,
               bool acc) {
  if constexpr (std::is_same<T, float>::value) {
    if (offs && hi < 0) {  // quarters -hi apart (four-row tiles)
      if (rows <= 4)
        gemm_edge_body<4, T, V, L, QuarterRows, Ops>(rows, kc, a, b, QuarterRows{offs, -hi}, c, ldc, acc);
      else
        gemm_edge_body<8, T, V, L, QuarterRows, Ops>(rows, kc, a, b, QuarterRows{offs, -hi}, c, ldc, acc);
      return;
    }
  }
  if (rows <= 4) {
    if (offs)
      gemm_edge_body<4, T, V, L, OffsetRows, Ops>(rows, kc, a, b, OffsetRows{{hi}, offs}, c, ldc, acc);
    else
      gemm_edge_body<4, T, V, L, PackedRows, Ops>(rows, kc, a, b, PackedRows{{L}, 2 * L}, c, ldc, acc);
  } else {
    if (offs)
      gemm_edge_body<8, T, V, L, OffsetRows, Ops>(rows, kc, a, b, OffsetRows{{hi}, offs}, c, ldc, acc);
    else
      gemm_edge_body<8, T, V, L, PackedRows, Ops>(rows, kc, a, b, PackedRows{{L}, 2 * L}, c, ldc, acc);
  }
}
template <typename T, typename V, int L, class Ops>
void gemm_edge_split(int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi, T* c, int64_t ldc,
                     bool acc) {
  if constexpr (std::is_same<T, float>::value) {
    if (offs && hi < 0) {
      gemm_edge_body<8, T, V, L, QuarterRows, Ops, true>(8, kc, a, b, QuarterRows{offs, -hi}, c, ldc, acc);
      return;
    }
  }
  if (offs)
    gemm_edge_body<8, T, V, L, OffsetRows, Ops, true>(8, kc, a, b, OffsetRows{{hi}, offs}, c, ldc, acc);
  else
    gemm_edge_body<8, T, V, L, PackedRows, Ops, true>(8, kc, a, b, PackedRows{{L}, 2 * L}, c, ldc, acc);
}
void sgemm_ukernel_edge_split_12x32__avx512(int64_t kc, const float* a, const float* b, const int64_t* offs,
                                            int64_t hi, float* c, int64_t ldc, bool acc) {
  gemm_edge_split<float, __m512, 16, OpsF512>(kc, a, b, offs, hi, c, ldc, acc);
}
void dgemm_ukernel_edge_split_12x16__avx512(int64_t kc, const double* a, const double* b, const int64_t* offs,
                                            int64_t hi, double* c, int64_t ldc, bool acc) {
  gemm_edge_split<double, __m512d, 8, OpsD512>(kc, a, b, offs, hi, c, ldc, acc);
}
// UKernelEdgePairFn: R = 4 or 6 rows of the 12-row panel x four registers
// (two tiles of two), the first `rows` stored, each tile's lanes under a mask.
template <int R, typename T, typename V, int L, class Ops>
__attribute__((always_inline)) inline void gemm_edge_pair_body(int rows, int64_t kc, const T* __restrict a,
                                                               const T* __restrict b, const int64_t* offs,
                                                               int64_t hi, int64_t d2, T* c, int64_t n1, T* c2,
                                                               int64_t n2, int64_t ldc, const T* bias,
                                                               bool accumulate) {
  V acc[R][4];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = Ops::zero();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + offs[k];
    const V b0 = Ops::load(bk), b1 = Ops::load(bk + hi), b2 = Ops::load(bk + d2), b3 = Ops::load(bk + d2 + hi);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const V ai = Ops::set1(a[r]);
      acc[r][0] = Ops::fma(ai, b0, acc[r][0]);
      acc[r][1] = Ops::fma(ai, b1, acc[r][1]);
      acc[r][2] = Ops::fma(ai, b2, acc[r][2]);
      acc[r][3] = Ops::fma(ai, b3, acc[r][3]);
    }
    a += 12;
  }
  // lanes of each register stored: [0, n) of the tile's 2L
  auto lanes = [](int64_t n, int half) {
    const int64_t m = std::min<int64_t>(L, std::max<int64_t>(0, n - half * L));
    return typename Ops::Mask((uint32_t(1) << m) - 1u);
  };
  const typename Ops::Mask m0 = lanes(n1, 0), m1 = lanes(n1, 1), m2 = lanes(n2, 0), m3 = lanes(n2, 1);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    T* p = c + r * ldc;
    T* p2 = c2 + r * ldc;
    V v0 = acc[r][0], v1 = acc[r][1], v2 = acc[r][2], v3 = acc[r][3];
    if (accumulate) {
      v0 = Ops::add(Ops::load_mask(m0, p), v0);
      v1 = Ops::add(Ops::load_mask(m1, p + L), v1);
      v2 = Ops::add(Ops::load_mask(m2, p2), v2);
      v3 = Ops::add(Ops::load_mask(m3, p2 + L), v3);
    }
    if (bias) {
      const V bv = Ops::set1(bias[r]);
      v0 = Ops::add(v0, bv);
      v1 = Ops::add(v1, bv);
      v2 = Ops::add(v2, bv);
      v3 = Ops::add(v3, bv);
    }
    Ops::store_mask(m0, p, v0);
    Ops::store_mask(m1, p + L, v1);
    Ops::store_mask(m2, p2, v2);
    Ops::store_mask(m3, p2 + L, v3);
  }
}
template <typename T, typename V, int L, class Ops>
void gemm_edge_pair(int rows, int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi, int64_t d2, T* c,
                    int64_t n1, T* c2, int64_t n2, int64_t ldc, const T* bias, bool acc) {
  if (rows <= 4)
    gemm_edge_pair_body<4, T, V, L, Ops>(rows, kc, a, b, offs, hi, d2, c, n1, c2, n2, ldc, bias, acc);
  else
    gemm_edge_pair_body<6, T, V, L, Ops>(rows, kc, a, b, offs, hi, d2, c, n1, c2, n2, ldc, bias, acc);
}
void sgemm_ukernel_edge_pair_12x32__avx512(int rows, int64_t kc, const float* a, const float* b, const int64_t* offs,
                                           int64_t hi, int64_t d2, float* c, int64_t n1, float* c2, int64_t n2,
                                           int64_t ldc, const float* bias, bool acc) {
  gemm_edge_pair<float, __m512, 16, OpsF512>(rows, kc, a, b, offs, hi, d2, c, n1, c2, n2, ldc, bias, acc);
}
void dgemm_ukernel_edge_pair_12x16__avx512(int rows, int64_t kc, const double* a, const double* b,
                                           const int64_t* offs, int64_t hi, int64_t d2, double* c, int64_t n1,
                                           double* c2, int64_t n2, int64_t ldc, const double* bias, bool acc) {
  gemm_edge_pair<double, __m512d, 8, OpsD512>(rows, kc, a, b, offs, hi, d2, c, n1, c2, n2, ldc, bias, acc);
}
// UKernelGapFn over one element type: `full` is the 12-row kernel on GapRows.
template <typename T, typename V, int L, typename M, class Ops, class Full>
void gemm_gap(int rows, bool split, int64_t kc, const T* a, const T* b, const int64_t* offs, const GapLanes& g, T* c,
              int64_t ldc, bool acc, Full full) {
  const GapRows<M> r = gap_rows<M>(offs, g);
  if (split)
    gemm_edge_body<8, T, V, L, GapRows<M>, Ops, true>(8, kc, a, b, r, c, ldc, acc);
  else if (rows == 12)
    full(kc, a, b, r, c, ldc, acc);
  else if (rows <= 4)
    gemm_edge_body<4, T, V, L, GapRows<M>, Ops>(rows, kc, a, b, r, c, ldc, acc);
  else
    gemm_edge_body<8, T, V, L, GapRows<M>, Ops>(rows, kc, a, b, r, c, ldc, acc);
}
void sgemm_ukernel_gap_12x32__avx512(int rows, bool split, int64_t kc, const float* a, const float* b,
                                     const int64_t* offs, const GapLanes& g, float* c, int64_t ldc, bool acc) {
  gemm_gap<float, __m512, 16, __mmask16, OpsF512>(rows, split, kc, a, b, offs, g, c, ldc, acc, [](auto... args) {
    sgemm_12x32(args...);
  });
}
void dgemm_ukernel_gap_12x16__avx512(int rows, bool split, int64_t kc, const double* a, const double* b,
                                     const int64_t* offs, const GapLanes& g, double* c, int64_t ldc, bool acc) {
  gemm_gap<double, __m512d, 8, __mmask8, OpsD512>(rows, split, kc, a, b, offs, g, c, ldc, acc, [](auto... args) {
    dgemm_12x16(args...);
  });
}
void sgemm_ukernel_edge_12x32__avx512(int rows, int64_t kc, const float* a, const float* b, const int64_t* offs,
                                      int64_t hi, float* c, int64_t ldc, bool acc) {
  gemm_edge<float, __m512, 16, OpsF512>(rows, kc, a, b, offs, hi, c, ldc, acc);
}
void dgemm_ukernel_edge_12x16__avx512(int rows, int64_t kc, const double* a, const double* b, const int64_t* offs,
                                      int64_t hi, double* c, int64_t ldc, bool acc) {
  gemm_edge<double, __m512d, 8, OpsD512>(rows, kc, a, b, offs, hi, c, ldc, acc);
}

// Memory-bound matrix-vector products (gemv_body); the tail is a masked load,
// so nothing past k is read.
void sgemv__avx512(int64_t n, int64_t k, const float* __restrict w, int64_t ldw, const float* __restrict x,
                   float* __restrict y) {
  const __mmask16 tail = __mmask16((1u << (k % 16)) - 1u);
  gemv_body<float, __m512, OpsF512>(
      n, k, w, ldw, x, y, 16, [tail](const float* p) { return _mm512_maskz_loadu_ps(tail, p); },
      [](__m512 v) { return _mm512_reduce_add_ps(v); });
}
void dgemv__avx512(int64_t n, int64_t k, const double* __restrict w, int64_t ldw, const double* __restrict x,
                   double* __restrict y) {
  const __mmask8 tail = __mmask8((1u << (k % 8)) - 1u);
  gemv_body<double, __m512d, OpsD512>(
      n, k, w, ldw, x, y, 8, [tail](const double* p) { return _mm512_maskz_loadu_pd(tail, p); },
      [](__m512d v) { return _mm512_reduce_add_pd(v); });
}

// linear's forward: 8 rows of the weight read in place x a packed 2-zmm panel
// (16 accumulators; row pointers, not registers, are what limits MR here).
void sgemm_ukernel_rows_8x32__avx512(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                                     bool acc) {
  gemm_rows_kernel<float, __m512, 8, 16, OpsF512>(kc, a, lda, b, c, ldc, acc);
}
void dgemm_ukernel_rows_8x16__avx512(int64_t kc, const double* a, int64_t lda, const double* b, double* c,
                                     int64_t ldc, bool acc) {
  gemm_rows_kernel<double, __m512d, 8, 8, OpsD512>(kc, a, lda, b, c, ldc, acc);
}
// Small-OC convolutions: 6 output positions x 32 (16) output channels.
void sgemm_ukernel_gather_6x32__avx512(int64_t kc, const float* const* a, const int64_t* offs, const float* b,
                                       float* c, int64_t ldc, bool acc) {
  gemm_gather_kernel<float, __m512, 6, 16, OpsF512>(kc, a, offs, b, c, ldc, acc);
}
void dgemm_ukernel_gather_6x16__avx512(int64_t kc, const double* const* a, const int64_t* offs, const double* b,
                                       double* c, int64_t ldc, bool acc) {
  gemm_gather_kernel<double, __m512d, 6, 8, OpsD512>(kc, a, offs, b, c, ldc, acc);
}
// Half-width tiles (one vector per position): 8 positions x 16 (8) channels.
void sgemm_ukernel_gather_8x16__avx512(int64_t kc, const float* const* a, const int64_t* offs, const float* b,
                                       float* c, int64_t ldc, bool acc) {
  gemm_gather_kernel<float, __m512, 8, 16, OpsF512, 1>(kc, a, offs, b, c, ldc, acc);
}
void dgemm_ukernel_gather_8x8__avx512(int64_t kc, const double* const* a, const int64_t* offs, const double* b,
                                      double* c, int64_t ldc, bool acc) {
  gemm_gather_kernel<double, __m512d, 8, 8, OpsD512, 1>(kc, a, offs, b, c, ldc, acc);
}

// A block of up to 16 x 16 in zmm registers: d[c*ldd + r] = s[r*lds + c], r <
// nr, c < nc. Rows past nr are zeros in the registers (not read), columns past
// nc are not read (masked loads); only output rows c < nc and their lanes r <
// nr are stored. Pairs of rows interleaved, then 4x4 blocks per 128-bit lane
// (shuffle_ps), then the lanes gathered across registers in two rounds of
// shuffle_f32x4.
template <class Row>
inline void transpose16(Row row, int nr, int nc, float* d, int64_t ldd, __mmask16 sm) {
  const __mmask16 lm = __mmask16((1u << nc) - 1u);  // (nc <= 16)
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = i < nr ? _mm512_maskz_loadu_ps(lm, row(i)) : _mm512_setzero_ps();
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4j + m], 128-bit lane q: rows 4j..4j+3 of column 4q + m
  for (int j = 0; j < 4; ++j) {
    r[4 * j + 0] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
    r[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
    r[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
    r[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88), v1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD);
    const __m512 v2 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88), v3 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
    const __m512 out[4] = {_mm512_shuffle_f32x4(v0, v2, 0x88), _mm512_shuffle_f32x4(v1, v3, 0x88),
                           _mm512_shuffle_f32x4(v0, v2, 0xDD), _mm512_shuffle_f32x4(v1, v3, 0xDD)};
    for (int q = 0; q < 4; ++q)
      if (4 * q + m < nc) _mm512_mask_storeu_ps(d + (4 * q + m) * ldd, sm, out[q]);
  }
}

// Blocks of 16 rows while at least 9 are left (packing 12-row weight panels,
// 32-row im2col panels), the rest on the 8x8 / 4x4 transposes. In perf
// profiles at 1 thread the transposes' share went 2.8 -> 1.6% of AlexNet
// conv2's forward (its weight packed per call) and 4.9 -> 3.1% of its weight
// gradient; alternated processes, 3 runs each: that weight gradient
// 1.874-1.931 -> 1.863-1.887 ms, 32x3x32x32 -> 64's 0.707-0.731 -> 0.689-0.696.
void stranspose__avx512(int64_t rows, int64_t cols, const float* s, int64_t lds, float* d, int64_t ldd) {
  int64_t r0 = 0;
  for (; rows - r0 >= 9; r0 += 16) {
    const int nr = int(std::min<int64_t>(16, rows - r0));
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const float* s0 = s + r0 * lds + c0;
      transpose16([=](int i) { return s0 + i * lds; }, nr, int(std::min<int64_t>(16, cols - c0)), d + c0 * ldd + r0,
                  ldd, __mmask16((1u << nr) - 1u));
    }
  }
  if (r0 < rows) transpose_f32_x86(rows - r0, cols, s + r0 * lds, lds, d + r0, ldd);
}

// TransposeRunsFn: the same blocks from rows read in place at src + offs[r],
// lanes [rows, width) stored as zeros.
void stranspose_runs__avx512(int64_t rows, int64_t width, int64_t cols, const float* src, const int64_t* offs,
                             float* d, int64_t ldd) {
  for (int64_t c0 = 0; c0 < cols; c0 += 16) {
    const int nc = int(std::min<int64_t>(16, cols - c0));
    for (int64_t r0 = 0; r0 < width; r0 += 16) {
      const int nr = int(std::clamp<int64_t>(rows - r0, 0, 16)), nw = int(std::min<int64_t>(16, width - r0));
      const float* s0 = src + c0;
      const int64_t* o = offs + r0;
      transpose16([=](int i) { return s0 + o[i]; }, nr, nc, d + c0 * ldd + r0, ldd, __mmask16((1u << nw) - 1u));
    }
  }
}
void dtranspose__avx512(int64_t rows, int64_t cols, const double* s, int64_t lds, double* d, int64_t ldd) {
  ref::transpose<double>(rows, cols, s, lds, d, ldd);
}

// Panel rows from runs (copy_runs in ukernel.h): at most two masked vectors
// per row, whatever the run length; masked-off lanes are neither read nor written.
void scopy_runs__avx512(int64_t kb, const float* src, const int64_t* offs, int64_t cnt, float* dst, int64_t ldd) {
  if (cnt == 16) {  // whole rows of 16 (the common 16-wide image): plain moves
    for (int64_t k = 0; k < kb; ++k) _mm512_storeu_ps(dst + k * ldd, _mm512_loadu_ps(src + offs[k]));
    return;
  }
  const int64_t c0 = std::min<int64_t>(cnt, 16);
  const __mmask16 m[2] = {__mmask16((1u << c0) - 1u), __mmask16((1u << (cnt - c0)) - 1u)};
  copy_runs_body(kb, src, offs, dst, ldd, 16, cnt > 16, [&m](float* d, const float* s, int h) {
    _mm512_mask_storeu_ps(d, m[h], _mm512_maskz_loadu_ps(m[h], s));
  });
}
void dcopy_runs__avx512(int64_t kb, const double* src, const int64_t* offs, int64_t cnt, double* dst, int64_t ldd) {
  const int64_t c0 = std::min<int64_t>(cnt, 8);
  const __mmask8 m[2] = {__mmask8((1u << c0) - 1u), __mmask8((1u << (cnt - c0)) - 1u)};
  copy_runs_body(kb, src, offs, dst, ldd, 8, cnt > 8, [&m](double* d, const double* s, int h) {
    _mm512_mask_storeu_pd(d, m[h], _mm512_maskz_loadu_pd(m[h], s));
  });
}

// Row split into column phases (split_row in ukernel.h), strides 2 and 4: a
// block of 16 outputs per phase from `stride` loads, each under the mask of
// its lanes inside [0, W) (the padding lanes load as zero, and nothing outside
// the row is read), then two-source permutes: one per phase at stride 2, two
// levels of them at stride 4.
inline __mmask16 first_lanes(int64_t k) { return k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << std::max<int64_t>(k, 0)) - 1u); }

// The mask of the lanes of s[i0, i0 + 16) inside [0, W)
inline __mmask16 inside_mask(int64_t i0, int64_t W) {
  const int64_t lo = std::min<int64_t>(16, std::max<int64_t>(0, -i0)), hi = std::min<int64_t>(16, std::max<int64_t>(0, W - i0));
  return hi <= lo ? __mmask16(0) : __mmask16(first_lanes(hi) & ~first_lanes(lo));
}

// 16 floats from s[i0, i0 + 16) under mask m (zero elsewhere): s + i0 may
// point outside the row, and only the masked-in lanes are read
inline __m512 load_masked(const float* s, int64_t i0, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(s) + i0 * int64_t(sizeof(float))));
}

// One block of 16 outputs per phase of one row: `stride` loads under their
// masks (lm), the permutes, the stores under sm.
inline void split_block(const float* s, int64_t i0, int64_t stride, const __mmask16* lm, __mmask16 sm, float* d,
                        int64_t dstep) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 l0 = load_masked(s, i0, lm[0]), l1 = load_masked(s, i0 + 16, lm[1]);
  if (stride == 2) {
    _mm512_mask_storeu_ps(d, sm, _mm512_permutex2var_ps(l0, even, l1));
    _mm512_mask_storeu_ps(d + dstep, sm, _mm512_permutex2var_ps(l0, odd, l1));
    return;
  }
  const __m512 l2 = load_masked(s, i0 + 32, lm[2]), l3 = load_masked(s, i0 + 48, lm[3]);
  const __m512 e0 = _mm512_permutex2var_ps(l0, even, l1), e1 = _mm512_permutex2var_ps(l2, even, l3);
  const __m512 o0 = _mm512_permutex2var_ps(l0, odd, l1), o1 = _mm512_permutex2var_ps(l2, odd, l3);
  _mm512_mask_storeu_ps(d, sm, _mm512_permutex2var_ps(e0, even, e1));
  _mm512_mask_storeu_ps(d + dstep, sm, _mm512_permutex2var_ps(o0, even, o1));
  _mm512_mask_storeu_ps(d + 2 * dstep, sm, _mm512_permutex2var_ps(e0, odd, e1));
  _mm512_mask_storeu_ps(d + 3 * dstep, sm, _mm512_permutex2var_ps(o0, odd, o1));
}

void ssplit_row__avx512(int64_t rows, int64_t n, const float* s, int64_t ls, int64_t W, int64_t start, int64_t stride,
                        float* d, int64_t ld, int64_t dstep) {
  if (stride != 2 && stride != 4) {
    ref::split_row(rows, n, s, ls, W, start, stride, d, ld, dstep);
    return;
  }
  // The masks depend on the block, not the row: for rows of up to 8 blocks
  // (128 outputs per phase) they are worked out once for all the rows.
  constexpr int64_t kBlocks = 8;
  const int64_t blocks = (n + 15) / 16;
  if (blocks <= kBlocks) {
    __mmask16 lm[kBlocks][4], sm[kBlocks];
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t j = 0; j < stride; ++j) lm[b][j] = inside_mask(start + 16 * b * stride + 16 * j, W);
      sm[b] = first_lanes(n - 16 * b);
    }
    for (int64_t q = 0; q < rows; ++q, s += ls, d += ld)
      for (int64_t b = 0; b < blocks; ++b) split_block(s, start + 16 * b * stride, stride, lm[b], sm[b], d + 16 * b, dstep);
    return;
  }
  for (int64_t q = 0; q < rows; ++q, s += ls, d += ld)
    for (int64_t v = 0; v < n; v += 16) {
      const int64_t i0 = start + v * stride;
      __mmask16 lm[4];
      for (int64_t j = 0; j < stride; ++j) lm[j] = inside_mask(i0 + 16 * j, W);
      split_block(s, i0, stride, lm, first_lanes(n - v), d + v, dstep);
    }
}

// d += s (add_to in ukernel.h), the tail under a mask.
void sadd_to__avx512(int64_t n, const float* s, float* d) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, _mm512_add_ps(_mm512_loadu_ps(d + i), _mm512_loadu_ps(s + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(d + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, s + i)));
  }
}
// d[2i] = a[i], d[2i + 1] = b[i] (interleave2 in ukernel.h): 16 pairs per
// two stores, the tail under masks.
void sinterleave2__avx512(int64_t n, const float* a, const float* b, float* d) {
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(a + i), y = _mm512_loadu_ps(b + i);
    _mm512_storeu_ps(d + 2 * i, _mm512_permutex2var_ps(x, lo, y));
    _mm512_storeu_ps(d + 2 * i + 16, _mm512_permutex2var_ps(x, hi, y));
  }
  if (i < n) {
    const int64_t r = n - i;  // 1..15 pairs: 2r outputs
    const __mmask16 m = __mmask16((1u << r) - 1u);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
    const __mmask16 m0 = r >= 8 ? __mmask16(0xFFFF) : __mmask16((1u << (2 * r)) - 1u);
    const __mmask16 m1 = r > 8 ? __mmask16((1u << (2 * (r - 8))) - 1u) : __mmask16(0);
    _mm512_mask_storeu_ps(d + 2 * i, m0, _mm512_permutex2var_ps(x, lo, y));
    if (m1) _mm512_mask_storeu_ps(d + 2 * i + 16, m1, _mm512_permutex2var_ps(x, hi, y));
  }
}

void dadd_to__avx512(int64_t n, const double* s, double* d) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(d + i, _mm512_add_pd(_mm512_loadu_pd(d + i), _mm512_loadu_pd(s + i)));
  if (i < n) {
    const __mmask8 m = __mmask8((1u << (n - i)) - 1u);
    _mm512_mask_storeu_pd(d + i, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, d + i), _mm512_maskz_loadu_pd(m, s + i)));
  }
}

// FMA peak probe (ukernel_templates.h).
double fma_probe__avx512(int64_t iters, float* sink) {
  return fma_probe_body<24, 16, __m512>(
      iters, sink, [](float v) { return _mm512_set1_ps(v); }, [](auto x, auto y, auto z) { return _mm512_fmadd_ps(x, y, z); },
      [](auto x, auto y) { return _mm512_add_ps(x, y); }, [](float* p, __m512 v) { _mm512_store_ps(p, v); });
}

// Cache blocks: the kc x 32 B micro-panel (kc=192: 24 KiB of floats) stays in
// L1 while 12-row A panels stream from an mc x kc block (mc=144: 108 KiB) in L2.
// The direct convolution slices its reduction at up to 2304 (a 3x3 kernel's
// over 256 channels in one slice). Alternated in one process against kc
// (in slices of 192 or fewer, equal ones), 1 thread: 32x256x8x8 3x3 forward
// 9.67-9.93 -> 9.60-9.72 ms, its dx 10.15 -> 9.83; 32x128x16x16 dx 9.96 ->
// 9.68; AlexNet conv2 1.83-1.87 -> 1.79-1.82, its dx 2.02 -> 1.99; 8x512x8x8
// 9.93 -> 9.75, its dx 11.03 -> 10.57; 2 threads within noise to 2% faster.
// (With K <= 2*kc, 256x28x28 1x1 at K = 256 was 1-4% slower in one slice,
// and AVX2 gains nothing: its tables leave it at kc.)
const KernelTable kAvx512 = {
    "avx512",
    {sgemm_ukernel_12x32__avx512, sgemm_ukernel_off_12x32__avx512, sgemv__avx512, sdot4x3__avx512, 12, 32, 192, 144,
     4096, "sgemm_ukernel_12x32__avx512", sgemm_ukernel_rows_8x32__avx512, 8,
     stranspose__avx512, sgemm_ukernel_gather_6x32__avx512, 6, sgemm_ukernel_gather_8x16__avx512, 8, scopy_runs__avx512, ssplit_row__avx512, sadd_to__avx512, sgemm_ukernel_edge_12x32__avx512,
     sgemm_ukernel_off2_12x32__avx512, sgemm_ukernel_off4_12x32__avx512, sgemm_ukernel_edge_split_12x32__avx512, 2304,
     sgemm_ukernel_edge_pair_12x32__avx512, sgemm_ukernel_gap_12x32__avx512, stranspose_runs__avx512,
     sinterleave2__avx512},
    {dgemm_ukernel_12x16__avx512, dgemm_ukernel_off_12x16__avx512, dgemv__avx512, ddot4x3__avx512, 12, 16, 192, 72,
     2048, "dgemm_ukernel_12x16__avx512", dgemm_ukernel_rows_8x16__avx512, 8,
     dtranspose__avx512, dgemm_ukernel_gather_6x16__avx512, 6, dgemm_ukernel_gather_8x8__avx512, 8, dcopy_runs__avx512, ref::split_row<double>, dadd_to__avx512, dgemm_ukernel_edge_12x16__avx512,
     dgemm_ukernel_off2_12x16__avx512, nullptr, dgemm_ukernel_edge_split_12x16__avx512, 2304,
     dgemm_ukernel_edge_pair_12x16__avx512, dgemm_ukernel_gap_12x16__avx512},
    fma_probe__avx512,
};

}  // namespace

const KernelTable* avx512_kernels() { return &kAvx512; }

}  // namespace fastconv
