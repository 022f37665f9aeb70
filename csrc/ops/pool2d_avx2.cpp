// Pooling plane kernels built for AVX2 (this file's flags); see pool_planes_impl.h.
// Adds a hand-written float kernel for the most common pooling shape, stride 2
// along the row (LeNet's and VGG's 2x2/2, AlexNet's 3x3/2): the compiler does not
// vectorise the stride-2 reads well, so 8 outputs are built from two loads and an
// even-lane shuffle. Same scan order (kh, then kw) and select rule as the
// portable kernel, so the bits are identical.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "ops/pool_planes.h"

namespace fastconv {
namespace avx2 {
namespace {

// x[2*i + o] for i = 0..7, from p = x + o (reads p[0..15]).
inline __m256 even8(const float* p) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

// x[2*i + o] for i = 0..7, from p = x + o - 1 (reads p[0..15]): the odd lanes.
inline __m256 odd8(const float* p) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

// One output element the portable way (edge blocks, short rows).
template <bool IDX>
inline void max_one(float* yr, int64_t* ir, const float* x, const Pool2dParams& p, const ColTap* taps, int64_t ntaps,
                    int64_t hs, int64_t kh0, int64_t kh1, int64_t h0, int64_t ow) {
  float best = -std::numeric_limits<float>::infinity();
  int64_t bi = h0 * p.W + first_tap(ow * 2 - p.pw, p.dw);
  for (int64_t kh = kh0; kh < kh1; ++kh) {
    const int64_t ih = hs + kh * p.dh;
    const float* xr = x + ih * p.W;
    for (int64_t k = 0; k < ntaps; ++k) {
      if (ow < taps[k].lo || ow >= taps[k].hi) continue;
      const int64_t iw = 2 * ow + taps[k].off;
      const float v = xr[iw];
      if ((v > best) | (v != v)) {
        best = v;
        bi = ih * p.W + iw;
      }
    }
  }
  yr[ow] = best;
  if (IDX) ir[ow] = bi;
}

// Blocks of 8 outputs of a row, each kept in registers across all of its
// window's taps (kh, then kw) and stored once. The last block of a row overlaps
// the one before it (it is recomputed from scratch, so that is harmless).
template <bool IDX>
void max_s2(float* __restrict y, int64_t* __restrict ind, const float* __restrict x, const Pool2dParams& p,
            const ColTap* taps, int64_t ntaps) {
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    float* yr = y + oh * p.OW;
    int64_t* ir = IDX ? ind + oh * p.OW : nullptr;
    const int64_t hs = oh * p.sh - p.ph;
    const int64_t h0 = first_tap(hs, p.dh);
    int64_t kh0, kh1;
    row_range(hs, p.KH, p.dh, p.H, kh0, kh1);
    int64_t done = 0;  // outputs [0, done) of this row are final
    if (p.OW >= 8) {
      for (int64_t b = 0; b < p.OW; b += 8) {
        const int64_t q = std::min(b, p.OW - 8);
        bool full = true;  // every tap in bounds for all 8 outputs, and readable as a vector
        for (int64_t k = 0; k < ntaps && full; ++k) {
          const int64_t s = 2 * q + taps[k].off;
          full = taps[k].lo <= q && taps[k].hi >= q + 8 && (s + 15 < p.W || s >= 1);
        }
        if (!full) {
          for (int64_t ow = std::max(q, done); ow < q + 8; ++ow) max_one<IDX>(yr, ir, x, p, taps, ntaps, hs, kh0, kh1, h0, ow);
          done = q + 8;
          continue;
        }
        __m256 cur = ninf;
        __m256i idx = _mm256_setzero_si256();
        if (IDX) {
          alignas(32) int32_t init[8];
          for (int l = 0; l < 8; ++l) init[l] = int32_t(h0 * p.W + first_tap((q + l) * 2 - p.pw, p.dw));
          idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(init));
        }
        for (int64_t kh = kh0; kh < kh1; ++kh) {
          const int64_t ih = hs + kh * p.dh;
          const float* xr = x + ih * p.W;
          for (int64_t k = 0; k < ntaps; ++k) {
            const int64_t s = 2 * q + taps[k].off;
            const __m256 v = (s + 15 < p.W) ? even8(xr + s) : odd8(xr + s - 1);
            const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, cur, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            cur = _mm256_blendv_ps(cur, v, take);
            if (IDX) {
              const __m256i at = _mm256_add_epi32(_mm256_set1_epi32(int32_t(ih * p.W + s)), lane2);
              idx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(idx), _mm256_castsi256_ps(at), take));
            }
          }
        }
        _mm256_storeu_ps(yr + q, cur);
        if (IDX) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(ir + q), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(idx)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(ir + q + 4),
                              _mm256_cvtepi32_epi64(_mm256_extracti128_si256(idx, 1)));
        }
        done = q + 8;
      }
    }
    for (int64_t ow = done; ow < p.OW; ++ow) max_one<IDX>(yr, ir, x, p, taps, ntaps, hs, kh0, kh1, h0, ow);
  }
}

