// Winograd F(2x2, 3x3) (and F(2x2, 5x5), further down): stride-1 convolution in 2x2 output tiles.
//
// Each 2x2 output tile reads a 4x4 input tile d (origin 2*ty - pad_t,
// 2*tx - pad_l; zero outside x) and computes, per output channel o,
//
//   y_tile = A^T [ sum_c (G g[o,c] G^T) .* (B^T d[c] B) ] A + b[o]
//
//   B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2  1/2|          | 0  1 -1 -1 |
//         | 0 -1  1  0 |        | 1/2 -1/2  1/2|
//         | 0  1  0 -1 |        | 0    0    1  |
//
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
// 2016.) The sum over c is, for each of the 16 positions xi of the 4x4
// transformed tile, a GEMM:
//
//   M[xi] (OC x T) = U[xi] (OC x C) * V[xi] (C x T),  U = G g G^T, V = B^T d B
//
// over the T tiles of a chunk, run by the ISA's register micro-kernel: 16
// multiply-adds per tile and channel pair where the direct convolution does
// 36 (2.25x fewer). The transforms are adds only.
//
// Layouts (per thread, for one chunk of JB tiles, JB a multiple of NR):
//   U~ [16][OCpad/MR][C][MR]  the micro-kernel's A panels (weight, per call or
//                             kept in the ConvWeightPack), zero rows past OC
//   V~ [16][JB/NR][C][NR]     its B panels, tile t of the chunk in panel t/NR,
//                             lane t%NR; lanes past the last tile are zero
//   M  [16][KB][JB]           one block of KB output channels at a time
// (the [16] slabs of V~ and M 64 bytes further apart than their sizes, see slab()).
// A chunk is transformed once into V~ (L2-sized), then for each block of
// output channels the 16 GEMMs fill M and the output transform writes y.
// Tiles are numbered across the batch (t = (n*TH + ty)*TW + tx), so small
// images still fill whole panels. Parallel over chunks; every output is a
// sum over c in one fixed order whatever the chunk or thread, so results do
// not depend on the thread count or the batch.
//
// The transforms work on runs of tiles (consecutive tx of one tile row, at
// most 32 and within one panel). This header is compiled once per ISA
// (winograd_scalar.cpp, winograd_avx2.cpp, winograd_avx512.cpp): plain C++
// loops over a run's lanes that the vectoriser turns into that file's
// registers, except on AVX-512, whose transforms are written with intrinsics
// (masked loads straight from x, even/odd splits by vpermt2ps: the plain
// loops, staged through bounds-checked copies, took 47% of the 32x64x32x32
// layer's time in a perf profile; with the intrinsics the layer went from
// 14.3 to 10.0 ms at 1 thread, in two runs whose direct-path times agreed
// within 2%). The data gradient is this forward on dy with the flipped
// weight; the weight gradient is below (backward_weight).
// Inputs are checked as they are read: a value that is not
// finite, or above a bound set so that no transform or product can overflow
// (see winograd_scalar.cpp), makes the call return false and the caller
// computes y by the direct path -- whose Inf / NaN semantics are exact, where
// the transforms' differences would turn an Inf into NaN.
//
// Include with FASTCONV_WG_NS defined to the ISA's namespace name.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "common/buffer.h"
#include "common/parallel.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/gemm.h"
#include "ops/winograd_geom.h"

#if defined(FASTCONV_WG_AVX512)
#include <immintrin.h>
#endif

