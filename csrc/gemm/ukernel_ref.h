// Portable micro-kernels written as plain loops over fixed-size arrays, so the
// compiler keeps the tile in registers and vectorises along j with whatever
// the translation unit targets. Used for the scalar path and as the template
// for ISA files that have no hand-written kernel for a type.
#pragma once

#include <algorithm>
#include <cstdint>

namespace fastconv {
namespace ref {
// Internal linkage: every file that includes this compiles its own copy with
// its own target flags. With external linkage, an AVX-512 file's instantiation
// of a template here could be the one the linker keeps for the scalar path.
namespace {

// C tile (+)= acc: the common epilogue of the kernels below.
template <typename T, int MR, int NR>
inline void store_tile(const T (&acc)[MR][NR], T* __restrict c, int64_t ldc, bool accumulate) {
  for (int i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
    if (accumulate)
      for (int j = 0; j < NR; ++j) ci[j] += acc[i][j];
    else
      for (int j = 0; j < NR; ++j) ci[j] = acc[i][j];
  }
}

//   register tile (MR x NR), k-major panels:
//        b[k*NR + 0 .. NR-1]
//   a[k*MR+0]  c00 c01 ... c0,NR-1
//   ...
//   a[k*MR+MR-1] ...
template <typename T, int MR, int NR>
void ukernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c, int64_t ldc,
             bool accumulate) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + k * NR;
    const T* ak = a + k * MR;
    for (int i = 0; i < MR; ++i) {
      const T ai = ak[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  store_tile<T, MR, NR>(acc, c, ldc, accumulate);
}

// B rows read in place at b + offs[k].
template <typename T, int MR, int NR>
void ukernel_off(int64_t kc, const T* __restrict a, const T* __restrict b, const int64_t* __restrict offs,
                 T* __restrict c, int64_t ldc, bool accumulate) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + offs[k];
    const T* ak = a + k * MR;
    for (int i = 0; i < MR; ++i) {
      const T ai = ak[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  store_tile<T, MR, NR>(acc, c, ldc, accumulate);
}

// A element (i, k) at ar[i][at(k)]: rows read in place (at(k) = k) or
// gathered convolution positions (at(k) = offs[k]).
template <typename T, int MR, int NR, class At>
void ukernel_arows(int64_t kc, const T* const* ar, At at, const T* __restrict b, T* __restrict c, int64_t ldc,
                   bool accumulate) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + k * NR;
    const int64_t o = at(k);
    for (int i = 0; i < MR; ++i) {
      const T ai = ar[i][o];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
  }
  store_tile<T, MR, NR>(acc, c, ldc, accumulate);
}

template <typename T, int MR, int NR>
void ukernel_rows(int64_t kc, const T* a, int64_t lda, const T* b, T* c, int64_t ldc, bool accumulate) {
  const T* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = a + i * lda;
  ukernel_arows<T, MR, NR>(kc, ar, [](int64_t k) { return k; }, b, c, ldc, accumulate);
}

template <typename T, int MR, int NR>
void ukernel_gather(int64_t kc, const T* const* a, const int64_t* offs, const T* b, T* c, int64_t ldc,
                    bool accumulate) {
  ukernel_arows<T, MR, NR>(kc, a, [offs](int64_t k) { return offs[k]; }, b, c, ldc, accumulate);
}

// dst[c*ldd + r] = src[r*lds + c], in 8x8 blocks (each block's reads and
// writes stay within a few cache lines).
template <typename T>
void transpose(int64_t rows, int64_t cols, const T* __restrict src, int64_t lds, T* __restrict dst, int64_t ldd) {
  for (int64_t r0 = 0; r0 < rows; r0 += 8)
    for (int64_t c0 = 0; c0 < cols; c0 += 8) {
      const int64_t r1 = r0 + 8 < rows ? r0 + 8 : rows, c1 = c0 + 8 < cols ? c0 + 8 : cols;
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * ldd + r] = src[r * lds + c];
    }
}

template <typename T>
void copy_runs(int64_t kb, const T* __restrict src, const int64_t* offs, int64_t cnt, T* __restrict dst, int64_t ldd) {
  for (int64_t k = 0; k < kb; ++k) {
    const T* s = src + offs[k];
    T* d = dst + k * ldd;
    for (int64_t u = 0; u < cnt; ++u) d[u] = s[u];
  }
}

template <typename T>
void split_row(int64_t rows, int64_t n, const T* __restrict s, int64_t ls, int64_t W, int64_t start, int64_t stride,
               T* __restrict d, int64_t ld, int64_t dstep) {
  for (int64_t q = 0; q < rows; ++q, s += ls, d += ld) {
    T* dr = d;
    for (int64_t r = 0; r < stride; ++r, dr += dstep) {
      // v in [lo, hi): 0 <= start + v*stride + r < W
      const int64_t c0 = start + r;
      const int64_t lo = c0 >= 0 ? int64_t(0) : std::min(n, (-c0 + stride - 1) / stride);
      const int64_t hi = W - c0 <= 0 ? lo : std::max(lo, std::min(n, (W - c0 + stride - 1) / stride));
      for (int64_t v = 0; v < lo; ++v) dr[v] = T(0);
      for (int64_t v = lo; v < hi; ++v) dr[v] = s[c0 + v * stride];
      for (int64_t v = hi; v < n; ++v) dr[v] = T(0);
    }
  }
}

template <typename T>
void add_to(int64_t n, const T* __restrict s, T* __restrict d) {
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}

// y[j] = sum_k w[j*ldw + k] * x[k]. LANES independent partial sums (the
// compiler may not reassociate one running sum), combined in a fixed order.
template <typename T, int LANES>
void gemv(int64_t n, int64_t k, const T* __restrict w, int64_t ldw, const T* __restrict x, T* __restrict y) {
  for (int64_t j = 0; j < n; ++j) {
    const T* wj = w + j * ldw;
    T acc[LANES];
    for (int l = 0; l < LANES; ++l) acc[l] = T(0);
    int64_t kk = 0;
    for (; kk + LANES <= k; kk += LANES)
      for (int l = 0; l < LANES; ++l) acc[l] += wj[kk + l] * x[kk + l];
    for (int l = 0; kk + l < k; ++l) acc[l] += wj[kk + l] * x[kk + l];
    for (int width = LANES / 2; width >= 1; width /= 2)
      for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
    y[j] = acc[0];
  }
}

// out[i*3 + j] = sum_l a[i][l] * b[j][l] with LANES partial sums per output.
template <typename T, int LANES>
void dot4x3(int64_t len, const T* const* a, const T* const* b, T* out) {
  T acc[12][LANES];
  for (int t = 0; t < 12; ++t)
    for (int l = 0; l < LANES; ++l) acc[t][l] = T(0);
  int64_t i = 0;
  for (; i + LANES <= len; i += LANES)
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 3; ++c)
        for (int l = 0; l < LANES; ++l) acc[r * 3 + c][l] += a[r][i + l] * b[c][i + l];
  for (int t = 0; t < 12; ++t) {
    for (int width = LANES / 2; width >= 1; width /= 2)
      for (int l = 0; l < width; ++l) acc[t][l] += acc[t][l + width];
    T tail = 0;
    for (int64_t q = i; q < len; ++q) tail += a[t / 3][q] * b[t % 3][q];
    out[t] = acc[t][0] + tail;
  }
}

}  // namespace
}  // namespace ref
}  // namespace fastconv
