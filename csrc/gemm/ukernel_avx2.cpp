// AVX2 + FMA micro-kernels (this file alone is compiled with -mavx2 -mfma).
#include <immintrin.h>

#include <algorithm>

#include "gemm/ukernel.h"
#include "gemm/ukernel_ref.h"

namespace fastconv {

namespace {

// sgemm 6x16: 12 ymm accumulators, 2 ymm of B, 1 broadcast of A per row.
//
//            b[0..7]   b[8..15]
//   a[0]    c0[0]     c0[1]
//   a[1]    c1[0]     c1[1]
//   ...
//   a[5]    c5[0]     c5[1]
//
// One body, two ways to find row k of B: packed (b + 16k) or in place
// (b + offs[k], direct convolution); its second register's lanes `hi` further
// on (the next register, or the next output row's for two-row tiles).
struct PackedRows {
  int64_t stride, hi;
  const float* operator()(const float* b, int64_t k) const { return b + k * stride; }
  const double* operator()(const double* b, int64_t k) const { return b + k * stride; }
};
struct OffsetRows {
  const int64_t* offs;
  int64_t hi;
  const float* operator()(const float* b, int64_t k) const { return b + offs[k]; }
  const double* operator()(const double* b, int64_t k) const { return b + offs[k]; }
};

template <class Rows>
__attribute__((always_inline)) inline void sgemm_6x16_body(int64_t kc, const float* __restrict a,
                                                           const float* __restrict b, Rows rows,
                                                           float* __restrict c, int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = rows(b, k);
    const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + rows.hi);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += 6;
  }
  auto store = [&](float* p, __m256 v0, __m256 v1) {
    if (accumulate) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(p), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(p + 8), v1);
    }
    _mm256_storeu_ps(p, v0);
    _mm256_storeu_ps(p + 8, v1);
  };
  store(c + 0 * ldc, c00, c01);
  store(c + 1 * ldc, c10, c11);
  store(c + 2 * ldc, c20, c21);
  store(c + 3 * ldc, c30, c31);
  store(c + 4 * ldc, c40, c41);
  store(c + 5 * ldc, c50, c51);
}

void sgemm_ukernel_6x16__avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  sgemm_6x16_body(kc, a, b, PackedRows{16, 8}, c, ldc, acc);
}
void sgemm_ukernel_off_6x16__avx2(int64_t kc, const float* a, const float* b, const int64_t* offs, float* c,
                                  int64_t ldc, bool acc) {
  sgemm_6x16_body(kc, a, b, OffsetRows{offs, 8}, c, ldc, acc);
}
void sgemm_ukernel_off2_6x16__avx2(int64_t kc, const float* a, const float* b, const int64_t* offs, int64_t hi,
                                   float* c, int64_t ldc, bool acc) {
  sgemm_6x16_body(kc, a, b, OffsetRows{offs, hi}, c, ldc, acc);
}