namespace fastconv {
namespace FASTCONV_WG_NS {
namespace {

// One run of tiles: image n, tile row ty, tiles tx0 .. tx0+len-1, landing at
// lane `lane` of the chunk.
struct Run {
  int64_t n, ty, tx0, len, lane;
};

constexpr int64_t kMaxRun = 32;  // tiles per run at most (the portable transforms' stage size)

// The stride between the 16 (36) per-position slabs of V~, M and dM: n floats
// plus 64 bytes, so that the slabs -- whose sizes are multiples of 4 KiB for
// most shapes -- do not all map to the same L1 set when a transform writes or
// reads one lane of each of them.
inline int64_t slab(int64_t n) { return n + 16; }

// The transforms of a chunk go by blocks of kChanBlock channels (outermost),
// each block through all the chunk's runs, so the input rows that consecutive
// tile rows share are still in L1; the AVX-512 transforms prefetch the rows the
// same run will read one block (kChanBlock channels) later. Measured together
// with the slab padding above, alternated in one process on the AMD Zen 5 VM
// (AVX-512, 1 thread, forward / weight gradient): 32x64x32x32 1.15 / 1.20 for
// the blocks, then 1.32 / 1.18 for the prefetch of x, 1.10 for that of dy in
// the weight gradient, 1.03 / 1.16 for the padding; 32x128x16x16 1.04 / 1.02,
// 1.17 / 1.22, 1.13, 1.09 / 1.25; 32x256x8x8 0.99 / 1.00, 1.04 / 1.05, 1.11,
// 1.10 / 1.25; 8x64x56x56 1.04 / 1.16, 1.16 / 1.14, 1.10 (8x64x32x32 for the
// padding: 1.04 / 1.14).
constexpr int64_t kChanBlock = 4;

// The runs of chunk [t0, t1), cut at tile-row and panel (nr) boundaries.
inline int64_t chunk_runs(const WinogradGeom& g, int64_t t0, int64_t t1, int nr, Run* runs) {
  int64_t cnt = 0;
  for (int64_t t = t0; t < t1;) {
    const int64_t n = t / g.TP, r = t % g.TP, ty = r / g.TW, tx = r % g.TW;
    const int64_t lane = t - t0;
    const int64_t len = std::min({g.TW - tx, t1 - t, int64_t(nr) - lane % nr, kMaxRun});
    runs[cnt++] = Run{n, ty, tx, len, lane};
    t += len;
  }
  return cnt;
}

// The input and output transforms of one run, NA x NA tiles (4: F(2x2, 3x3),
// 6: F(2x2, 5x5)): V~ for channels [c0, c1) of the C (false when a value read
// failed the bound), and y for output channels [k0, k0 + kb) from M (rows k - k0).
template <int NA>
bool input_run_t(const WinogradGeom& g, const float* x, const Run& run, int64_t C, int64_t c0, int64_t c1, int nr,
                 int64_t jb, float lim, float* vt);
template <int NA>
void output_run_t(const WinogradGeom& g, float* y, const Run& run, int64_t K, int64_t k0, int64_t kb, int64_t KB,
                  int64_t jb, const float* mt, const float* b);

#if defined(FASTCONV_WG_AVX512)
// AVX-512: one run in groups of up to 16 tiles (one register of lanes). An
// input row's 2*cnt + 2 values come in by masked loads straight from x (only
// columns inside the row are read; the rest are zeros: the padding), two
// registers at offset 0 and two at offset 2, and vpermt2ps splits them into
// the even and odd columns each tile needs.
inline __mmask16 lanes_between(int64_t lo, int64_t hi) {  // lanes l, lo <= l < hi, of 16
  lo = std::max<int64_t>(lo, 0);
  hi = std::min<int64_t>(hi, 16);
  if (hi <= lo) return 0;
  return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// B^T of F(2x2, 3x3) (NA = 4) and F(2x2, 5x5) (NA = 6, see below) on one
// register of lanes per value.
template <int NA>
inline void bt(const __m512* d, __m512* o);
template <>
inline void bt<4>(const __m512* d, __m512* o) {
  o[0] = _mm512_sub_ps(d[0], d[2]);
  o[1] = _mm512_add_ps(d[1], d[2]);
  o[2] = _mm512_sub_ps(d[2], d[1]);
  o[3] = _mm512_sub_ps(d[1], d[3]);
}
template <>
inline void bt<6>(const __m512* d, __m512* o) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(-5.0f), two = _mm512_set1_ps(2.0f);
  o[0] = _mm512_fmadd_ps(four, d[0], _mm512_fmadd_ps(five, d[2], d[4]));
  o[1] = _mm512_fnmadd_ps(four, _mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4]));
  o[2] = _mm512_fmadd_ps(four, _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3]));
  o[3] = _mm512_fmadd_ps(two, _mm512_sub_ps(d[3], d[1]), _mm512_sub_ps(d[4], d[2]));
  o[4] = _mm512_fmadd_ps(two, _mm512_sub_ps(d[1], d[3]), _mm512_sub_ps(d[4], d[2]));
  o[5] = _mm512_fmadd_ps(four, d[1], _mm512_fmadd_ps(five, d[3], d[5]));
}

// A^T: NA values to the two outputs.
template <int NA>
inline void at(const __m512* v, __m512& y0, __m512& y1);
template <>
inline void at<4>(const __m512* v, __m512& y0, __m512& y1) {
  y0 = _mm512_add_ps(_mm512_add_ps(v[0], v[1]), v[2]);
  y1 = _mm512_sub_ps(_mm512_sub_ps(v[1], v[2]), v[3]);
}
template <>
inline void at<6>(const __m512* v, __m512& y0, __m512& y1) {
  y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v[0], v[1]), _mm512_add_ps(v[2], v[3])), v[4]);
  y1 = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(2.0f), _mm512_sub_ps(v[3], v[4]), _mm512_sub_ps(v[1], v[2])),
                     v[5]);
}

// V~ for one run and all channels, NA x NA input tiles: each input row's
// NA columns per tile from NA/2 pairs of masked loads (offsets 0, 2, ..),
// split into even and odd columns.
template <int NA>
bool input_run_t(const WinogradGeom& g, const float* x, const Run& run, int64_t C, int64_t c0, int64_t c1, int nr,
                 int64_t jb, float lim, float* vt) {
  const int64_t npan = jb / nr, q = run.lane / nr, l0 = run.lane % nr;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512 vlim = _mm512_set1_ps(lim);
  const int64_t xi_stride = slab(npan * C * nr);
  __mmask16 bad = 0;
  for (int64_t g0 = 0; g0 < run.len; g0 += 16) {
    const int64_t cnt = std::min<int64_t>(16, run.len - g0);
    const int64_t b0 = 2 * (run.tx0 + g0) - g.pl;  // input column of the group's first value
    const int64_t lo = -b0, hi = std::min<int64_t>(2 * cnt + NA - 2, g.W - b0);
    __mmask16 mlo[NA / 2], mhi[NA / 2];
    for (int s2 = 0; s2 < NA / 2; ++s2) {
      mlo[s2] = lanes_between(lo - 2 * s2, hi - 2 * s2);
      mhi[s2] = lanes_between(lo - 2 * s2 - 16, hi - 2 * s2 - 16);
    }
    const __mmask16 mt = lanes_between(0, cnt);
    float* v = vt + (q * C + c0) * nr + l0 + g0;
    for (int64_t c = c0; c < c1; ++c, v += nr) {
      const float* xc = x + (run.n * C + c) * g.H * g.W;
      __m512 h[NA][NA];
      for (int i = 0; i < NA; ++i) {
        const int64_t ih = 2 * run.ty + i - g.pt;
        if (ih < 0 || ih >= g.H) {
          for (int j = 0; j < NA; ++j) h[i][j] = _mm512_setzero_ps();
          continue;
        }
        const float* r = xc + ih * g.W + b0;  // only the masked lanes are read
        if (c + kChanBlock < C) {
          const char* pf = reinterpret_cast<const char*>(r + kChanBlock * g.H * g.W + std::max<int64_t>(lo, 0));
          _mm_prefetch(pf, _MM_HINT_T0);
          _mm_prefetch(pf + 64, _MM_HINT_T0);
          if (hi - std::max<int64_t>(lo, 0) > 32) _mm_prefetch(pf + 128, _MM_HINT_T0);
        }
        __m512 d[NA];
        for (int s2 = 0; s2 < NA / 2; ++s2) {
          const __m512 A = _mm512_maskz_loadu_ps(mlo[s2], r + 2 * s2);
          const __m512 B = _mm512_maskz_loadu_ps(mhi[s2], r + 2 * s2 + 16);
          bad |= __mmask16(~_mm512_cmp_ps_mask(_mm512_abs_ps(A), vlim, _CMP_LE_OQ));
          bad |= __mmask16(~_mm512_cmp_ps_mask(_mm512_abs_ps(B), vlim, _CMP_LE_OQ));
          d[2 * s2] = _mm512_permutex2var_ps(A, even, B);
          d[2 * s2 + 1] = _mm512_permutex2var_ps(A, odd, B);
        }
        bt<NA>(d, h[i]);
      }
      for (int j = 0; j < NA; ++j) {  // the columns
        __m512 col[NA], o[NA];
        for (int i = 0; i < NA; ++i) col[i] = h[i][j];
        bt<NA>(col, o);
        for (int a = 0; a < NA; ++a) _mm512_mask_storeu_ps(v + (NA * a + j) * xi_stride, mt, o[a]);
      }
    }
  }
  return bad == 0;
}