// Values only, the two commonest windows along the row: 2 and 3 columns at
// stride 2 without column padding (LeNet's and VGG's 2x2/2, AlexNet's 3x3/2).
// Per block of 8 outputs, each window row is loaded as whole vectors
// (a = x[2q .. 2q+7], b = x[2q+8 .. 2q+15], and for 3 columns
// a2 = x[2q+2 .. 2q+9], b2 = x[2q+9 .. 2q+16]), its column taps picked out
// with one shuffle each in a common lane order and combined, the rows
// combined in turn, and the result put in output order by one permute. Every read is inside the row: taken only
// when the last window ends inside it (not for a ceil_mode overhang). max_ps(v, cur) keeps cur on ties, like the
// portable rule; a block whose inputs hold a NaN is redone by max_one, which
// keeps the portable NaN rule exactly.
// NARROW (rows of fewer than 8 outputs, W <= 16: LeNet's second pooling, 10x10
// -> 5x5): one block per row, its loads masked to the row's W columns (no read
// past the row; the zeros only reach lanes of outputs that do not exist) and
// its store to the OW outputs. It replaced the portable loops there, whose
// per-row overhead dominated: 64x16x10x10 2x2/2 127-134 -> 25 us at 1 thread
// (separate processes, 2 runs).
template <bool NARROW>
void max_s2_k23_rows(float* __restrict y, const float* __restrict x, const Pool2dParams& p, const ColTap* taps,
                     int64_t ntaps) {
  const bool three = p.KW == 3;
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  // lanes [0, n) of a register, n clamped to [0, 8]
  auto lanes = [](int64_t n) {
    const int c = int(std::min<int64_t>(8, std::max<int64_t>(0, n)));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  };
  const __m256i m0 = lanes(p.W), m8 = lanes(p.W - 8), m2 = lanes(p.W - 2), m9 = lanes(p.W - 9), mo = lanes(p.OW);
  auto load = [](const float* r, __m256i m) { return NARROW ? _mm256_maskload_ps(r, m) : _mm256_loadu_ps(r); };
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    float* yr = y + oh * p.OW;
    const int64_t hs = oh * p.sh - p.ph;
    const int64_t h0 = first_tap(hs, p.dh);
    int64_t kh0, kh1;
    row_range(hs, p.KH, p.dh, p.H, kh0, kh1);
    for (int64_t b = 0; b < p.OW; b += 8) {
      const int64_t q = NARROW ? 0 : std::min(b, p.OW - 8);
      // per window row, its column taps in order kw = 0, 1, 2 (lane order
      // [0 1 4 5 | 2 3 6 7] for all of them), then the rows in order: the first
      // maximum in scan order is kept, as by the portable rule (reducing the
      // rows first had kept a -0.0 of the next row's first column over a 0.0
      // of this row's second)
      __m256 m = ninf, nan = _mm256_setzero_ps();
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const float* r = x + (hs + kh * p.dh) * p.W + 2 * q;
        const __m256 a = load(r, m0), bb = load(r + 8, m8);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, bb, _CMP_UNORD_Q));
        __m256 h = _mm256_shuffle_ps(a, bb, _MM_SHUFFLE(2, 0, 2, 0));
        h = _mm256_max_ps(_mm256_shuffle_ps(a, bb, _MM_SHUFFLE(3, 1, 3, 1)), h);
        if (three) {
          const __m256 a2 = load(r + 2, m2), b2 = load(r + 9, m9);
          nan = _mm256_or_ps(nan, _mm256_cmp_ps(a2, b2, _CMP_UNORD_Q));
          h = _mm256_max_ps(_mm256_shuffle_ps(a2, b2, _MM_SHUFFLE(3, 1, 2, 0)), h);
        }
        m = _mm256_max_ps(h, m);  // (h > m ? h : m: ties keep the earlier row's)
      }
      if (_mm256_movemask_ps(nan)) {
        for (int64_t ow = q; ow < q + (NARROW ? p.OW : 8); ++ow)
          max_one<false>(yr, nullptr, x, p, taps, ntaps, hs, kh0, kh1, h0, ow);
        continue;
      }
      m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), _MM_SHUFFLE(3, 1, 2, 0)));
      if (NARROW)
        _mm256_maskstore_ps(yr, mo, m);
      else
        _mm256_storeu_ps(yr + q, m);
    }
  }
}