// dgemm 6x8: the same shape in doubles (4 lanes per ymm).
template <class Rows>
__attribute__((always_inline)) inline void dgemm_6x8_body(int64_t kc, const double* __restrict a,
                                                          const double* __restrict b, Rows rows,
                                                          double* __restrict c, int64_t ldc, bool accumulate) {
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
  __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
  __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const double* bk = rows(b, k);
    const __m256d b0 = _mm256_loadu_pd(bk), b1 = _mm256_loadu_pd(bk + rows.hi);
    __m256d ai = _mm256_broadcast_sd(a + 0);
    c00 = _mm256_fmadd_pd(ai, b0, c00); c01 = _mm256_fmadd_pd(ai, b1, c01);
    ai = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(ai, b0, c10); c11 = _mm256_fmadd_pd(ai, b1, c11);
    ai = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(ai, b0, c20); c21 = _mm256_fmadd_pd(ai, b1, c21);
    ai = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(ai, b0, c30); c31 = _mm256_fmadd_pd(ai, b1, c31);
    ai = _mm256_broadcast_sd(a + 4);
    c40 = _mm256_fmadd_pd(ai, b0, c40); c41 = _mm256_fmadd_pd(ai, b1, c41);
    ai = _mm256_broadcast_sd(a + 5);
    c50 = _mm256_fmadd_pd(ai, b0, c50); c51 = _mm256_fmadd_pd(ai, b1, c51);
    a += 6;
  }
  auto store = [&](double* p, __m256d v0, __m256d v1) {
    if (accumulate) {
      v0 = _mm256_add_pd(_mm256_loadu_pd(p), v0);
      v1 = _mm256_add_pd(_mm256_loadu_pd(p + 4), v1);
    }
    _mm256_storeu_pd(p, v0);
    _mm256_storeu_pd(p + 4, v1);
  };
  store(c + 0 * ldc, c00, c01);
  store(c + 1 * ldc, c10, c11);
  store(c + 2 * ldc, c20, c21);
  store(c + 3 * ldc, c30, c31);
  store(c + 4 * ldc, c40, c41);
  store(c + 5 * ldc, c50, c51);
}

void dgemm_ukernel_6x8__avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc) {
  dgemm_6x8_body(kc, a, b, PackedRows{8, 4}, c, ldc, acc);
}
void dgemm_ukernel_off_6x8__avx2(int64_t kc, const double* a, const double* b, const int64_t* offs, double* c,
                                 int64_t ldc, bool acc) {
  dgemm_6x8_body(kc, a, b, OffsetRows{offs, 4}, c, ldc, acc);
}
void dgemm_ukernel_off2_6x8__avx2(int64_t kc, const double* a, const double* b, const int64_t* offs, int64_t hi,
                                  double* c, int64_t ldc, bool acc) {
  dgemm_6x8_body(kc, a, b, OffsetRows{offs, hi}, c, ldc, acc);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

#include "gemm/ukernel_templates.h"
#include "gemm/transpose_x86.h"

void sdot4x3__avx2(int64_t len, const float* const* a, const float* const* b, float* out) {
  dot4x3_body<float, __m256>(
      len, a, b, out, 8, [](const float* p) { return _mm256_loadu_ps(p); },
      [](__m256 x, __m256 y, __m256 z) { return _mm256_fmadd_ps(x, y, z); }, [](__m256 v) { return hsum(v); },
      _mm256_setzero_ps());
}
void ddot4x3__avx2(int64_t len, const double* const* a, const double* const* b, double* out) {
  dot4x3_body<double, __m256d>(
      len, a, b, out, 4, [](const double* p) { return _mm256_loadu_pd(p); },
      [](__m256d x, __m256d y, __m256d z) { return _mm256_fmadd_pd(x, y, z); }, [](__m256d v) { return hsum(v); },
      _mm256_setzero_pd());
}

struct OpsF256 {
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 set1(float v) { return _mm256_set1_ps(v); }
  static __m256 fma(__m256 x, __m256 y, __m256 z) { return _mm256_fmadd_ps(x, y, z); }
  static __m256 add(__m256 x, __m256 y) { return _mm256_add_ps(x, y); }
  static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  static __m256 zero() { return _mm256_setzero_ps(); }
};
struct OpsD256 {
  static __m256d load(const double* p) { return _mm256_loadu_pd(p); }
  static __m256d set1(double v) { return _mm256_set1_pd(v); }
  static __m256d fma(__m256d x, __m256d y, __m256d z) { return _mm256_fmadd_pd(x, y, z); }
  static __m256d add(__m256d x, __m256d y) { return _mm256_add_pd(x, y); }
  static void store(double* p, __m256d v) { _mm256_storeu_pd(p, v); }
  static __m256d zero() { return _mm256_setzero_pd(); }
};

// Memory-bound matrix-vector products (gemv_body); the tail goes through a
// masked load, so nothing is read past k.
void sgemv__avx2(int64_t n, int64_t k, const float* __restrict w, int64_t ldw, const float* __restrict x,
                 float* __restrict y) {
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k % 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  gemv_body<float, __m256, OpsF256>(
      n, k, w, ldw, x, y, 8, [mask](const float* p) { return _mm256_maskload_ps(p, mask); },
      [](__m256 v) { return hsum(v); });
}
void dgemv__avx2(int64_t n, int64_t k, const double* __restrict w, int64_t ldw, const double* __restrict x,
                 double* __restrict y) {
  const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(k % 4), _mm256_setr_epi64x(0, 1, 2, 3));
  gemv_body<double, __m256d, OpsD256>(
      n, k, w, ldw, x, y, 4, [mask](const double* p) { return _mm256_maskload_pd(p, mask); },
      [](__m256d v) { return hsum(v); });
}