// y for one run and output channels [k0, k0 + kb) from M (rows k - k0):
// A^T on the rows, then on the columns, the two outputs of each tile
// interleaved by vpermt2ps into the output row.
template <int NA>
void output_run_t(const WinogradGeom& g, float* y, const Run& run, int64_t K, int64_t k0, int64_t kb, int64_t KB,
                  int64_t jb, const float* mt, const float* b) {
  const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const int64_t oh0 = 2 * run.ty, xs = slab(KB * jb);
  const int nrows = oh0 + 1 < g.OH ? 2 : 1;
  for (int64_t g0 = 0; g0 < run.len; g0 += 16) {
    const int64_t cnt = std::min<int64_t>(16, run.len - g0);
    const int64_t ow0 = 2 * (run.tx0 + g0);
    const int64_t ncols = std::min<int64_t>(2 * cnt, g.OW - ow0);
    const __mmask16 tm = lanes_between(0, cnt);
    const __mmask16 mlo = lanes_between(0, ncols), mhi = lanes_between(0, ncols - 16);
    for (int64_t kk = 0; kk < kb; ++kk) {
      const int64_t k = k0 + kk;
      const __m512 bias = _mm512_set1_ps(b ? b[k] : 0.0f);
      const float* m = mt + kk * jb + run.lane + g0;
      __m512 s[2][NA];
      for (int j = 0; j < NA; ++j) {
        __m512 mv[NA];
        for (int a = 0; a < NA; ++a) mv[a] = _mm512_maskz_loadu_ps(tm, m + (NA * a + j) * xs);
        at<NA>(mv, s[0][j], s[1][j]);
      }
      float* yk = y + ((run.n * K + k) * g.OH + oh0) * g.OW + ow0;
      for (int a = 0; a < nrows; ++a) {
        __m512 y0, y1;
        at<NA>(s[a], y0, y1);
        y0 = _mm512_add_ps(y0, bias);
        y1 = _mm512_add_ps(y1, bias);
        _mm512_mask_storeu_ps(yk + a * g.OW, mlo, _mm512_permutex2var_ps(y0, lo_idx, y1));
        if (mhi) _mm512_mask_storeu_ps(yk + a * g.OW + 16, mhi, _mm512_permutex2var_ps(y0, hi_idx, y1));
      }
    }
  }
}