bool max_s2_k23_values(float* __restrict y, const float* __restrict x, const Pool2dParams& p, const ColTap* taps,
                       int64_t ntaps) {
  if (p.sw != 2 || p.pw != 0 || p.dw != 1 || (p.KW != 2 && p.KW != 3) || p.OW < 1) return false;
  if (2 * (p.OW - 1) + p.KW > p.W) return false;  // ceil_mode: the last window runs past the row
  if (p.OW >= 8)
    max_s2_k23_rows<false>(y, x, p, taps, ntaps);
  else if (p.W <= 16)
    max_s2_k23_rows<true>(y, x, p, taps, ntaps);
  else
    return false;
  return true;
}

// Average pooling, stride 2, the same block scheme: per block of 8 outputs the
// window's taps are summed in registers in the portable kernel's order (from 0,
// kh then kw), then divided by PyTorch's divisor; the bits match the portable path.
inline float avg_divisor(const Pool2dParams& p, int64_t hs, int64_t ow) {
  const int64_t ws = ow * p.sw - p.pw;
  if (p.divisor) return float(p.divisor);
  if (p.count_include_pad)
    return float((std::min(hs + p.KH, p.H + p.ph) - hs) * (std::min(ws + p.KW, p.W + p.pw) - ws));
  return float((std::min(hs + p.KH, p.H) - std::max<int64_t>(hs, 0)) *
               (std::min(ws + p.KW, p.W) - std::max<int64_t>(ws, 0)));
}

// The divisor of a row's vector blocks: they only cover windows that lie inside
// the row (both kernels send the others to the one-by-one path), so every
// column count is KW and one value serves the whole row. It equals avg_divisor
// there; computing that per output had cost more than the pooling itself
// (32x64x32x32 2x2/2: 0.80 ms, 0.24 ms with one divisor per row).
inline __m256 row_divisor(const Pool2dParams& p, int64_t hs) {
  if (p.divisor) return _mm256_set1_ps(float(p.divisor));
  const int64_t rows = p.count_include_pad ? std::min(hs + p.KH, p.H + p.ph) - hs
                                           : std::min(hs + p.KH, p.H) - std::max<int64_t>(hs, 0);
  return _mm256_set1_ps(float(rows * p.KW));
}

// Average pooling over 2 or 3 columns at stride 2 without column padding: each
// window row is loaded once as whole vectors, its column taps picked out by
// shuffles in a common lane order and added in the portable order (from 0,
// kh then kw: the same bits), one permute per 8 outputs at the end.
bool avg_s2_k23(float* __restrict y, const float* __restrict x, const Pool2dParams& p) {
  if (p.sw != 2 || p.pw != 0 || (p.KW != 2 && p.KW != 3) || p.OW < 8) return false;
  if (2 * (p.OW - 1) + p.KW > p.W) return false;  // ceil_mode: the last window runs past the row
  const bool three = p.KW == 3;
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    float* yr = y + oh * p.OW;
    const int64_t hs = oh * p.sh - p.ph;
    int64_t kh0, kh1;
    row_range(hs, p.KH, 1, p.H, kh0, kh1);
    const __m256 div = row_divisor(p, hs);
    for (int64_t b = 0; b < p.OW; b += 8) {
      const int64_t q = std::min(b, p.OW - 8);
      __m256 acc = _mm256_setzero_ps();
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const float* r = x + (hs + kh) * p.W + 2 * q;
        const __m256 a = _mm256_loadu_ps(r), bb = _mm256_loadu_ps(r + 8);
        acc = _mm256_add_ps(acc, _mm256_shuffle_ps(a, bb, _MM_SHUFFLE(2, 0, 2, 0)));
        acc = _mm256_add_ps(acc, _mm256_shuffle_ps(a, bb, _MM_SHUFFLE(3, 1, 3, 1)));
        if (three)
          acc = _mm256_add_ps(acc, _mm256_shuffle_ps(_mm256_loadu_ps(r + 2), _mm256_loadu_ps(r + 9),
                                                     _MM_SHUFFLE(3, 1, 2, 0)));
      }
      const __m256 sum = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc), _MM_SHUFFLE(3, 1, 2, 0)));
      _mm256_storeu_ps(yr + q, _mm256_div_ps(sum, div));
    }
  }
  return true;
}

