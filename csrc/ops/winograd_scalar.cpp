// Winograd F(2x2, 3x3): the portable build of winograd_impl.h, the weight
// transform, and the choice of ISA build and of where the path is taken.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu.h"
#include "ops/weight_pack.h"
#include "ops/winograd.h"

#define FASTCONV_WG_NS scalar
#include "ops/winograd_impl.h"

namespace fastconv {

#ifdef FASTCONV_HAVE_X86_KERNELS
namespace avx2 {
extern const WinogradKernels kWinograd;
}
#endif
#ifdef FASTCONV_HAVE_AVX512_KERNELS
namespace avx512 {
extern const WinogradKernels kWinograd;
}
#endif

namespace {

const WinogradKernels& table() {
#ifdef FASTCONV_HAVE_X86_KERNELS
  const char* isa = active_kernels().isa;
#ifdef FASTCONV_HAVE_AVX512_KERNELS
  if (!std::strcmp(isa, "avx512")) return avx512::kWinograd;
#endif
  if (!std::strcmp(isa, "avx2")) return avx2::kWinograd;
#endif
  return scalar::kWinograd;
}

// U~ (see winograd_impl.h): U[xi](o, c) = (G g G^T)[xi] of the 3x3 kernel
// g = w[o, c] (or, flipped, w[c, o] rotated by 180 degrees), in MR-row panels.
void transform_weight(float* ut, const float* w, int64_t K, int64_t C, int mr, bool flipped) {
  constexpr int kMaxMR = 32;
  const int64_t OCpad = round_up(K, mr);
  const int64_t tasks = OCpad / mr;
  parallel_for(tasks, threads_for_flops(64.0 * double(OCpad) * C, tasks), [&](int64_t ip, int) {
    const int rows = int(std::min<int64_t>(mr, K - ip * mr));
    for (int64_t c = 0; c < C; ++c) {
      // the panel's rows side by side (lanes r), so each step below is one loop over r
      alignas(64) float g[9][kMaxMR];
      for (int i = 0; i < 9; ++i)
        for (int r = rows; r < mr; ++r) g[i][r] = 0.0f;  // padding rows: zero panels
      for (int r = 0; r < rows; ++r) {
        const int64_t o = ip * mr + r;
        if (flipped) {
          const float* s = w + (c * K + o) * 9;
          for (int i = 0; i < 9; ++i) g[i][r] = s[8 - i];
        } else {
          const float* s = w + (o * C + c) * 9;
          for (int i = 0; i < 9; ++i) g[i][r] = s[i];
        }
      }
      alignas(64) float t[4][3][kMaxMR];  // G g
      for (int j = 0; j < 3; ++j)
        for (int r = 0; r < mr; ++r) {
          t[0][j][r] = g[j][r];
          t[1][j][r] = 0.5f * (g[j][r] + g[3 + j][r] + g[6 + j][r]);
          t[2][j][r] = 0.5f * (g[j][r] - g[3 + j][r] + g[6 + j][r]);
          t[3][j][r] = g[6 + j][r];
        }
      for (int i = 0; i < 4; ++i) {  // (G g) G^T, straight into the panels
        float* u0 = ut + (((4 * i + 0) * tasks + ip) * C + c) * mr;
        float* u1 = ut + (((4 * i + 1) * tasks + ip) * C + c) * mr;
        float* u2 = ut + (((4 * i + 2) * tasks + ip) * C + c) * mr;
        float* u3 = ut + (((4 * i + 3) * tasks + ip) * C + c) * mr;
        for (int r = 0; r < mr; ++r) {
          u0[r] = t[i][0][r];
          u1[r] = 0.5f * (t[i][0][r] + t[i][1][r] + t[i][2][r]);
          u2[r] = 0.5f * (t[i][0][r] - t[i][1][r] + t[i][2][r]);
          u3[r] = t[i][2][r];
        }
      }
    }
  });
}

// Whether every |v[i]| <= lim (false for NaN), i < n; branch-free, vectorisable.
bool all_within(const float* v, int64_t n, float lim) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= !(std::fabs(v[i]) <= lim);
  return bad == 0;
}

WinogradGeom make_geom(const Conv2dParams& p) {
  WinogradGeom g;
  g.H = p.H;
  g.W = p.W;
  g.OH = p.OH;
  g.OW = p.OW;
  g.pt = p.pad_t;
  g.pl = p.pad_l;
  g.TH = (p.OH + 1) / 2;
  g.TW = (p.OW + 1) / 2;
  g.TP = g.TH * g.TW;
  return g;
}

}  // namespace