// dM for one run and output channels [k0, k1): dM[xi][k][lane] = (A dY A^T)[xi],
// A = (A^T)^T, the 2x2 tile of dy (zero past the output's edge) to 4x4.
// Two rows of 2*cnt values by masked loads, split into even and odd columns.
bool grad_run(const WinogradGeom& g, const float* dy, const Run& run, int64_t K, int64_t k0, int64_t k1, int64_t jb,
              float lim, float* dm) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512 vlim = _mm512_set1_ps(lim);
  const int64_t oh0 = 2 * run.ty, xs = slab(K * jb);
  const bool row1 = oh0 + 1 < g.OH;
  __mmask16 bad = 0;
  for (int64_t g0 = 0; g0 < run.len; g0 += 16) {
    const int64_t cnt = std::min<int64_t>(16, run.len - g0);
    const int64_t ow0 = 2 * (run.tx0 + g0);
    const int64_t ncols = std::min<int64_t>(2 * cnt, g.OW - ow0);
    const __mmask16 mA = lanes_between(0, ncols), mB = lanes_between(0, ncols - 16), tm = lanes_between(0, cnt);
    for (int64_t k = k0; k < k1; ++k) {
      const float* r0 = dy + ((run.n * K + k) * g.OH + oh0) * g.OW + ow0;
      if (k + kChanBlock < K) {
        const char* pf = reinterpret_cast<const char*>(r0 + kChanBlock * g.OH * g.OW);
        _mm_prefetch(pf, _MM_HINT_T0);
        if (ncols > 16) _mm_prefetch(pf + 64, _MM_HINT_T0);
        if (row1) {
          _mm_prefetch(pf + 4 * g.OW, _MM_HINT_T0);
          if (ncols > 16) _mm_prefetch(pf + 4 * g.OW + 64, _MM_HINT_T0);
        }
      }
      const __m512 A0 = _mm512_maskz_loadu_ps(mA, r0), B0 = _mm512_maskz_loadu_ps(mB, r0 + 16);
      const __m512 A1 = row1 ? _mm512_maskz_loadu_ps(mA, r0 + g.OW) : _mm512_setzero_ps();
      const __m512 B1 = row1 ? _mm512_maskz_loadu_ps(mB, r0 + g.OW + 16) : _mm512_setzero_ps();
      bad |= __mmask16(~_mm512_cmp_ps_mask(_mm512_abs_ps(A0), vlim, _CMP_LE_OQ));
      bad |= __mmask16(~_mm512_cmp_ps_mask(_mm512_abs_ps(B0), vlim, _CMP_LE_OQ));
      bad |= __mmask16(~_mm512_cmp_ps_mask(_mm512_abs_ps(A1), vlim, _CMP_LE_OQ));
      bad |= __mmask16(~_mm512_cmp_ps_mask(_mm512_abs_ps(B1), vlim, _CMP_LE_OQ));
      const __m512 p0 = _mm512_permutex2var_ps(A0, even, B0), q0 = _mm512_permutex2var_ps(A0, odd, B0);
      const __m512 p1 = _mm512_permutex2var_ps(A1, even, B1), q1 = _mm512_permutex2var_ps(A1, odd, B1);
      const __m512 zero = _mm512_setzero_ps();
      const __m512 rp[4] = {p0, _mm512_add_ps(p0, p1), _mm512_sub_ps(p0, p1), _mm512_sub_ps(zero, p1)};
      const __m512 rq[4] = {q0, _mm512_add_ps(q0, q1), _mm512_sub_ps(q0, q1), _mm512_sub_ps(zero, q1)};
      float* d = dm + k * jb + run.lane + g0;
      for (int a = 0; a < 4; ++a) {
        _mm512_mask_storeu_ps(d + (4 * a + 0) * xs, tm, rp[a]);
        _mm512_mask_storeu_ps(d + (4 * a + 1) * xs, tm, _mm512_add_ps(rp[a], rq[a]));
        _mm512_mask_storeu_ps(d + (4 * a + 2) * xs, tm, _mm512_sub_ps(rp[a], rq[a]));
        _mm512_mask_storeu_ps(d + (4 * a + 3) * xs, tm, _mm512_sub_ps(zero, rq[a]));
      }
    }
  }
  return bad == 0;
}

#else
// V~ for one run and channels [c0, c1). Returns false when a value read fails the
// bound (not finite or |v| > lim).
template <>
bool input_run_t<4>(const WinogradGeom& g, const float* __restrict x, const Run& run, int64_t C, int64_t c0,
                    int64_t c1, int nr, int64_t jb, float lim, float* __restrict vt) {
  alignas(64) float stage[4][2 * kMaxRun + 2];
  alignas(64) float h[4][4][kMaxRun];  // h[row][j][lane]
  const int64_t len = run.len;
  const int64_t w0 = 2 * run.tx0 - g.pl;               // input column of stage[.][0]
  const int64_t span = 2 * len + 2;
  const bool cols_inside = w0 >= 0 && w0 + span <= g.W;
  const int64_t npan = jb / nr, q = run.lane / nr, l0 = run.lane % nr;
  int bad = 0;
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x + (run.n * C + c) * g.H * g.W;
    const float* rows[4];
    for (int i = 0; i < 4; ++i) {
      const int64_t ih = 2 * run.ty + i - g.pt;
      if (ih >= 0 && ih < g.H && cols_inside) {
        rows[i] = xc + ih * g.W + w0;
      } else {
        float* s = stage[i];
        if (ih < 0 || ih >= g.H) {
          std::fill(s, s + span, 0.0f);
        } else {
          const float* xr = xc + ih * g.W;
          for (int64_t m = 0; m < span; ++m) {
            const int64_t iw = w0 + m;
            s[m] = (iw >= 0 && iw < g.W) ? xr[iw] : 0.0f;
          }
        }
        rows[i] = s;
      }
      const float* __restrict r = rows[i];
      for (int64_t m = 0; m < span; ++m) bad |= !(std::fabs(r[m]) <= lim);
      float* __restrict h0 = h[i][0];
      float* __restrict h1 = h[i][1];
      float* __restrict h2 = h[i][2];
      float* __restrict h3 = h[i][3];
      for (int64_t l = 0; l < len; ++l) {
        const float e = r[2 * l], o = r[2 * l + 1], e1 = r[2 * l + 2], o1 = r[2 * l + 3];
        h0[l] = e - e1;
        h1[l] = o + e1;
        h2[l] = e1 - o;
        h3[l] = o - o1;
      }
    }
    // vertical: V[a][j] from h[0..3][j]; xi = 4a + j
    for (int j = 0; j < 4; ++j) {
      float* __restrict v0 = vt + int64_t(0 + j) * slab(npan * C * nr) + (q * C + c) * nr + l0;
      float* __restrict v1 = vt + int64_t(4 + j) * slab(npan * C * nr) + (q * C + c) * nr + l0;
      float* __restrict v2 = vt + int64_t(8 + j) * slab(npan * C * nr) + (q * C + c) * nr + l0;
      float* __restrict v3 = vt + int64_t(12 + j) * slab(npan * C * nr) + (q * C + c) * nr + l0;
      const float* __restrict a0 = h[0][j];
      const float* __restrict a1 = h[1][j];
      const float* __restrict a2 = h[2][j];
      const float* __restrict a3 = h[3][j];
      for (int64_t l = 0; l < len; ++l) {
        v0[l] = a0[l] - a2[l];
        v1[l] = a1[l] + a2[l];
        v2[l] = a2[l] - a1[l];
        v3[l] = a1[l] - a3[l];
      }
    }
  }
  return bad == 0;
}