// linear's forward: 6 rows of the weight read in place x a packed 16-column panel.
void sgemm_ukernel_rows_6x16__avx2(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                                   bool acc) {
  gemm_rows_kernel<float, __m256, 6, 8, OpsF256>(kc, a, lda, b, c, ldc, acc);
}
void dgemm_ukernel_rows_6x8__avx2(int64_t kc, const double* a, int64_t lda, const double* b, double* c, int64_t ldc,
                                  bool acc) {
  gemm_rows_kernel<double, __m256d, 6, 4, OpsD256>(kc, a, lda, b, c, ldc, acc);
}
// Small-OC convolutions: 6 output positions x 16 output channels.
void sgemm_ukernel_gather_6x16__avx2(int64_t kc, const float* const* a, const int64_t* offs, const float* b, float* c,
                                     int64_t ldc, bool acc) {
  gemm_gather_kernel<float, __m256, 6, 8, OpsF256>(kc, a, offs, b, c, ldc, acc);
}
void dgemm_ukernel_gather_6x8__avx2(int64_t kc, const double* const* a, const int64_t* offs, const double* b,
                                    double* c, int64_t ldc, bool acc) {
  gemm_gather_kernel<double, __m256d, 6, 4, OpsD256>(kc, a, offs, b, c, ldc, acc);
}

void stranspose__avx2(int64_t rows, int64_t cols, const float* s, int64_t lds, float* d, int64_t ldd) {
  transpose_f32_x86(rows, cols, s, lds, d, ldd);
}
void dtranspose__avx2(int64_t rows, int64_t cols, const double* s, int64_t lds, double* d, int64_t ldd) {
  ref::transpose<double>(rows, cols, s, lds, d, ldd);
}

// Panel rows from runs (copy_runs in ukernel.h): at most two masked vectors
// per row, whatever the run length; masked-off lanes are neither read nor written.
void scopy_runs__avx2(int64_t kb, const float* src, const int64_t* offs, int64_t cnt, float* dst, int64_t ldd) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m[2] = {_mm256_cmpgt_epi32(_mm256_set1_epi32(int(cnt)), lane),
                        _mm256_cmpgt_epi32(_mm256_set1_epi32(int(cnt) - 8), lane)};
  copy_runs_body(kb, src, offs, dst, ldd, 8, cnt > 8, [&m](float* d, const float* s, int h) {
    _mm256_maskstore_ps(d, m[h], _mm256_maskload_ps(s, m[h]));
  });
}
void dcopy_runs__avx2(int64_t kb, const double* src, const int64_t* offs, int64_t cnt, double* dst, int64_t ldd) {
  const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
  const __m256i m[2] = {_mm256_cmpgt_epi64(_mm256_set1_epi64x(cnt), lane),
                        _mm256_cmpgt_epi64(_mm256_set1_epi64x(cnt - 4), lane)};
  copy_runs_body(kb, src, offs, dst, ldd, 4, cnt > 4, [&m](double* d, const double* s, int h) {
    _mm256_maskstore_pd(d, m[h], _mm256_maskload_pd(s, m[h]));
  });
}