bool conv2d_winograd_applies(const Conv2dParams& p, bool is_float) {
  return is_float && p.KH == 3 && p.KW == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
         p.dil_w == 1 && p.G == 1 && p.pad_t >= 0 && p.pad_b >= 0 && p.pad_l >= 0 && p.pad_r >= 0 && p.OH > 0 &&
         p.OW > 0 && p.C > 0 && p.N > 0 && p.OC > 0;
}

// Alternated with the direct path in one process (functional calls, so the
// weight transform is paid per call), AVX-512, 1 and 2 threads, forward and
// data gradient, on the Intel Xeon development VM (probe 150-190 GFLOP/s per core):
// 32x64x32x32, 32x128x16x16, 32x256x8x8 and 8x64x56x56 1.7-2.2x faster;
// 1x64x32x32 1.5x, 1x128x16x16 1.3-1.45x, 1x16x32x32 1.56x, 1x32x16x16 1.25x.
// Few tiles against a large weight lose to the transform of the weight:
// 256 channels at 8x8, batch 1 (16 tiles) 0.3x, batch 2 0.69x, batch 4
// (64 tiles) 1.10x at 1 thread but 0.90x at 2, batch 8 1.33x. AVX2 (the
// portable transforms): 1.46-1.55x on 64 channels, 1.10-1.18x on 4x256x8x8.
bool conv2d_winograd_preferred(const Conv2dParams& p) {
  const int64_t tiles = p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2);
  return conv2d_winograd_applies(p, true) && p.C >= 16 && p.C <= 256 && p.OC >= 16 &&
         tiles >= std::max<int64_t>(64, p.C * p.OC / 512);
}

// The weight gradient: its transposes and the partial sums per group of tiles
// cost more than the forward's. Alternated with the direct path in one
// process (AVX-512, functional calls), 1 / 2 threads: 32x64x32x32 1.27x /
// 1.32x faster, 32x128x16x16 1.28x / 1.26x, 8x64x56x56 1.23x at 1 thread;
// 32x256x8x8 (512 tiles) 1.06x / 1.10x and within noise in later runs;
// 1x64x32x32 (256 tiles) 0.99x / 0.87x.
bool conv2d_winograd_weight_grad_preferred(const Conv2dParams& p) {
  const int64_t tiles = p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2);
  return conv2d_winograd_preferred(p) && tiles >= 1024;
}

bool conv2d_winograd_forward(float* y, const float* x, const float* w, const float* b, const Conv2dParams& p,
                             ConvWeightPack<float>* pack, bool flipped) {
  const GemmKernel<float>& kr = kernel_for<float>(active_kernels());
  const int64_t K = p.OC, C = p.C;
  // Bound on |x|, |w|: every transformed input is at most 4 max|x|, weight
  // 2.25 max|w|, each of the 16 sums of products at most 9 C max|x| max|w|,
  // and the output transform adds 9 of them: 81 C L^2 <= 1e37 < FLT_MAX / 30
  // keeps every intermediate finite wherever inputs pass.
  const float lim = float(std::sqrt(1e37 / (81.0 * double(C))));
  if (!all_within(w, K * C * 9, lim)) return false;
  if (b && !all_within(b, K, 1e37f)) return false;
  const int64_t usz = checked_mul(checked_mul(16, round_up(K, kr.mr), "conv2d winograd weight"), C,
                                  "conv2d winograd weight");
  Buffer<float> own;
  const float* ut;
  const int64_t key = flipped ? -2 : -1;
  if (pack && !flipped && pack->matches(w, 1, K, C * 9)) {
    ut = pack->custom_panels(kr, key, usz, [&](float* dst) { transform_weight(dst, w, K, C, kr.mr, flipped); });
  } else {
    own.reset(usz, "conv2d winograd weight");
    transform_weight(own.data(), w, K, C, kr.mr, flipped);
    ut = own.data();
  }
  return table().forward(y, x, ut, b, make_geom(p), p.N, C, K, lim);
}

bool conv2d_winograd_backward_weight(float* dw, const float* dy, const float* x, const Conv2dParams& p) {
  // Bound: |V| <= 4 max|x|, |dM| <= 4 max|dy|, each dU sums T products, G^T dU G
  // adds 9 of them (halved): 144 T L^2 <= 1e37.
  const int64_t T = p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2);
  const float lim = float(std::sqrt(1e37 / (144.0 * double(std::max<int64_t>(T, 1)))));
  return table().backward_weight(dw, dy, x, make_geom(p), p.N, p.C, p.OC, lim);
}

}  // namespace fastconv