// dM for one run and output channels [k0, k1) (see the AVX-512 build above).
bool grad_run(const WinogradGeom& g, const float* __restrict dy, const Run& run, int64_t K, int64_t k0, int64_t k1,
              int64_t jb, float lim, float* __restrict dm) {
  alignas(64) float r[2][2 * kMaxRun];
  const int64_t len = run.len, oh0 = 2 * run.ty, ow0 = 2 * run.tx0, xs = slab(K * jb);
  const int64_t ncols = std::min<int64_t>(2 * len, g.OW - ow0);
  const int nrows = oh0 + 1 < g.OH ? 2 : 1;
  int bad = 0;
  for (int64_t k = k0; k < k1; ++k) {
    for (int a = 0; a < 2; ++a) {
      float* __restrict d = r[a];
      if (a < nrows) {
        const float* __restrict src = dy + ((run.n * K + k) * g.OH + oh0 + a) * g.OW + ow0;
        for (int64_t m = 0; m < ncols; ++m) d[m] = src[m];
        for (int64_t m = 0; m < ncols; ++m) bad |= !(std::fabs(d[m]) <= lim);
        for (int64_t m = ncols; m < 2 * len; ++m) d[m] = 0.0f;
      } else {
        for (int64_t m = 0; m < 2 * len; ++m) d[m] = 0.0f;
      }
    }
    float* __restrict d = dm + k * jb + run.lane;
    for (int a = 0; a < 4; ++a) {
      float* __restrict d0 = d + (4 * a + 0) * xs;
      float* __restrict d1 = d + (4 * a + 1) * xs;
      float* __restrict d2 = d + (4 * a + 2) * xs;
      float* __restrict d3 = d + (4 * a + 3) * xs;
      for (int64_t l = 0; l < len; ++l) {
        const float p0 = r[0][2 * l], q0 = r[0][2 * l + 1], p1 = r[1][2 * l], q1 = r[1][2 * l + 1];
        const float p = a == 0 ? p0 : a == 1 ? p0 + p1 : a == 2 ? p0 - p1 : 0.0f - p1;
        const float q = a == 0 ? q0 : a == 1 ? q0 + q1 : a == 2 ? q0 - q1 : 0.0f - q1;
        d0[l] = p;
        d1[l] = p + q;
        d2[l] = p - q;
        d3[l] = 0.0f - q;
      }
    }
  }
  return bad == 0;
}

#endif

// F(2x2, 5x5): 6x6 input tiles, 36 GEMMs (36 multiply-adds per tile and
// channel pair against the direct convolution's 100). Interpolation points
// 0, 1, -1, 2, -2 and infinity (Toom-Cook; checked in exact arithmetic):
//
//   B^T = | 4  0 -5  0  1  0 |   G = |  1/4    0     0    0    0  |   A^T = | 1 1  1 1  1 0 |
//         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6 -1/6 -1/6 |         | 0 1 -1 2 -2 1 |
//         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  1/6 -1/6 |
//         | 0 -2 -1  2  1  0 |       | 1/24  1/12   1/6  1/3  2/3 |
//         | 0  2 -1 -2  1  0 |       | 1/24 -1/12   1/6 -1/3  2/3 |
//         | 0  4  0 -5  0  1 |       |  0     0     0    0    1  |
//
// Layouts as there, with 36 for 16; AVX-512 transforms with intrinsics as
// there, portable loops elsewhere.

// The six B^T rows applied to d0..d5 (one lane each).
#define FASTCONV_WG5_BT(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5) \
  do {                                                                   \
    o0 = 4.0f * d0 - 5.0f * d2 + d4;                                     \
    o1 = -4.0f * (d1 + d2) + d3 + d4;                                    \
    o2 = 4.0f * (d1 - d2) - d3 + d4;                                     \
    o3 = 2.0f * (d3 - d1) - d2 + d4;                                     \
    o4 = 2.0f * (d1 - d3) - d2 + d4;                                     \
    o5 = 4.0f * d1 - 5.0f * d3 + d5;                                     \
  } while (0)

#if !defined(FASTCONV_WG_AVX512)
template <>
bool input_run_t<6>(const WinogradGeom& g, const float* __restrict x, const Run& run, int64_t C, int64_t c0,
                    int64_t c1, int nr, int64_t jb, float lim, float* __restrict vt) {
  alignas(64) float stage[6][2 * kMaxRun + 4];
  alignas(64) float h[6][6][kMaxRun];  // h[row][j][lane]
  const int64_t len = run.len, span = 2 * len + 4;
  const int64_t w0 = 2 * run.tx0 - g.pl;  // input column of stage[.][0]
  const int64_t m_lo = std::max<int64_t>(0, -w0), m_hi = std::max(m_lo, std::min(span, g.W - w0));
  const int64_t npan = jb / nr, q = run.lane / nr, l0 = run.lane % nr;
  int bad = 0;
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x + (run.n * C + c) * g.H * g.W;
    for (int i = 0; i < 6; ++i) {
      float* __restrict r = stage[i];
      const int64_t ih = 2 * run.ty + i - g.pt;
      std::fill(r, r + span, 0.0f);
      if (ih >= 0 && ih < g.H && m_hi > m_lo)
        std::memcpy(r + m_lo, xc + ih * g.W + w0 + m_lo, sizeof(float) * (m_hi - m_lo));
      for (int64_t m = 0; m < span; ++m) bad |= !(std::fabs(r[m]) <= lim);
      for (int64_t l = 0; l < len; ++l) {
        const float d0 = r[2 * l], d1 = r[2 * l + 1], d2 = r[2 * l + 2], d3 = r[2 * l + 3], d4 = r[2 * l + 4],
                    d5 = r[2 * l + 5];
        FASTCONV_WG5_BT(d0, d1, d2, d3, d4, d5, h[i][0][l], h[i][1][l], h[i][2][l], h[i][3][l], h[i][4][l],
                        h[i][5][l]);
      }
    }
    for (int j = 0; j < 6; ++j) {
      float* v[6];
      for (int a = 0; a < 6; ++a) v[a] = vt + int64_t(6 * a + j) * slab(npan * C * nr) + (q * C + c) * nr + l0;
      for (int64_t l = 0; l < len; ++l) {
        FASTCONV_WG5_BT(h[0][j][l], h[1][j][l], h[2][j][l], h[3][j][l], h[4][j][l], h[5][j][l], v[0][l], v[1][l],
                        v[2][l], v[3][l], v[4][l], v[5][l]);
      }
    }
  }
  return bad == 0;
}

