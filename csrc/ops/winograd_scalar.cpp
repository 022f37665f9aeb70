// Winograd F(2x2, 3x3) and F(2x2, 5x5): the portable build of winograd_impl.h,
// the weight transforms, and the choice of ISA build and of where the path is taken.
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

// U~ for F(2x2, 5x5): U[xi](o, c) = (G g G^T)[xi] of the 5x5 kernel (G in
// winograd_impl.h), in MR-row panels as transform_weight's. G applied as
// sums of its even and odd columns: t1,2 = -(E +- O)/6, t3,4 = P +- Q.
void transform_weight5(float* ut, const float* w, int64_t K, int64_t C, int mr, bool flipped) {
  constexpr int kMaxMR = 32;
  const int64_t OCpad = round_up(K, mr);
  const int64_t tasks = OCpad / mr;
  // G times the five values v[0..4] (lanes r < mr), into o[0..5]
  auto apply_g = [mr](const float (*v)[kMaxMR], float (*o)[kMaxMR], int vs, int os) {
    for (int r = 0; r < mr; ++r) {
      const float g0 = v[0][r], g1 = v[vs][r], g2 = v[2 * vs][r], g3 = v[3 * vs][r], g4 = v[4 * vs][r];
      const float E = g0 + g2 + g4, O = g1 + g3;
      const float P = g0 * (1.0f / 24) + g2 * (1.0f / 6) + g4 * (2.0f / 3), Q = g1 * (1.0f / 12) + g3 * (1.0f / 3);
      o[0][r] = 0.25f * g0;
      o[os][r] = -(E + O) * (1.0f / 6);
      o[2 * os][r] = -(E - O) * (1.0f / 6);
      o[3 * os][r] = P + Q;
      o[4 * os][r] = P - Q;
      o[5 * os][r] = g4;
    }
  };
  parallel_for(tasks, threads_for_flops(200.0 * double(OCpad) * C, tasks), [&](int64_t ip, int) {
    const int rows = int(std::min<int64_t>(mr, K - ip * mr));
    for (int64_t c = 0; c < C; ++c) {
      alignas(64) float g[25][kMaxMR];  // g[5*i + j][r]
      for (int i = 0; i < 25; ++i)
        for (int r = rows; r < mr; ++r) g[i][r] = 0.0f;
      for (int r = 0; r < rows; ++r) {
        const int64_t o = ip * mr + r;
        const float* src = flipped ? w + (c * K + o) * 25 : w + (o * C + c) * 25;
        for (int i = 0; i < 25; ++i) g[i][r] = flipped ? src[24 - i] : src[i];
      }
      alignas(64) float t[30][kMaxMR];  // G g: t[5*a + j]
      for (int j = 0; j < 5; ++j) apply_g(g + j, t + j, 5, 5);
      alignas(64) float u[36][kMaxMR];  // (G g) G^T: u[6*a + b]
      for (int a6 = 0; a6 < 6; ++a6) apply_g(t + 5 * a6, u + 6 * a6, 1, 1);
      for (int xi = 0; xi < 36; ++xi) std::memcpy(ut + ((xi * tasks + ip) * C + c) * mr, u[xi], sizeof(float) * mr);
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
  return is_float && (p.KH == 3 || p.KH == 5) && p.KW == p.KH && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
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
// F(2x2, 5x5) (forced; see below), forward / data gradient at 1 and 2
// threads: AlexNet conv2 (1x64x27x27 -> 192, 196 tiles) 1.68x / 1.25x and
// 1.33x / 1.17x; 8x32x28x28 -> 64 1.67x / 1.33x and 2.09x / 1.65x;
// 1x192x13x13 -> 256 (49 tiles) 0.81x / 0.91x at 1 thread.
bool conv2d_winograd_preferred(const Conv2dParams& p) {
  const int64_t tiles = p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2);
  // F(2x2, 5x5) only when asked for (set_conv_algorithm("winograd")): its
  // rounding errors are 3-10x the direct kernel's in the forward and 10-30x
  // in the data gradient (relative to the sum of |terms|, on the shapes of
  // tests/test_winograd.py), where F(2x2, 3x3)'s match the direct kernel's.
  // Taken by default for AlexNet's conv2, it moved the PyTorch parity test of
  // AlexNet's gradients past its tolerance (max error 0.00214 against
  // 0.00201); that test sits close to it on the direct kernels too (over it
  // for one of four other random inputs tried: 0.0053).
  return conv2d_winograd_applies(p, true) && p.KH == 3 && p.C >= 16 && p.C <= 256 && p.OC >= 16 &&
         tiles >= std::max<int64_t>(64, p.C * p.OC / 512);
}

// The weight gradient: its transposes and the partial sums per group of tiles
// cost more than the forward's. Alternated with the direct path in one
// process (functional calls) on the AMD Zen 5 VM, AVX-512, 1 / 2 threads:
// 32x64x32x32 1.42 / 1.49x faster, 32x128x16x16 1.54 / 1.56x, 32x256x8x8
// 1.45 / 1.31x, 8x64x32x32 1.37 / 1.25x, 8x64x56x56 1.35 / 1.40x, 1x64x32x32
// (256 tiles) 1.29 / 1.27x; below 256 tiles it varies with the thread count
// (1x128x16x16, 64 tiles: 1.34 / 0.82x; 1x32x16x16 1.07 / 0.78x), and 16
// channels lose (16x16x32x32 0.63 / 0.62x). AVX2 (portable transforms), 1
// thread: 1.26-1.50x on the batch layers above, 1.28x on 1x64x32x32. (On the
// Intel Xeon VM of an earlier session, before the transforms' channel blocks,
// prefetches and slab padding: 1.23-1.32x on the batch layers, 0.87-0.99x on
// 1x64x32x32.)
bool conv2d_winograd_weight_grad_applies(const Conv2dParams& p) {
  return conv2d_winograd_applies(p, true) && p.KH == 3;
}

bool conv2d_winograd_weight_grad_preferred(const Conv2dParams& p) {
  const int64_t tiles = p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2);
  return conv2d_winograd_preferred(p) && conv2d_winograd_weight_grad_applies(p) && tiles >= 256 && p.C >= 32 &&
         p.OC >= 32;
}

bool conv2d_winograd_forward(float* y, const float* x, const float* w, const float* b, const Conv2dParams& p,
                             ConvWeightPack<float>* pack, bool flipped) {
  const GemmKernel<float>& kr = kernel_for<float>(active_kernels());
  const int64_t K = p.OC, C = p.C, R = p.KH, NX = (R + 1) * (R + 1);
  // Bound on |x|, |w| (L): F(2x2, 3x3) transforms an input to at most 4 L
  // (the row sums of |B^T|, squared), a weight to at most 2.25 L, so each of
  // the 16 sums of products is at most 9 C L^2 and the output transform adds
  // 9 of them: 81 C L^2. F(2x2, 5x5): 100 L, 1.67 L, 7^2 of them: 8200 C L^2.
  // <= 1e37 (< FLT_MAX / 30) keeps every intermediate finite where inputs pass.
  const float lim = float(std::sqrt(1e37 / ((R == 3 ? 81.0 : 8200.0) * double(C))));
  if (!all_within(w, K * C * R * R, lim)) return false;
  if (b && !all_within(b, K, 1e37f)) return false;
  const int64_t usz = checked_mul(checked_mul(NX, round_up(K, kr.mr), "conv2d winograd weight"), C,
                                  "conv2d winograd weight");
  auto transform = [&](float* dst) {
    if (R == 3)
      transform_weight(dst, w, K, C, kr.mr, flipped);
    else
      transform_weight5(dst, w, K, C, kr.mr, flipped);
  };
  Buffer<float> own;
  const float* ut;
  if (pack && !flipped && pack->matches(w, 1, K, C * R * R)) {
    ut = pack->custom_panels(kr, R == 3 ? -1 : -3, usz, transform);
  } else {
    own.reset(usz, "conv2d winograd weight");
    transform(own.data());
    ut = own.data();
  }
  return (R == 3 ? table().forward : table().forward5)(y, x, ut, b, make_geom(p), p.N, C, K, lim);
}

bool conv2d_winograd_backward_weight(float* dw, const float* dy, const float* x, const Conv2dParams& p) {
  // Bound: |V| <= 4 max|x|, |dM| <= 4 max|dy|, each dU sums T products, G^T dU G
  // adds 9 of them (halved): 144 T L^2 <= 1e37.
  const int64_t T = p.N * ((p.OH + 1) / 2) * ((p.OW + 1) / 2);
  const float lim = float(std::sqrt(1e37 / (144.0 * double(std::max<int64_t>(T, 1)))));
  return table().backward_weight(dw, dy, x, make_geom(p), p.N, p.C, p.OC, lim);
}

}  // namespace fastconv