// Row split into column phases (split_row in ukernel.h), stride 2: a block of
// 8 outputs per phase from two loads under the masks of their lanes inside
// [0, W) (padding lanes load as zero; nothing outside the row is read), an
// even- and an odd-lane shuffle and a lane permute each.
inline __m256 load_inside(const float* s, int64_t i0, int64_t W, __m256i lane) {
  const int lo = int(std::min<int64_t>(8, std::max<int64_t>(0, -i0))), hi = int(std::min<int64_t>(8, std::max<int64_t>(0, W - i0)));
  if (hi <= lo) return _mm256_setzero_ps();
  const __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), lane),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));  // lo <= lane < hi
  // s + i0 may point outside the row; only the masked-in lanes are read
  return _mm256_maskload_ps(reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(s) + i0 * int64_t(sizeof(float))), m);
}

void ssplit_row__avx2(int64_t rows, int64_t n, const float* s, int64_t ls, int64_t W, int64_t start, int64_t stride,
                      float* d, int64_t ld, int64_t dstep) {
  if (stride != 2) {
    ref::split_row(rows, n, s, ls, W, start, stride, d, ld, dstep);
    return;
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t q = 0; q < rows; ++q, s += ls, d += ld) {
    for (int64_t v = 0; v < n; v += 8) {
      const int64_t i0 = start + 2 * v;
      const __m256 lo = load_inside(s, i0, W, lane), hi = load_inside(s, i0 + 8, W, lane);
      const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
      const __m256 re = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
      const __m256 ro = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
      if (n - v >= 8) {
        _mm256_storeu_ps(d + v, re);
        _mm256_storeu_ps(d + dstep + v, ro);
      } else {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - v)), lane);
        _mm256_maskstore_ps(d + v, m, re);
        _mm256_maskstore_ps(d + dstep + v, m, ro);
      }
    }
  }
}

// FMA peak probe (ukernel_templates.h).
double fma_probe__avx2(int64_t iters, float* sink) {
  return fma_probe_body<12, 8, __m256>(
      iters, sink, [](float v) { return _mm256_set1_ps(v); }, [](auto x, auto y, auto z) { return _mm256_fmadd_ps(x, y, z); },
      [](auto x, auto y) { return _mm256_add_ps(x, y); }, [](float* p, __m256 v) { _mm256_store_ps(p, v); });
}

const KernelTable kAvx2 = {
    "avx2",
    {sgemm_ukernel_6x16__avx2, sgemm_ukernel_off_6x16__avx2, sgemv__avx2, sdot4x3__avx2, 6, 16, 256, 144, 4096, "sgemm_ukernel_6x16__avx2",
     sgemm_ukernel_rows_6x16__avx2, 6, stranspose__avx2,
     sgemm_ukernel_gather_6x16__avx2, 6, nullptr, 0, scopy_runs__avx2, ssplit_row__avx2, ref::add_to<float>, nullptr,
     sgemm_ukernel_off2_6x16__avx2, nullptr, nullptr, 0, nullptr, nullptr},
    {dgemm_ukernel_6x8__avx2, dgemm_ukernel_off_6x8__avx2, dgemv__avx2, ddot4x3__avx2, 6, 8, 256, 72, 2048, "dgemm_ukernel_6x8__avx2",
     dgemm_ukernel_rows_6x8__avx2, 6, dtranspose__avx2,
     dgemm_ukernel_gather_6x8__avx2, 6, nullptr, 0, dcopy_runs__avx2, ref::split_row<double>, ref::add_to<double>, nullptr,
     dgemm_ukernel_off2_6x8__avx2, nullptr, nullptr, 0, nullptr, nullptr},
    fma_probe__avx2,
};

}  // namespace

const KernelTable* avx2_kernels() { return &kAvx2; }

}  // namespace fastconv