// A^T on NA values (one lane each): the two outputs.
template <int NA>
inline void at_lane(const float* v, float& y0, float& y1);
template <>
inline void at_lane<4>(const float* v, float& y0, float& y1) {
  y0 = v[0] + v[1] + v[2];
  y1 = v[1] - v[2] - v[3];
}
template <>
inline void at_lane<6>(const float* v, float& y0, float& y1) {
  y0 = v[0] + v[1] + v[2] + v[3] + v[4];
  y1 = v[1] - v[2] + 2.0f * (v[3] - v[4]) + v[5];
}

template <int NA>
void output_run_t(const WinogradGeom& g, float* __restrict y, const Run& run, int64_t K, int64_t k0, int64_t kb,
                  int64_t KB, int64_t jb, const float* __restrict mt, const float* b) {
  alignas(64) float s[2][NA][kMaxRun];
  alignas(64) float out[2][2 * kMaxRun];
  const int64_t len = run.len, ow0 = 2 * run.tx0, oh0 = 2 * run.ty;
  const int64_t ncols = std::min<int64_t>(2 * len, g.OW - ow0);
  const int nrows = oh0 + 1 < g.OH ? 2 : 1;
  for (int64_t kk = 0; kk < kb; ++kk) {
    const int64_t k = k0 + kk;
    const float bias = b ? b[k] : 0.0f;
    for (int j = 0; j < NA; ++j) {  // A^T on the rows of M
      const float* mv[NA];
      for (int a = 0; a < NA; ++a) mv[a] = mt + int64_t(NA * a + j) * slab(KB * jb) + kk * jb + run.lane;
      for (int64_t l = 0; l < len; ++l) {
        float v[NA];
        for (int a = 0; a < NA; ++a) v[a] = mv[a][l];
        at_lane<NA>(v, s[0][j][l], s[1][j][l]);
      }
    }
    float* yk = y + ((run.n * K + k) * g.OH + oh0) * g.OW + ow0;
    for (int a = 0; a < nrows; ++a) {  // and on the columns
      float* __restrict o = ncols == 2 * len ? yk + a * g.OW : out[a];
      for (int64_t l = 0; l < len; ++l) {
        float v[NA], y0, y1;
        for (int j = 0; j < NA; ++j) v[j] = s[a][j][l];
        at_lane<NA>(v, y0, y1);
        o[2 * l] = y0 + bias;
        o[2 * l + 1] = y1 + bias;
      }
      if (o == out[a]) std::memcpy(yk + a * g.OW, out[a], sizeof(float) * ncols);
    }
  }
}
#endif
#undef FASTCONV_WG5_BT

// M rows for output channels [k0, k1) of the nxi GEMMs of one chunk. Whole
// MR-row panels; a short last panel of rem rows by the ISA's edge kernel
// (rem <= 8; with rem == 4 the last MR + 4 rows as two 8-row tiles, see
// UKernelEdgeSplitFn), else through a scratch tile.
void gemm_block(const GemmKernel<float>& kr, int nxi, const float* ut, const float* vt, float* mt, int64_t C,
                int64_t OCpad, int64_t k0, int64_t k1, int64_t KB, int64_t jb) {
  const int MR = kr.mr, NR = kr.nr;
  const int64_t npan = jb / NR;
  const int64_t rows = k1 - k0, rem = rows % MR;
  const bool split = rem == 4 && rows > MR && kr.ukernel_edge && kr.ukernel_edge_split;
  const int64_t full_end = k0 + (rows / MR - (split ? 1 : 0)) * MR;
  alignas(64) float tmp[kMaxTile];
  for (int xi = 0; xi < nxi; ++xi) {
    const float* u = ut + int64_t(xi) * OCpad * C;
    const float* v = vt + int64_t(xi) * slab(npan * C * NR);
    float* m = mt + int64_t(xi) * slab(KB * jb);
    for (int64_t q = 0; q < npan; ++q) {
      const float* bp = v + q * C * NR;
      float* mq = m + q * NR;
      for (int64_t i = k0; i < full_end; i += MR) kr.ukernel(C, u + i * C, bp, mq + (i - k0) * jb, jb, false);
      const int64_t i = full_end;
      if (split) {
        kr.ukernel_edge(8, C, u + i * C, bp, nullptr, 0, mq + (i - k0) * jb, jb, false);
        kr.ukernel_edge_split(C, u + i * C, bp, nullptr, 0, mq + (i + 8 - k0) * jb, jb, false);
      } else if (rem > 0 && rem <= 8 && kr.ukernel_edge) {
        kr.ukernel_edge(int(rem), C, u + i * C, bp, nullptr, 0, mq + (i - k0) * jb, jb, false);
      } else if (rem > 0) {
        kr.ukernel(C, u + i * C, bp, tmp, NR, false);
        for (int64_t r = 0; r < rem; ++r) std::memcpy(mq + (i - k0 + r) * jb, tmp + r * NR, sizeof(float) * NR);
      }
    }
  }
}