bool fast_avg_f32(float* __restrict y, const float* __restrict x, const Pool2dParams& p, const ColTap* taps,
                  int64_t ntaps) {
  if (avg_s2_k23(y, x, p)) return true;
  if (p.sw != 2 || p.OW < 8) return false;
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    float* yr = y + oh * p.OW;
    const int64_t hs = oh * p.sh - p.ph;
    int64_t kh0, kh1;
    row_range(hs, p.KH, 1, p.H, kh0, kh1);
    const __m256 div = row_divisor(p, hs);
    for (int64_t b = 0; b < p.OW; b += 8) {
      const int64_t q = std::min(b, p.OW - 8);
      bool full = true;
      for (int64_t k = 0; k < ntaps && full; ++k) {
        const int64_t s = 2 * q + taps[k].off;
        full = taps[k].lo <= q && taps[k].hi >= q + 8 && (s + 15 < p.W || s >= 1);
      }
      if (!full) {
        for (int64_t ow = q; ow < q + 8; ++ow) {
          float acc = 0;
          for (int64_t kh = kh0; kh < kh1; ++kh) {
            const float* xr = x + (hs + kh) * p.W;
            for (int64_t k = 0; k < ntaps; ++k)
              if (ow >= taps[k].lo && ow < taps[k].hi) acc += xr[2 * ow + taps[k].off];
          }
          yr[ow] = acc / avg_divisor(p, hs, ow);
        }
        continue;
      }
      __m256 acc = _mm256_setzero_ps();
      for (int64_t kh = kh0; kh < kh1; ++kh) {
        const float* xr = x + (hs + kh) * p.W;
        for (int64_t k = 0; k < ntaps; ++k) {
          const int64_t s = 2 * q + taps[k].off;
          acc = _mm256_add_ps(acc, (s + 15 < p.W) ? even8(xr + s) : odd8(xr + s - 1));
        }
      }
      _mm256_storeu_ps(yr + q, _mm256_div_ps(acc, div));
    }
  }
  return true;
}

bool fast_max_f32(float* y, int64_t* ind, const float* x, const Pool2dParams& p, const ColTap* taps,
                  int64_t ntaps) {
  // Rows shorter than one block go to the portable loops, whose selects
  // compile branch-free: max_one's per-output compares mispredict on real
  // data (64x16x10x10 2x2/2: 565 us here, 86 us there).
  if (p.sw != 2) return false;
  if (!ind) {
    if (max_s2_k23_values(y, x, p, taps, ntaps)) return true;  // (rows of 1-7 outputs too, under masks)
    if (p.OW < 8) return false;
    max_s2<false>(y, nullptr, x, p, taps, ntaps);
    return true;
  }
  if (p.OW < 8) return false;
  if (p.H * p.W >= (int64_t(1) << 31)) return false;  // indices ride in int32 lanes
  max_s2<true>(y, ind, x, p, taps, ntaps);
  return true;
}

}  // namespace
}  // namespace avx2
}  // namespace fastconv

#define FASTCONV_POOL_FAST_MAX_F32 fastconv::avx2::fast_max_f32
#define FASTCONV_POOL_FAST_AVG_F32 fastconv::avx2::fast_avg_f32
#define FASTCONV_POOL_NS avx2
#include "ops/pool_planes_impl.h"