// The forward pass for kernel size R (3 or 5): NX = (R+1)^2 transformed
// positions, input / output transforms IN / OUT.
template <int NX, class In, class Out>
bool forward_impl(float* y, const float* x, const float* ut, const float* b, const WinogradGeom& g, int64_t N,
                  int64_t C, int64_t K, float lim, In in, Out out) {
  const GemmKernel<float>& kr = kernel_for<float>(active_kernels());
  const int MR = kr.mr, NR = kr.nr;
  const int64_t OCpad = round_up(K, MR);
  const int64_t T = N * g.TP;
  // Chunk: V~ (16*C*JB floats) within about 384 KiB, 1..4 panels; fewer when
  // the threads would otherwise not all have chunks.
  int64_t npan = std::max<int64_t>(1, std::min<int64_t>(4, (384 * 1024 / 4) / (NX * C * NR)));
  const int nthreads = num_threads();
  while (npan > 1 && ceil_div(T, npan * NR) < 2 * nthreads) --npan;
  const int64_t jb = npan * NR;
  const int64_t chunks = ceil_div(T, jb);
  // Output-channel block: M (16*KB*JB floats) within about 160 KiB, whole MR panels.
  int64_t KB = std::max<int64_t>(MR, (160 * 1024 / 4) / (NX * jb) / MR * MR);
  if (KB >= K) KB = K;
  else if (K - KB < MR) KB = K;  // no sliver of a block at the end
  const int nt = threads_for_flops(2.0 * NX * double(T) * C * K, chunks);
  const int64_t vsz = NX * slab(C * jb), msz = NX * slab(KB * jb);
  Buffer<float> scratch(checked_mul(nt, vsz + msz, "conv2d winograd scratch"), "conv2d winograd scratch");
  const int64_t max_runs = jb;  // every run holds at least one tile
  std::vector<Run> runs_all(size_t(nt * max_runs));
  std::atomic<bool> ok{true};
  parallel_for(chunks, nt, [&](int64_t ch, int tid) {
    if (!ok.load(std::memory_order_relaxed)) return;
    float* vt = scratch.data() + tid * (vsz + msz);
    float* mt = vt + vsz;
    Run* runs = runs_all.data() + tid * max_runs;
    const int64_t t0 = ch * jb, t1 = std::min(T, t0 + jb);
    const int64_t nruns = chunk_runs(g, t0, t1, NR, runs);
    if (t1 - t0 < jb) {  // zero the lanes past the last tile (they are summed, never stored)
      const int64_t tail = t1 - t0;
      for (int64_t xi = 0; xi < NX; ++xi)
        for (int64_t q = tail / NR; q < npan; ++q)
          for (int64_t c = 0; c < C; ++c) {
            float* p = vt + xi * slab(C * jb) + (q * C + c) * NR;
            const int64_t l0 = q == tail / NR ? tail % NR : 0;
            std::fill(p + l0, p + NR, 0.0f);
          }
    }
    bool good = true;
    for (int64_t cb = 0; cb < C; cb += kChanBlock)  // (see kChanBlock)
      for (int64_t r = 0; r < nruns; ++r)
        good &= in(g, x, runs[r], C, cb, std::min(C, cb + kChanBlock), NR, jb, lim, vt);
    if (!good) {
      ok.store(false, std::memory_order_relaxed);
      return;
    }
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      const int64_t k1 = std::min(K, k0 + KB);
      gemm_block(kr, NX, ut, vt, mt, C, OCpad, k0, k1, KB, jb);
      for (int64_t r = 0; r < nruns; ++r) out(g, y, runs[r], K, k0, k1 - k0, KB, jb, mt, b);
    }
  });
  return ok.load();
}

bool forward(float* y, const float* x, const float* ut, const float* b, const WinogradGeom& g, int64_t N, int64_t C,
             int64_t K, float lim) {
  return forward_impl<16>(y, x, ut, b, g, N, C, K, lim, input_run_t<4>, output_run_t<4>);
}

bool forward5(float* y, const float* x, const float* ut, const float* b, const WinogradGeom& g, int64_t N, int64_t C,
              int64_t K, float lim) {
  return forward_impl<36>(y, x, ut, b, g, N, C, K, lim, input_run_t<6>, output_run_t<6>);
}

// Weight gradient. With dM = A dY A^T per tile (grad_run) and V as in the
// forward (input_run_t<4>), dU[xi] (K x C) = sum over tiles of dM[xi] V[xi]^T, and
// dw[k, c] = G^T dU(k, c) G. The tiles are cut into chunks of jb and the
// chunks into R groups, both by the shape alone; each group sums its chunks in
// order into its own dU (the GEMM's accumulation), the groups are summed in
// order at the end: bitwise the same result at any thread count. Per chunk and
// xi, dM and V are turned into the micro-kernel's panels by the ISA's block
// transpose (the tiles become the reduction).
bool backward_weight(float* dw, const float* dy, const float* x, const WinogradGeom& g, int64_t N, int64_t C,
                     int64_t K, float lim) {
  const GemmKernel<float>& kr = kernel_for<float>(active_kernels());
  const int MR = kr.mr, NR = kr.nr;
  const int64_t Kpad = round_up(K, MR), Cpad = round_up(C, NR);
  const int64_t T = N * g.TP;
  // chunk: V and dM (16*(C+K)*jb floats) within about 1 MiB; 32..256 tiles
  const int64_t jb = std::max<int64_t>(32, std::min<int64_t>(256, (1 << 20) / (64 * (C + K)) / 8 * 8));
  const int64_t chunks = ceil_div(T, jb);
  const int64_t usz = 16 * Kpad * Cpad;
  // groups: up to 8, their partial sums within 32 MiB in all
  int64_t R = std::min<int64_t>({8, chunks, std::max<int64_t>(1, (32 << 20) / (4 * usz))});
  while (R & (R - 1)) R &= R - 1;  // a power of two (even shares for 2, 4 or 8 threads)
  const int nt = threads_for_flops(2.0 * 16.0 * double(T) * C * K, R);
  const int64_t vsz = 16 * slab(C * jb), dsz = 16 * slab(K * jb), asz = Kpad * jb, bsz = Cpad * jb;
  const int64_t per_thread = vsz + dsz + asz + bsz;
  Buffer<float> partial(checked_mul(R, usz, "conv2d winograd weight gradient"), "conv2d winograd weight gradient");
  Buffer<float> scratch(checked_mul(nt, per_thread, "conv2d winograd scratch"), "conv2d winograd scratch");
  std::vector<Run> runs_all(size_t(nt * jb));
  std::atomic<bool> ok{true};
  parallel_for(R, nt, [&](int64_t r, int tid) {
    float* vt = scratch.data() + tid * per_thread;
    float* dm = vt + vsz;
    float* ap = dm + dsz;
    float* bp = ap + asz;
    float* du = partial.data() + r * usz;
    Run* runs = runs_all.data() + tid * jb;
    int64_t c0, c1;
    split_range(chunks, R, r, c0, c1);
    if (c0 == c1) {
      std::fill(du, du + usz, 0.0f);
      return;
    }
    for (int64_t ch = c0; ch < c1; ++ch) {
      if (!ok.load(std::memory_order_relaxed)) return;
      const int64_t t0 = ch * jb, t1 = std::min(T, t0 + jb), kc = t1 - t0;
      const int64_t nruns = chunk_runs(g, t0, t1, int(jb), runs);
      bool good = true;
      for (int64_t cb = 0; cb < C; cb += kChanBlock)  // (see kChanBlock)
        for (int64_t i = 0; i < nruns; ++i)
          good &= input_run_t<4>(g, x, runs[i], C, cb, std::min(C, cb + kChanBlock), int(jb), jb, lim, vt);
      for (int64_t kb = 0; kb < K; kb += kChanBlock)
        for (int64_t i = 0; i < nruns; ++i)
          good &= grad_run(g, dy, runs[i], K, kb, std::min(K, kb + kChanBlock), jb, lim, dm);
      if (!good) {
        ok.store(false, std::memory_order_relaxed);
        return;
      }
      for (int xi = 0; xi < 16; ++xi) {
        // A~: dM[xi] rows in MR-row panels; B~: V[xi] rows in NR-column panels; k = tile
        for (int64_t i0 = 0; i0 < K; i0 += MR) {
          const int64_t rows = std::min<int64_t>(MR, K - i0);
          float* a = ap + i0 * kc;
          if (rows < MR) std::fill(a, a + MR * kc, 0.0f);
          kr.transpose(rows, kc, dm + xi * slab(K * jb) + i0 * jb, jb, a, MR);
        }
        for (int64_t j0 = 0; j0 < C; j0 += NR) {
          const int64_t cols = std::min<int64_t>(NR, C - j0);
          float* b = bp + j0 * kc;
          if (cols < NR) std::fill(b, b + NR * kc, 0.0f);
          kr.transpose(cols, kc, vt + xi * slab(C * jb) + j0 * jb, jb, b, NR);
        }
        float* u = du + xi * Kpad * Cpad;
        for (int64_t j0 = 0; j0 < Cpad; j0 += NR)
          for (int64_t i0 = 0; i0 < Kpad; i0 += MR)
            kr.ukernel(kc, ap + i0 * kc, bp + j0 * kc, u + i0 * Cpad + j0, Cpad, ch > c0);
      }
    }
  });
  if (!ok.load()) return false;
  // dw[k, c] = G^T (sum_r dU_r(k, c)) G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1].
  // Row by row: the R partial rows of each xi summed (in order r = 0, 1, ..)
  // into u[xi][c] by contiguous loops, then the transform per c. (Read per
  // (k, c) instead, the 16*R partial values lie Kpad*Cpad floats apart -- often
  // a multiple of 4 KiB, so all in one L1 set: that loop took 48% of 32x256x8x8's
  // weight gradient in a perf profile.)
  const int nt2 = threads_for_flops(64.0 * double(K) * C * R, K);
  Buffer<float> urows(checked_mul(nt2, 16 * Cpad, "conv2d winograd scratch"), "conv2d winograd scratch");
  parallel_for(K, nt2, [&](int64_t k, int tid) {
    float* u = urows.data() + tid * 16 * Cpad;
    for (int xi = 0; xi < 16; ++xi) {
      float* __restrict d = u + xi * Cpad;
      const float* src = partial.data() + (xi * Kpad + k) * Cpad;
      std::memcpy(d, src, sizeof(float) * C);
      for (int64_t r = 1; r < R; ++r) {
        const float* __restrict sr = src + r * usz;
        for (int64_t c = 0; c < C; ++c) d[c] += sr[c];
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      float t[3][4];  // G^T dU
      for (int j = 0; j < 4; ++j) {
        const float u0 = u[j * Cpad + c], u1 = u[(4 + j) * Cpad + c], u2 = u[(8 + j) * Cpad + c],
                    u3 = u[(12 + j) * Cpad + c];
        t[0][j] = u0 + 0.5f * (u1 + u2);
        t[1][j] = 0.5f * (u1 - u2);
        t[2][j] = 0.5f * (u1 + u2) + u3;
      }
      float* d = dw + (k * C + c) * 9;
      for (int i = 0; i < 3; ++i) {  // (G^T dU) G
        d[3 * i + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);
        d[3 * i + 1] = 0.5f * (t[i][1] - t[i][2]);
        d[3 * i + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];
      }
    }
  });
  return true;
}

}  // namespace

extern const WinogradKernels kWinograd;
const WinogradKernels kWinograd = {forward, backward_weight, forward5};

}  // namespace FASTCONV_WG_NS
}  // namespace fastconv
