// Direct convolution: a GEMM whose B operand is read in place.
//
// With stride 1, output (oh, ow) reads input (oh + kh*dh - pt, ow + kw*dw - pl).
// Lay the zero-padded input out as planes of Hp x Wp,
//     Hp = OH + dh*(KH-1),  Wp = OW + dw*(KW-1),
//     Xp[n, c, r, q] = x[n, c, r - pt, q - pl]  (0 outside x)
// and number output positions on the same row pitch, j = oh*Wp + ow. Then
//     X_col[(c, kh, kw)][j] = Xp[n, c0 + c][j + kh*dh*Wp + kw*dw]
// so each GEMM row is a contiguous run of Xp at a fixed offset off[k], and NR
// consecutive positions are one B row of the micro-kernel (ukernel_off): no
// im2col packing at all. Positions with ow >= OW ("junk" columns, (KW-1)*dw
// per row) are computed and dropped when the tile is stored.
//
//   Y_g (OCg x OH*Wp) = W_g (OCg x Kg, prepacked once) * X_col
//
// Without padding Xp is x itself; the few tiles at the very end of x whose
// junk lanes would read past it are packed (zero-filled) instead. With
// padding, Xp is one copy of the input (the same size as x, not Kg times it).
//
// Strided convolutions (forward only) take the same path after a phase split
// of the padded input: with strides (sh, sw), tap (kh, kw) at output (oh, ow)
// reads padded row (oh + ah)*sh + ph and column (ow + aw)*sw + pw, where
// kh*dh = ah*sh + ph and kw*dw = aw*sw + pw. So each channel becomes sh*sw
// phase planes of Hq x Wq,
//     Xs[n, c, (ph, pw), u, v] = Xpad[n, c, u*sh + ph, v*sw + pw],
//     Hq = OH + (KH-1)*dh / sh,  Wq = OW + (KW-1)*dw / sw,
// and row k = (c, kh, kw) of X_col is the run of Xs at the offset
//     c*sh*sw*Hq*Wq + (ph*sw + pw)*Hq*Wq + ah*Wq + aw
// on the Wq pitch: a stride-1 direct convolution whose taps are spread over
// the phase planes. No tap is added or dropped (K stays C/G*KH*KW, AlexNet's
// 11x11/4 included), nothing is packed per tile, and Xs is about the size of
// the padded input (planes no tap reads are built anyway: it is one pass).
// Work: tiles over (group, output-channel block, position block), batch
// folded into the positions; each tile accumulates in a private scratch
// block, so writes are disjoint and the sum order is fixed by the shape.
#include "ops/conv2d_direct.h"
#include "ops/depthwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/buffer.h"
#include "common/padded_row.h"
#include "common/parallel.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/gemm.h"
#include "ops/im2col.h"
#include "ops/weight_pack.h"

namespace fastconv {

namespace {
// The padded (phase-split) copy the direct forms build and their tap offsets:
// in double, so that dilations near 2^62 cannot overflow the sizes (a 1x1x3x4
// input with a 2x1 kernel at dilation 2^62 had wrapped the weight gradient's
// plane size to 12 elements, and the copy wrote past it). Past 2^50 elements
// the copy could never be allocated; such shapes go to the im2col forms,
// which read only the taps that land inside the input.
bool padded_geometry_fits(const Conv2dParams& p) {
  const double Hp = double(p.OH) + double(p.dil_h) * double(p.KH - 1) + std::abs(double(p.pad_t)) + std::abs(double(p.pad_b)),
               Wp = double(p.OW) + double(p.dil_w) * double(p.KW - 1) + std::abs(double(p.pad_l)) + std::abs(double(p.pad_r));
  const double limit = double(int64_t(1) << 50);
  return Hp * Wp * double(std::max<int64_t>(p.N, 1)) * double(std::max<int64_t>(p.C, 1)) <= limit;
}
}  // namespace

bool conv2d_direct_applies(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && !conv2d_is_depthwise(p) && padded_geometry_fits(p);
}

namespace {
constexpr int kMaxGather = 8;  // largest gather_mr of any kernel
// An exact tiling of at most this many tiles (a deep layer at batch 1) reads
// the weight rows in place and packs its B panels up front (see the forward).
constexpr int64_t kFewTiles = 32;

// The output-channel-vectorised (gather) tile for M output channels: the
// kernel's full-width one (nr channels), else its narrow one (nr/2, AVX-512's
// 16), where M fills it -- exactly (exact) or at least 3/4 of its lanes.
template <typename T>
struct GatherTile {
  UKernelGatherFn<T> fn;
  int mr, nr;
};
template <typename T>
GatherTile<T> gather_tile(const GemmKernel<T>& kr, int64_t M, bool exact) {
  const GatherTile<T> tiles[2] = {{kr.ukernel_gather, kr.gather_mr, kr.nr},
                                  {kr.ukernel_gather_narrow, kr.gather_narrow_mr, kr.nr / 2}};
  for (const GatherTile<T>& t : tiles) {
    if (!t.fn || t.mr > kMaxGather || t.nr > 32) continue;
    if (exact ? M == t.nr : 4 * M >= 3 * round_up(M, int64_t(t.nr))) return t;
  }
  return {nullptr, 0, 0};
}

// The gather tiles in the forward (see conv2d_direct_forward): one group,
// exactly a tile's width of output channels, and enough taps per position
// (K >= 128) that the transposed store of each tile is paid for. Measured at
// 1 thread on AVX2: LeNet's 6 -> 16 5x5 (K = 150) 1.5-1.6x faster; K = 144
// even; K = 64..72 and two channel blocks (32 channels) slower than the row
// panels.
template <typename T>
bool gather_applies(const Conv2dParams& p, const GemmKernel<T>& kr) {
  return p.G == 1 && p.Kg() >= 128 && gather_tile(kr, p.OC, true).fn;
}
}  // namespace

bool conv2d_direct_forward_applies(const Conv2dParams& p) {
  if (conv2d_is_depthwise(p) || !padded_geometry_fits(p)) return false;
  if (p.stride_h == 1 && p.stride_w == 1) return true;
  // Strided: the phase planes hold about as many elements as the padded input
  // (more when the stride exceeds the kernel's reach: 1x1/2 keeps a quarter);
  // keep that bounded, and keep the phase count small enough that each tile
  // still reads long runs.
  if (p.stride_h > 64 || p.stride_w > 64) return false;  // (and their product cannot overflow)
  const int64_t S = p.stride_h * p.stride_w;
  if (S > 64) return false;
  // every phase plane must be read by some tap (1x1/2 would build 4 planes and
  // read 1: im2col reads only what it needs there)
  auto all_phases = [](int64_t k, int64_t d, int64_t s) {
    std::vector<bool> seen(size_t(s), false);
    int64_t n = 0;
    for (int64_t i = 0; i < k && n < s; ++i)
      if (!seen[size_t(i * d % s)]) {
        seen[size_t(i * d % s)] = true;
        ++n;
      }
    return n == s;
  };
  if (!all_phases(p.KH, p.dil_h, p.stride_h) || !all_phases(p.KW, p.dil_w, p.stride_w)) return false;
  const int64_t Hq = p.OH + (p.KH - 1) * p.dil_h / p.stride_h, Wq = p.OW + (p.KW - 1) * p.dil_w / p.stride_w;
  const double phase_elems = double(S) * double(Hq) * double(Wq);
  const double padded_elems = double(p.H + std::max<int64_t>(0, p.pad_t) + std::max<int64_t>(0, p.pad_b)) *
                              double(p.W + std::max<int64_t>(0, p.pad_l) + std::max<int64_t>(0, p.pad_r));
  return phase_elems <= 2.0 * padded_elems + 64.0;
}

// Xp for padded (or cropped: pads may be negative) inputs, plus NR + Wp zeros of
// tail slack for the junk lanes of the last tile.
template <typename T>
void build_padded(T* xp, const T* x, const Conv2dParams& p, int64_t Hp, int64_t Wp, int64_t slack, bool serial,
                  int64_t u0, int64_t u1) {
  const int64_t planes = p.N * p.C, plane = Hp * Wp;
  if (u1 < 0 || u1 > Hp) u1 = Hp;
  // a memory pass: worth a second thread from ~64K elements, not ~1M like compute
  const int nt = serial ? 1 : threads_for_flops(16.0 * double(planes) * plane, planes * Hp);
  // fewer images than threads: each thread builds a band of rows of every
  // plane, the band its share of the output positions reads (see build_phases)
  const int64_t bands = p.N < nt ? std::min<int64_t>(Hp, nt) : 1, band = ceil_div(Hp, bands);
  parallel_for(planes * bands, nt, [&](int64_t task, int) {
    const int64_t t = task % planes, r0 = task / planes * band;
    const T* src = x + t * p.H * p.W;
    T* dst = xp + t * plane;
    const int64_t q_lo = std::max<int64_t>(0, p.pad_l), q_hi = std::min(Wp, p.W + p.pad_l);
    for (int64_t r = std::max(r0, u0); r < std::min(u1, r0 + band); ++r) {
      T* d = dst + r * Wp;
      const int64_t sr = r - p.pad_t;
      if (sr < 0 || sr >= p.H || q_hi <= q_lo) {
        std::fill(d, d + Wp, T(0));
        continue;
      }
      padded_row::write(d, src + sr * p.W + (q_lo - p.pad_l), Wp, q_lo, q_hi);
    }
  });
  if (u1 == Hp) std::fill(xp + planes * plane, xp + planes * plane + slack, T(0));
}
template void build_padded<float>(float*, const float*, const Conv2dParams&, int64_t, int64_t, int64_t, bool, int64_t,
                                  int64_t);
template void build_padded<double>(double*, const double*, const Conv2dParams&, int64_t, int64_t, int64_t, bool,
                                   int64_t, int64_t);

// Xs: the phase planes of the padded input (see the top of the file), S =
// sh*sw planes of Hq x Wq per channel, plus `slack` zeros of tail. With stride 1
// this is Xp, the padded (or cropped: pads may be negative) input.
template <typename T>
void build_phases(T* xs, const T* x, const Conv2dParams& p, int64_t Hq, int64_t Wq, int64_t slack, bool serial,
                  int64_t u0, int64_t u1) {
  const int64_t sh = p.stride_h, sw = p.stride_w, S = sh * sw, plane = Hq * Wq;
  if (u1 < 0 || u1 > Hq) u1 = Hq;
  const SplitRowFn<T> split_row = kernel_for<T>(active_kernels()).split_row;
  // Plane (ph, pw) row u, column v holds input (u*sh + ph - pad_t, v*sw + pw - pad_l),
  // zero outside the input. Each input row goes out to its sw phase rows by the
  // ISA's split_row (padding columns included), so each plane row is written
  // once, front to back. Per plane row, a fill / strided copy / fill had taken
  // 14% of a stride-2 3x3 layer's time (perf, 8x64x32x32 3x3/2). One task per
  // (image, channel) (a task per row phase had read every sh-th row of all of
  // x: that layer 1.70 -> 1.55 ms at 1 thread), and within it one split_row
  // call per row phase, for all its rows: one call per row had spent most of
  // its time on the call and the lane masks (split_row 8.8% and this loop 3.2%
  // of that layer's forward in a profile). Alternated, separate processes, 2
  // runs: that layer 1.42-1.45 -> 1.29-1.31 ms at 1 thread, 0.724-0.726 ->
  // 0.657-0.668 at 2; its weight gradient 1.59 -> 1.45 ms and AlexNet conv1
  // 0.670 -> 0.657 at 1 thread (20 rounds in one process).
  // Fewer images than threads (batch 1): tasks are bands of plane rows, band
  // by band, so that under the static schedule each thread builds the rows its
  // own share of the output positions reads (the consumers split the positions
  // in order, and position order is row order) instead of the other thread's:
  // in the VMs' slow spells each line that changes core costs ~400 ns.
  // Alternated in one process in such a spell at 2 threads, on AlexNet conv1's
  // forward before it built its rows per thread (row_private): 0.42 -> 0.40 ms
  // (channel by channel, the thread that built a plane was not the one that
  // read most of it). The shared copies of the weight gradients and of the
  // up-front panels still use it.
  // a memory pass: worth a second thread from ~64K elements, not ~1M like compute
  const int nt = serial ? 1 : threads_for_flops(16.0 * double(p.N * p.C) * S * plane, p.N * p.C * Hq);
  const int64_t ublocks = p.N < nt ? std::min<int64_t>(Hq, nt) : 1;
  const int64_t ublock = ceil_div(Hq, ublocks), tasks = p.N * p.C * ublocks;
  parallel_for(tasks, nt, [&](int64_t t, int) {
    const int64_t ub = t / (p.N * p.C), nc = t - ub * (p.N * p.C);
    const T* src = x + nc * p.H * p.W;
    const int64_t ua = std::max(u0, ub * ublock), ue = std::min(u1, (ub + 1) * ublock);
    // rounded up, for numerators of either sign (pads may be negative)
    auto cdiv = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
    for (int64_t ph = 0; ph < sh; ++ph) {  // row phase ph: its rows u in [ua, ue), input row u*sh + ph - pad_t
      T* dst = xs + (nc * S + ph * sw) * plane;  // plane (ph, pw) at dst + pw*plane
      // the rows whose input row lies inside x: [va, ve)
      const int64_t va = std::min(ue, std::max(ua, cdiv(p.pad_t - ph, sh)));
      const int64_t ve = std::max(va, std::min(ue, cdiv(p.H + p.pad_t - ph, sh)));
      for (int64_t pw = 0; pw < sw; ++pw) {
        std::fill(dst + pw * plane + ua * Wq, dst + pw * plane + va * Wq, T(0));
        std::fill(dst + pw * plane + ve * Wq, dst + pw * plane + ue * Wq, T(0));
      }
      if (ve > va)
        split_row(ve - va, Wq, src + (va * sh + ph - p.pad_t) * p.W, sh * p.W, p.W, -p.pad_l, sw, dst + va * Wq, Wq,
                  plane);
    }
  });
  if (u1 == Hq) std::fill(xs + p.N * p.C * S * plane, xs + p.N * p.C * S * plane + slack, T(0));
}
template void build_phases<float>(float*, const float*, const Conv2dParams&, int64_t, int64_t, int64_t, bool, int64_t,
                                  int64_t);
template void build_phases<double>(double*, const double*, const Conv2dParams&, int64_t, int64_t, int64_t, bool,
                                   int64_t, int64_t);

namespace {



// Output positions are cut into tiles of NR that the micro-kernel computes at
// once. Row tiling: NR columns of one output row (the last one per row short)
// -- whole tiles land in y in place. Flat tiling: NR consecutive positions on
// the Wp pitch, crossing rows (junk columns included) -- less waste for narrow
// images. Whichever needs fewer tiles is used.
struct Tile {
  int64_t n, q0;  // image, first position on the Wp pitch
  int64_t oh, ow0;
  bool direct;    // row tiling and all NR columns inside the row
};

//
// Exact tiling: NR consecutive valid positions, crossing rows and images (the
// batch folded in), packed into a panel once per tile and K slice -- no junk
// lanes at all. Small images lose a large share of lanes to junk (8x8 with a
// 3x3 kernel: 80 positions on the pitch for 64 outputs); when that share is
// worth more than the packing (each packed panel is reused by all M/MR row
// panels of the weight, so its cost goes as ~1/M), this tiling is used.
//
// Row-group tiling: output rows exactly NR/2 or NR/4 wide (16x16 and 8x8
// images on AVX-512) -- each tile is R = 2 or 4 whole rows, its B rows read in
// place in R pieces Wp apart (the kernel's ukernel_off2 / ukernel_off4): no
// junk lanes and no packing.
struct DirectTiling {
  enum Mode { kRows, kFlat, kExact, kRowGroups };
  int64_t N, OH, OW, Wp, NR, TW, per_image, tiles;
  int64_t R = 1;  // rows per tile (row groups)
  Mode mode;
  bool rows;
  // group2 / group4: the kernel reads B rows in halves / quarters
  DirectTiling(const Conv2dParams& p, int64_t wp, int nr, int64_t M, bool group2 = false, bool group4 = false)
      : N(p.N), OH(p.OH), OW(p.OW), Wp(wp), NR(nr) {
    // (not for a few tiles: the exact tiling's in-place weight rows win there,
    // 1x256x8x8 3x3 0.33 against 0.38 ms at 1 thread)
    if (((group2 && OW == NR / 2) || (group4 && OW == NR / 4)) && N * ceil_div(OH, int64_t(NR / OW)) > kFewTiles) {
      mode = kRowGroups;
      rows = false;
      TW = 1;
      R = NR / OW;
      per_image = ceil_div(OH, R);
      tiles = checked_mul(N, per_image, "conv2d positions");
      return;
    }
    TW = ceil_div(OW, NR);
    const int64_t flat = ceil_div(OH * Wp, NR);
    rows = OH * TW <= flat;
    mode = rows ? kRows : kFlat;
    per_image = rows ? OH * TW : flat;
    tiles = checked_mul(N, per_image, "conv2d positions");
    const int64_t exact = ceil_div(checked_mul(checked_mul(N, OH, "conv2d positions"), OW, "conv2d positions"), NR);
    // packing a panel costs about 4 rows of its FMAs: at 8, AlexNet conv2's dx
    // (M = 64, 27 of 32 lanes used per row tile) had stayed on the row tiling;
    // exact is 1.05x there (2.21 -> 2.09 ms, 1 thread, 2 runs each), the
    // benchmark's other layers within noise
    const double pack_cost = 4.0 / double(std::max<int64_t>(M, 1)) + 0.05;
    if (double(tiles) > double(exact) * (1.0 + pack_cost)) {
      mode = kExact;
      rows = false;
      tiles = exact;
    }
  }
  Tile at(int64_t t) const {
    Tile tl;
    if (mode == kExact) {
      const int64_t P = OH * OW, j = t * NR;
      tl.n = j / P;
      const int64_t rem = j - tl.n * P;
      tl.oh = rem / OW;
      tl.ow0 = rem - tl.oh * OW;
      tl.q0 = 0;
      tl.direct = rem + NR <= P;  // NR consecutive outputs of one image: a run of y
      return tl;
    }
    tl.n = t / per_image;
    const int64_t ti = t - tl.n * per_image;
    if (mode == kRowGroups) {  // rows R*ti .. R*ti + R-1: NR consecutive outputs when all exist
      tl.oh = R * ti;
      tl.ow0 = 0;
      tl.q0 = tl.oh * Wp;
      tl.direct = tl.oh + R <= OH;
      return tl;
    }
    if (rows) {
      tl.oh = ti / TW;
      tl.ow0 = (ti - tl.oh * TW) * NR;
      tl.q0 = tl.oh * Wp + tl.ow0;
      tl.direct = tl.ow0 + NR <= OW;
    } else {
      tl.q0 = ti * NR;
      tl.oh = tl.q0 / Wp;
      tl.ow0 = tl.q0 - tl.oh * Wp;
      // no junk columns (Wp == OW): the tile is a run of y unless it passes the image's end
      tl.direct = Wp == OW && tl.q0 + NR <= OH * OW;
    }
    return tl;
  }
  // out[u] = at(t0 + u), u < count: the row tiling's walked from the first
  // (no division per tile), the others' from at()
  void tiles_from(int64_t t0, int64_t count, Tile* out) const {
    if (count <= 0) return;
    out[0] = at(t0);
    if (mode != kRows) {
      for (int64_t u = 1; u < count; ++u) out[u] = at(t0 + u);
      return;
    }
    Tile tl = out[0];
    for (int64_t u = 1; u < count; ++u) {
      tl.ow0 += NR;
      if (tl.ow0 >= TW * NR) {
        tl.ow0 = 0;
        if (++tl.oh == OH) {
          tl.oh = 0;
          ++tl.n;
        }
      }
      tl.q0 = tl.oh * Wp + tl.ow0;
      tl.direct = tl.ow0 + NR <= OW;
      out[u] = tl;
    }
  }
  // f(first lane, count, image, offset in the output plane) for each valid run of the tile
  template <class F>
  void for_each_run(const Tile& tl, F&& f) const {
    if (mode == kRows) {  // lanes past the row end belong to other tiles
      f(0, std::min<int64_t>(NR, OW - tl.ow0), tl.n, tl.oh * OW + tl.ow0);
      return;
    }
    if (mode == kRowGroups) {
      for (int64_t r = 0; r < R && tl.oh + r < OH; ++r) f(r * OW, OW, tl.n, (tl.oh + r) * OW);
      return;
    }
    int64_t oh = tl.oh, ow = tl.ow0, l = 0;
    if (mode == kExact) {  // runs along output rows, into the next image at the end of one
      int64_t n = tl.n;
      while (l < NR && n < N) {
        const int64_t cnt = std::min<int64_t>(NR - l, OW - ow);
        f(l, cnt, n, oh * OW + ow);
        l += cnt;
        ow += cnt;
        if (ow == OW) {
          ow = 0;
          if (++oh == OH) {
            oh = 0;
            ++n;
          }
        }
      }
      return;
    }
    while (l < NR && oh < OH) {
      const int64_t run = std::min<int64_t>(NR - l, Wp - ow);
      if (ow < OW) f(l, std::min(run, OW - ow), tl.n, oh * OW + ow);
      l += run;
      ow = 0;
      ++oh;
    }
  }
};

}  // namespace

namespace {
// The flipped weight of conv2d_direct_forward's `flipped` (see its header)
// written out: OC rows of Kg, row-major. A block of CB rows per task, spread
// over the threads (a serial flip had cost 0.12 ms of a 1x256x8x8 3x3 dx at 1
// thread); for each o the block's source, w[g*Cg + o, c0 .. c0 + CB), is one
// contiguous run.
template <typename T>
void flip_weight_for_data_grad(T* wt, const T* w, const Conv2dParams& p) {
  const int64_t M = p.OCg(), Cg = p.Cg(), KK = p.KH * p.KW;  // Cg: the other convolution's output channels per group
  const int64_t CB = 16, cblocks = ceil_div(M, CB), tasks = p.G * cblocks;
  parallel_for(tasks, threads_for_flops(16.0 * double(p.OC) * p.Kg(), tasks), [&](int64_t t, int) {
    const int64_t g = t / cblocks, c0 = (t - g * cblocks) * CB, cn = std::min(CB, M - c0);
    T* const dst = wt + (g * M + c0) * Cg * KK;
    for (int64_t o = 0; o < Cg; ++o) {
      const T* src = w + ((g * Cg + o) * M + c0) * KK;
      for (int64_t i = 0; i < cn; ++i)
        for (int64_t k = 0; k < KK; ++k) dst[(i * Cg + o) * KK + k] = src[i * KK + KK - 1 - k];
    }
  });
}

// prepack_a_groups of the flipped weight, from w: for each panel and each o,
// the panel rows' KK taps are a block of w with rows KK apart, transposed into
// the panel with the taps reversed (a negative destination stride) -- one pass
// instead of the flip and then the transposes.
template <typename T>
void prepack_a_flipped(T* dst, const T* w, const Conv2dParams& p, const GemmKernel<T>& kr, int64_t kc,
                       bool serial = false) {
  const int MR = kr.mr;
  const int64_t M = p.OCg(), K = p.Kg(), Cg = p.Cg(), KK = p.KH * p.KW;
  const int64_t panels = ceil_div(M, int64_t(MR)), asz = prepacked_a_size(M, K, kr), tasks = p.G * panels;
  const int64_t Mpad = round_up(M, int64_t(MR));
  parallel_for(tasks, serial ? 1 : threads_for_flops(16.0 * double(p.G) * M * K, tasks), [&](int64_t t, int) {
    const int64_t g = t / panels, q = t - g * panels;
    const int64_t i0 = q * MR, rows = std::min<int64_t>(MR, M - i0);
    for (int64_t pc = 0; pc < K; pc += kc) {
      const int64_t kb = std::min<int64_t>(kc, K - pc);
      T* d = dst + g * asz + Mpad * pc + q * MR * kb;
      // taps k = o*KK + kk of the slice: kk = KK-1-j of source column j
      for (int64_t o = pc / KK; o * KK < pc + kb; ++o) {
        const int64_t kk0 = std::max<int64_t>(0, pc - o * KK), kk1 = std::min<int64_t>(KK, pc + kb - o * KK);
        const int64_t j0 = KK - kk1, j1 = KK - kk0;  // source columns [j0, j1)
        const T* src = w + ((g * Cg + o) * M + i0) * KK + j0;
        T* out = d + (o * KK + (KK - 1 - j0) - pc) * MR;  // column j0's row of the panel; j0 + 1's is MR before it
        kr.transpose(rows, j1 - j0, src, KK, out, -int64_t(MR));
      }
      for (int64_t k = 0; k < kb; ++k)
        for (int r = int(rows); r < MR; ++r) d[k * MR + r] = T(0);
    }
  });
}
}  // namespace

template <typename T>
void conv2d_direct_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p,
                           ConvWeightPack<T>* pack, bool flipped) {
  if (p.N == 0 || p.OC == 0) return;
  // the paths that read the weight other than through its packed panels take the flip written out
  Buffer<T> wflip;
  auto unflip = [&]() {
    if (!flipped) return;
    wflip.reset(checked_mul(p.OC, p.Kg(), "conv2d flipped weight"), "conv2d flipped weight");
    flip_weight_for_data_grad(wflip.data(), w, p);
    w = wflip.data();
    flipped = false;
  };
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  const int MR = kr.mr, NR = kr.nr;
  const int64_t M = p.OCg(), K = p.Kg(), Cg = p.Cg();
  const int64_t sh = p.stride_h, sw = p.stride_w, S = sh * sw;
  // phase planes (one per channel at stride 1): Hp x Wp
  const int64_t Hp = p.OH + p.dil_h * (p.KH - 1) / sh, Wp = p.OW + p.dil_w * (p.KW - 1) / sw, plane = Hp * Wp;
  const int64_t chan = checked_mul(S, plane, "conv2d phase planes");  // elements per channel of Xs
  // row groups where the kernel has them: against the exact tiling's packed
  // panels, one process per setting, 3 runs at 1 thread: 32x128x16x16 3x3
  // forward 9.87-10.47 -> 9.44-9.94 ms, its dx 10.2-10.8 -> 9.67-10.03 ms
  // (two rows); 32x256x8x8 forward 10.38-11.03 -> 10.04-10.53 ms, dx
  // 10.87-11.38 -> 10.30-10.69 ms (four rows)
  const DirectTiling tiling(p, Wp, NR, M, kr.ukernel_off2 != nullptr, kr.ukernel_off4 != nullptr);
  const bool groups_r = tiling.mode == DirectTiling::kRowGroups;
  const int64_t RW = groups_r ? NR / tiling.R : NR;  // lanes per piece of a B row
  auto lane_off = [&](int64_t l) { return l / RW * (groups_r ? Wp : RW) + l % RW; };  // lane l's offset in Xs
  const int64_t lane_reach = lane_off(NR - 1);  // furthest lane's offset
  // the edge kernel's piece offset: halves hi apart, or quarters (-hi) apart
  const int64_t hi = !groups_r ? NR / 2 : tiling.R == 2 ? Wp : -Wp;
  const bool exact = tiling.mode == DirectTiling::kExact;
  const int64_t J = checked_mul(tiling.tiles, NR, "conv2d positions");
  const bool in_place = S == 1 && p.pad_t == 0 && p.pad_b == 0 && p.pad_l == 0 && p.pad_r == 0;

  // Xs: x itself, or one padded (and phase-split) copy -- of the whole batch,
  // or (per_image) of one image at a time, built by the thread that is about
  // to read it: one image's copy stays in that core's L2 where a batch's goes
  // out to memory and comes back, and the scratch is an image per thread
  // instead of the whole padded batch (76 MB for 256x64x32x32). Measured in
  // one process against the batch copy (10 rounds): 1.00-1.03x at 1 thread,
  // 1.03-1.04x at 2 on the batch-32 3x3 layers and the CIFAR VGG. Tilings
  // whose tiles stay inside one image (rows, flat), whole-M tasks, not the
  // gather path.
  const int64_t slack = NR + Wp;
  const int nthreads = num_threads();
  TileSplit s = split_tiles(M, J, MR, NR, kr.nc, p.G, nthreads);
  const int64_t img_elems = checked_add(checked_mul(p.C, chan, "conv2d padded input"), slack, "conv2d padded input");
  const bool per_image = !in_place && !exact && p.N >= 2 && s.mcount == 1 && !gather_applies(p, kr) &&
                         double(p.N) * double(img_elems) * sizeof(T) > double(1 << 20);
  // the shared copy of the whole batch (X), where one is read: made once the
  // split of the work is known (see row_private)
  Buffer<T> padded;
  const T* X = x;
  auto build_shared = [&]() {
    padded.reset(checked_add(checked_mul(checked_mul(p.N, p.C, "conv2d padded input"), chan, "conv2d padded input"),
                             slack, "conv2d padded input"),
                 "conv2d padded input");
    if (S == 1)
      build_padded(padded.data(), x, p, Hp, Wp, slack);
    else
      build_phases(padded.data(), x, p, Hp, Wp, slack);
    X = padded.data();
  };
  const int64_t x_total = p.N * p.C * chan;  // elements of Xs proper (slack excluded)

  // B row offsets relative to channel 0 of the group at position j
  std::vector<int64_t> offs(static_cast<size_t>(K));
  int64_t off_max = 0;
  for (int64_t c = 0, k = 0; c < Cg; ++c)
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const int64_t eh = kh * p.dil_h, ew = kw * p.dil_w;
        const int64_t o = c * chan + ((eh % sh) * sw + ew % sw) * plane + (eh / sh) * Wp + ew / sw;
        offs[size_t(k++)] = o;
        off_max = std::max(off_max, o);
      }

  // Few output channels (LeNet's 16, or 32): the weight's row panels would be
  // mostly padding or too few to reuse a tile's B rows, so the roles swap --
  // tiles of GM output positions (exact: no junk lanes) by GN output channels
  // (the gather tile's width), each position's taps read in place (broadcast)
  // and the weight transposed into GN-channel rows. The tile is stored
  // transposed into y.
  if (gather_applies(p, kr)) {
    unflip();
    if (!in_place) build_shared();
    const GatherTile<T> gt = gather_tile(kr, p.OC, true);
    const int GM = gt.mr, GN = gt.nr;
    const int64_t OCB = p.OC / GN, total = checked_mul(p.N, p.P(), "conv2d positions"), P = p.P();
    Buffer<T> wt(checked_mul(p.OC, K, "conv2d packed weight"), "conv2d packed weight");
    for (int64_t ob = 0; ob < OCB; ++ob) kr.transpose(GN, K, w + ob * GN * K, K, wt.data() + ob * K * GN, GN);
    // Blocks of TB consecutive positions (whole tiles): each tile's GM x GN
    // result goes transposed into an L1-resident stage (GN rows of TB), which
    // is then copied out a row of y at a time -- long runs instead of GM-float
    // pieces GN rows apart (rows P apart may all fall in one cache set).
    const int64_t TB = int64_t(GM) * 10;
    const int64_t kcg = balanced_kc(K, kr.kc), blocks = ceil_div(total, TB);
    parallel_for(blocks, threads_for_flops(2.0 * double(p.OC) * K * total, blocks), [&](int64_t blk, int) {
      const int64_t q0 = blk * TB, cnt = std::min(TB, total - q0);
      alignas(64) T stage[32 * 10 * kMaxGather];
      alignas(64) T ct[kMaxGather * 32];
      // each position's window origin, walked from the block's first (one
      // division per block, not two per position and tile); lanes past the
      // end repeat the last position
      const T* org[10 * kMaxGather];
      {
        int64_t n = q0 / P, r = q0 - n * P, oh = r / p.OW, ow = r - oh * p.OW;
        for (int64_t u = 0; u < cnt; ++u) {
          org[u] = X + n * p.C * chan + oh * Wp + ow;
          if (++ow == p.OW) {
            ow = 0;
            if (++oh == p.OH) {
              oh = 0;
              ++n;
            }
          }
        }
        for (int64_t u = cnt; u < round_up(cnt, int64_t(GM)); ++u) org[u] = org[cnt - 1];
      }
      for (int64_t ob = 0; ob < OCB; ++ob) {
        for (int64_t t0 = 0; t0 < cnt; t0 += GM) {
          for (int64_t pc = 0; pc < K; pc += kcg)
            gt.fn(std::min(kcg, K - pc), org + t0, offs.data() + pc, wt.data() + ob * K * GN + pc * GN, ct, GN, pc > 0);
          // stage[j*TB + t0 + i] = ct[i*GN + j]: the tile turned in registers
          kr.transpose(std::min<int64_t>(GM, cnt - t0), GN, ct, GN, stage + t0, TB);
        }
        // copy out, split where the block crosses into the next image
        for (int64_t u = 0; u < cnt;) {
          const int64_t q = q0 + u, n = q / P, r = q - n * P, len = std::min(cnt - u, P - r);
          for (int j = 0; j < GN; ++j) {
            const int64_t o = ob * GN + j;
            const T bv = b ? b[o] : T(0);
            T* dst = y + (n * p.OC + o) * P + r;
            const T* src = stage + j * TB + u;
            for (int64_t v = 0; v < len; ++v) dst[v] = src[v] + bv;
          }
          u += len;
        }
      }
    });
    return;
  }

  // A: all groups' weights packed once -- unless there are so few position
  // tiles that packing would cost about as much as using the panels (a deep
  // layer at batch 1: 512x4608 weights, one tile of 4x4 outputs): then the
  // weight rows are read in place by the row kernel (exact tiling only, whose
  // B panels are packed). Where the row kernel is shorter than the packed one
  // (AVX-512: 8 rows against 12), only while no prepacked panels are at hand:
  // alternated in one process, 1 and 2 threads, the row kernel was 1.06-1.31x
  // faster on batch-1/2 layers of 8x8 and 16x16 (1x256x8x8 3x3: 0.40 -> 0.33 ms).
  // Exact tiling with output rows at least half a tile wide, where the ISA has
  // the gap kernels (AVX-512): no B panels at all -- each whole tile's B rows
  // are read in place, each half from two masked loads (UKernelGapFn) -- and
  // the packed A on the 12-row kernel instead of the row kernel. Alternated
  // in one process at 1 thread against the row kernel on packed B panels, 2
  // runs: AlexNet conv2 1.86-1.90 -> 1.82-1.83 ms, its data gradient
  // 2.04-2.11 -> 1.95-1.96; at 2 threads 1.10-1.11 -> 1.07-1.08 for the data
  // gradient, the forward within noise; AlexNet conv1, the strided 3x3 and
  // 1x256x8x8 within noise.
  const bool have_pack = pack && pack->matches(w, p.G, M, K);
  const bool gap_k = exact && kr.ukernel_gap && p.OW >= kr.nr / 2;
  const bool a_rows = exact && tiling.tiles <= kFewTiles && kr.ukernel_rows &&
                      (kr.rows_mr == MR || !have_pack) && !gap_k;
  if (a_rows || pack) unflip();
  const int AM = a_rows ? kr.rows_mr : MR;  // rows per A tile
  if (AM != MR) s = split_tiles(M, J, AM, NR, kr.nc, p.G, nthreads);
  const int64_t asz = a_rows ? 0 : prepacked_a_size(M, K, kr), Mpad = round_up(M, MR);
  // (the kernel's longer direct slice, see kc_direct, beyond two slices of kc)
  const int64_t kc = balanced_kc(K, K > 2 * int64_t(kr.kc) ? std::max(kr.kc, kr.kc_direct) : kr.kc);
  Buffer<T> apacked;
  const T* apanels = !a_rows && have_pack ? pack->panels(kr, kc) : nullptr;

  // Exact tiling: tile jt's valid positions for taps [k0, k0 + kb) into a panel
  // of kb rows of NR, run by run (runs cross rows and images); lanes past the
  // last image are zero.
  const int64_t total_pos = checked_mul(p.N, p.P(), "conv2d positions");
  // Whole tiles on the gap kernels (gap_k): output rows at least half a tile
  // wide, so each half of a B row crosses at most one row end.
  const int64_t L = NR / 2;
  auto pos_off = [&](int64_t j, int64_t g) {  // position j's element in Xs (channel g*Cg)
    const int64_t n = j / p.P(), r = j - n * p.P(), oh = r / p.OW;
    return (n * p.C + g * Cg) * chan + oh * Wp + (r - oh * p.OW);
  };
  // a whole tile's two halves as GapLanes (relative to Xb, element `first` of Xs)
  auto gap_lanes = [&](int64_t first, int64_t g, int64_t jt) {
    GapLanes gl{};
    for (int v = 0; v < 2; ++v) {
      const int64_t j = jt + v * L, ow = j % p.OW, s = std::min(L, p.OW - ow);
      gl.at[v] = pos_off(j, g) - first;
      if (s < L) {
        gl.gap[v] = pos_off(j + s, g) - first - (gl.at[v] + s);
        gl.mask[v] = uint32_t(((uint64_t(1) << L) - 1) & ~((uint64_t(1) << s) - 1));
      }
    }
    return gl;
  };
  // (from Xb, whose element 0 is element `first` of Xs)
  auto pack_exact = [&](const T* Xb, int64_t first, T* panel, int64_t g, int64_t jt, int64_t k0, int64_t kb) {
    tiling.for_each_run(tiling.at(jt / NR), [&](int64_t l0, int64_t cnt, int64_t n, int64_t yoff) {
      const int64_t oh = yoff / p.OW, ow = yoff - oh * p.OW;
      kr.copy_runs(kb, Xb + (n * p.C + g * Cg) * chan - first + oh * Wp + ow, offs.data() + k0, cnt, panel + l0, NR);
    });
    const int64_t filled = std::min<int64_t>(NR, total_pos - jt);
    if (filled < NR)
      for (int64_t k = 0; k < kb; ++k) std::fill(panel + k * NR + filled, panel + (k + 1) * NR, T(0));
  };

  // Exact tiling with few tiles (a deep layer at batch 1): the tiles' B panels
  // are packed once, up front, for all of K, and the tasks split the weight's
  // row panels finely -- instead of every row block packing the same panels.
  // Unless the tiles split evenly enough between the threads (each thread's
  // share within 10% of the mean): then each thread takes a block of tiles
  // for all rows of the weight (read in place), packing only its own panels
  // -- no panel read by both threads, no region to pack them first. Alternated
  // in one process at 2 threads against the row-block split (bpre, or each row
  // block packing its panels): 1x128x16x16 3x3 (8 tiles) 0.197 -> 0.174 ms,
  // its dx 0.221 -> 0.199; AlexNet conv2 (23 tiles) 1.000 -> 0.989, its dx
  // (64 rows) 1.224 -> 1.110; 1x256x8x8 (2 tiles) within noise.
  // On the gap kernels no B panel is packed, so a row split reads B twice but
  // packs nothing twice: where M splits into whole 12-row tiles per thread it
  // balances exactly, against 12 and 11 tiles for AlexNet conv2's 23.
  // Alternated in one process at 2 threads, 2 runs: that layer 0.99-1.07 ->
  // 0.94-1.00 ms (separate processes against c1bf54f, 3 runs: 0.969-0.982 ->
  // 0.944-0.952); its data gradient (M = 64, not split so) unchanged.
  const bool rows_even = gap_k && M % (int64_t(MR) * nthreads) == 0;
  const bool tile_split = exact && tiling.tiles <= kFewTiles && nthreads > 1 && tiling.tiles >= nthreads &&
                          10 * ceil_div(tiling.tiles, int64_t(nthreads)) * nthreads <= 11 * tiling.tiles &&
                          !rows_even;
  // Tiles left over from an even share (AlexNet conv2's dx: 23 on 2 threads)
  // are split by rows instead: each thread takes tiles/nthreads whole tiles,
  // then its share of the rows of the leftover ones (two tasks per thread,
  // adjacent, so the static schedule gives it both). That dx at 2 threads,
  // alternated in one process (30 rounds, 3 runs) against 12 and 11 tiles:
  // 1.058-1.159 -> 1.045-1.144 ms, 1.002-1.013x.
  const int64_t rest_tiles = tile_split ? tiling.tiles % nthreads : 0;
  const bool rest_rows = rest_tiles > 0 && ceil_div(M, int64_t(AM)) >= nthreads;
  if (tile_split) {
    s.ncount = rest_rows ? 2 * nthreads : nthreads;
    s.nblock = (rest_rows ? tiling.tiles / nthreads : ceil_div(tiling.tiles, int64_t(nthreads))) * NR;
    s.mcount = 1;
    s.mblock = round_up(M, int64_t(AM));
  }
  const int64_t bpre_size = !tile_split && exact && tiling.tiles <= kFewTiles && nthreads > 1
                                ? checked_mul(checked_mul(p.G * tiling.tiles, K, "conv2d positions"), NR,
                                              "conv2d positions")
                                : 0;
  // Only while the panels fit one core's L2 (1 MB here): every row-block task
  // streams all of them, and a larger set goes round L3 once per task. Against
  // the old 32 MB limit, alternated in one process at 2 threads: 1x128x16x16 3x3 (1.2 MB
  // of panels) 0.347 -> 0.292 ms; AlexNet conv2 (4.7 MB) 1.58 -> 1.29 ms in a
  // slow spell, 1.04 -> 1.03 out of one; 1x256x8x8 (0.6 MB) keeps them.
  const bool bpre = bpre_size > 0 && bpre_size * int64_t(sizeof(T)) <= (int64_t(1) << 20) && !gap_k;
  Buffer<T> bpanels(bpre ? bpre_size : 0, "conv2d packed input");
  if (bpre) {
    if (!in_place) build_shared();
    const int64_t tasks_b = p.G * tiling.tiles;
    parallel_for(tasks_b, threads_for_flops(16.0 * double(bpre_size), tasks_b), [&](int64_t t, int) {
      const int64_t g = t / tiling.tiles;
      pack_exact(X, 0, bpanels.data() + t * K * NR, g, (t - g * tiling.tiles) * NR, 0, K);
    });
    s.ncount = 1;
    s.nblock = J;
    s.mcount = std::min<int64_t>(ceil_div(M, AM), 4 * int64_t(nthreads));
    s.mblock = round_up(ceil_div(M, s.mcount), AM);
    s.mcount = ceil_div(M, s.mblock);
  }
  const int64_t tasks = checked_mul(p.G, s.tasks(), "conv2d tasks");
  const int nt = threads_for_flops(2.0 * double(p.OC) * K * J, tasks);
  const bool m_outer = s.rows_outer(M, AM, J, NR, p.G, nt);
  // Batch 1 (not read through up-front panels): each thread builds, in its
  // own copy of the padded image, the plane rows its tasks read, task by task
  // -- the rows of its share of the positions plus the kernel's reach (all of
  // them where its tasks span every position). No line of the copy goes from
  // one core to the other (see parallel_for), and there is no separate region
  // to build it. Alternated in one process at 2 threads (20 rounds) against
  // the shared copy built in row bands (or a whole copy per thread where the
  // rows were split), in two runs across slow spells: 1x64x32x32 3x3
  // 0.215-0.223 -> 0.178-0.182 ms, 1x128x16x16 0.182-0.225 -> 0.176-0.185,
  // AlexNet conv1 0.367-0.399 -> 0.370-0.374, conv2 0.997-1.092 ->
  // 0.985-1.041, conv2's dx 1.170-1.372 -> 1.185-1.301; 1 thread unchanged.
  const bool row_private = !in_place && !per_image && !bpre && p.N == 1;
  if (!in_place && !per_image && !bpre && !row_private) build_shared();
  std::vector<int64_t> img_built(size_t(nt), -1);  // per_image: the image a thread's copy holds
  std::vector<int64_t> rows_built(size_t(2 * nt), 0);  // row_private: rows [lo, hi) of the thread's copy
  // the furthest a tile reads past its first position on the pitch, within a plane
  const int64_t reach_rows = p.dil_h * (p.KH - 1) / sh;
  const int64_t tile_reach = lane_reach + reach_rows * Wp + p.dil_w * (p.KW - 1) / sw;
  // The weight packed for this call: where every task uses all of it (one row
  // block) and it is small, each thread packs its own copy rather than read
  // the other's pack from the other core. Alternated in one process in a slow
  // spell (see parallel_for), 2 threads: 1x64x32x32 3x3 0.236 -> 0.227 ms,
  // AlexNet conv1 0.42 -> 0.415.
  const bool a_private = !a_rows && !have_pack && nt > 1 && s.mcount == 1 &&
                         double(p.G) * double(asz) * sizeof(T) <= double(512 << 10);
  std::vector<char> a_packed(size_t(nt), 0);  // a_private: thread's copy made
  auto pack_a = [&](T* dst, bool serial) {  // all groups' weight panels (flipped: from w, see prepack_a_flipped)
    if (flipped)
      prepack_a_flipped(dst, w, p, kr, kc, serial);
    else
      prepack_a_groups(dst, w, p.G, M, K, kr, kc, serial);
  };
  if (!a_rows && !have_pack) {
    apacked.reset(checked_mul(checked_mul(p.G, asz, "conv2d packed weight"), a_private ? nt : 1, "conv2d packed weight"),
                  "conv2d packed weight");
    if (!a_private) pack_a(apacked.data(), false);
    apanels = apacked.data();
  }
  // accumulation block: mblock rows x JB positions, sized to stay in L2
  const int64_t JB = std::min(round_up(s.nblock, NR), std::max<int64_t>(NR, (16384 / s.mblock) / NR * NR));
  const int64_t per_thread = s.mblock * JB + kc * NR + AM * kc;  // C block + one packed panel + edge rows of w
  Buffer<T> scratch(checked_mul(nt, per_thread, "conv2d scratch"));
  std::vector<Tile> tile_buf(size_t(nt * (JB / NR)));  // each thread's tiles of its current block
  std::vector<char> paired(size_t(nt * (JB / NR)));     // each thread's tiles of it done by an edge pair
  Buffer<T> imgbuf(per_image || row_private ? checked_mul(nt, img_elems, "conv2d padded input") : 0,
                   "conv2d padded input");
  const int64_t P = p.P();
  // 1x1 (each B row of a tile a different channel, kc rows H*W apart): the
  // next tile's B rows are prefetched while this tile's row tiles run. x is
  // read in place, and a tile's kc rows are more streams than the hardware
  // prefetchers follow; on AVX-512 a row is 2-3 lines. Alternated in one
  // process against none, 7 rounds, AMD Zen 4 (32 KiB L1), AVX-512, 1 / 2
  // threads: 8x256x28x28 -> 64 3.77 -> 2.76 ms / 1.78 -> 1.30 ms (2.89 / 1.32
  // without the step across slices); 32x64x32x32 -> 128 1.13x / 1.12x;
  // 32x256x8x8 -> 256 and 1x512x7x7 -> 512 within noise. (Into L2 only, and
  // slices of 64: no better over these shapes.)
  const bool prefetch_next = p.KH == 1 && p.KW == 1;

  parallel_for(tasks, nt, [&](int64_t t, int tid) {
    const int64_t g = t % p.G, rest = t / p.G;
    int64_t mi, ni, i0, i1, j0, j1;
    s.task(rest, m_outer, mi, ni);
    s.m_range(mi, M, AM, i0, i1);
    s.n_range(ni, J, NR, j0, j1);
    if (rest_rows) {  // task 2h: thread h's whole tiles; 2h + 1: its rows of the leftover tiles
      const int64_t h = rest / 2, whole = s.nblock;
      if (rest % 2 == 0) {
        j0 = h * whole;
        j1 = j0 + whole;
      } else {
        const TileSplit rows{s.mblock, J, nthreads, 1};
        rows.m_range(h, M, AM, i0, i1);
        j0 = nthreads * whole;
        j1 = J;
      }
    }
    const int64_t i_full = i0 + (i1 - i0) / AM * AM;  // rows [i0, i_full) are whole A tiles
    // a short last row panel (M % MR rows, up to 8) on the ISA's edge kernel:
    // only its rows are computed (M = 64 on 12-row tiles: 5 1/3 tiles, not 6),
    // stored in y like the whole tiles
    const int64_t edge_rows = i1 - i_full;
    const bool edge_k = !a_rows && kr.ukernel_edge && edge_rows > 0 && edge_rows <= 8;
    const int64_t i_direct = edge_k ? i1 : i_full;  // rows [i0, i_direct) of a direct tile land in y
    // M % MR == 4 (AVX-512: M = 64, 256): the last MR + 4 rows as two 8-row
    // tiles, the panel's first 8 rows, then its last 4 and the edge rows
    // (UKernelEdgeSplitFn), instead of a whole tile and a 4-row one.
    // Alternated in one process against that (8 rounds): 1 thread, 1x64x32x32
    // 3x3 0.320 -> 0.312 ms, AlexNet conv1 0.642 -> 0.630, 32x64x32x32 dx
    // 9.98 -> 9.80; 2 threads, 1x64x32x32 0.198 -> 0.178, AlexNet conv1 0.361
    // -> 0.349; 32x64x32x32 forward and 32x256x8x8 within noise.
    const int64_t i_split =
        edge_k && edge_rows == 4 && MR == 12 && kr.ukernel_edge_split && i_full - i0 >= MR ? i_full - MR : -1;
    // All of M one edge tile of up to 6 rows (LeNet's 6 channels; the data
    // gradient of a 1- to 6-channel input): two adjacent tiles per kernel call
    // (UKernelEdgePairFn), where the second also reads inside x. Where both
    // tiles' outputs are runs of y -- whole tiles, or row tiles' valid lanes
    // (LeNet's 28 of 32) -- the pair stores them there, bias included, and
    // in_y marks them done for the epilogue; where neither is, both go to the
    // block. Against one tile per call, separate processes, 1 thread:
    // LeNet conv1 at batch 64 0.144-0.147 -> 0.096-0.103 ms, at batch 1
    // 3.9-4.0 -> 3.3-3.4 us.
    const bool pair_k = edge_k && i_full == i0 && edge_rows <= 6 && kr.ukernel_edge_pair && !groups_r && !exact;
    T* cbuf = scratch.data() + tid * per_thread;
    T* panel = cbuf + s.mblock * JB;
    T* edge = panel + kc * NR;
    if (a_private && !a_packed[size_t(tid)]) {
      pack_a(apacked.data() + tid * p.G * asz, true);
      a_packed[size_t(tid)] = 1;
    }
    const T* ag = apanels + (a_private ? tid * p.G * asz : 0) + g * asz;  // (unused on the a_rows path)
    T* yg = y + g * M * P;  // + n*OC*P: channel g*M of image n
    auto run_of_y = [&](const Tile& t, T*& dst, int64_t& n) {
      if (t.direct)
        n = NR;
      else if (tiling.mode == DirectTiling::kRows)
        n = std::min<int64_t>(NR, p.OW - t.ow0);
      else
        return false;
      dst = yg + t.n * p.OC * P + t.oh * p.OW + t.ow0;
      return true;
    };
    char* const in_y = pair_k ? paired.data() + tid * (JB / NR) : nullptr;
    // per_image, row_private: this thread's copy of one image; Xt and xt_total are then that image's
    T* const ximg = per_image || row_private ? imgbuf.data() + tid * img_elems : nullptr;
    const T* Xt = X;
    int64_t xt_total = x_total, x_first = 0;  // Xt's elements (slack excluded); element index of Xt[0] in Xs
    if (row_private) {  // batch 1: the plane rows this task reads, added to the thread's copy
      int64_t ulo, uhi;
      if (exact) {
        ulo = j0 / p.OW;
        uhi = (std::min(j1, P) - 1) / p.OW + reach_rows + 1;
      } else {
        ulo = tiling.at(j0 / NR).q0 / Wp;
        uhi = (tiling.at((j1 - 1) / NR).q0 + tile_reach) / Wp + 1;
      }
      uhi = std::min(uhi, Hp);
      int64_t& lo = rows_built[size_t(2 * tid)];
      int64_t& hi = rows_built[size_t(2 * tid + 1)];
      if (ulo < lo || ulo > hi) lo = hi = ulo;  // not next to the rows held: start over
      if (uhi > hi) {
        if (S == 1)
          build_padded(ximg, x, p, Hp, Wp, slack, true, hi, uhi);
        else
          build_phases(ximg, x, p, Hp, Wp, slack, true, hi, uhi);
        hi = uhi;
      }
      Xt = ximg;
      xt_total = p.C * chan;
    }
    for (int64_t jb = j0, je = 0; jb < j1; jb = je) {
      je = std::min(j1, jb + JB);
      if (per_image) {  // blocks end with their image
        const int64_t n = jb / NR / tiling.per_image;
        je = std::min(je, (n + 1) * tiling.per_image * NR);
        if (n != img_built[size_t(tid)]) {
          Conv2dParams p1 = p;
          p1.N = 1;
          if (S == 1)
            build_padded(ximg, x + n * p.C * p.H * p.W, p1, Hp, Wp, slack, true);
          else
            build_phases(ximg, x + n * p.C * p.H * p.W, p1, Hp, Wp, slack, true);
          img_built[size_t(tid)] = n;
        }
        Xt = ximg;
        xt_total = p.C * chan;
        x_first = n * p.C * chan;
      }
      // the block's tiles, worked out once (for every slice and the epilogue)
      Tile* const tb = tile_buf.data() + tid * (JB / NR);
      const int64_t nblk = (je - jb) / NR;
      tiling.tiles_from(jb / NR, nblk, tb);
      if (in_y) std::fill(in_y, in_y + nblk, char(0));
      int64_t paired_in_y = 0;  // tiles of the block the edge pair wrote into y
      for (int64_t pc = 0; pc < K; pc += kc) {
        const int64_t kb = std::min<int64_t>(kc, K - pc);
        const bool acc = pc > 0;
        for (int64_t jt = jb; jt < je; jt += NR) {
          const Tile& tl = tb[(jt - jb) / NR];
          const int64_t base = (tl.n * p.C + g * Cg) * chan + tl.q0 - x_first;  // in Xt
          const bool over = !exact && base + lane_reach + off_max >= xt_total + (in_place ? 0 : slack);
          const T* bpanel = panel;
          const bool gap_tile = gap_k && jt + NR <= total_pos;  // B read in place
          const GapLanes gl = gap_tile ? gap_lanes(x_first, g, jt) : GapLanes{};
          if (bpre) {
            bpanel = bpanels.data() + (g * tiling.tiles + jt / NR) * K * NR + pc * NR;
          } else if (exact && !gap_tile) {
            pack_exact(Xt, x_first, panel, g, jt, pc, kb);
          } else if (over) {  // only possible at the very end of x: pack with zero fill
            for (int64_t k = 0; k < kb; ++k)
              for (int l = 0; l < NR; ++l) {
                const int64_t idx = base + offs[size_t(pc + k)] + lane_off(l);
                panel[k * NR + l] = idx < xt_total ? Xt[idx] : T(0);
              }
          }
          // where the AM x NR tile of rows [ir, ir + AM) lands: y itself, or the scratch block
          T* const cdirect = tl.direct ? yg + tl.n * p.OC * P + tl.oh * p.OW + tl.ow0 : nullptr;
          T* const cblock = cbuf + (jt - jb);
          if (!a_rows && !over && !exact) {  // the common case: one tight loop
            const T* xb = Xt + base;
            const int64_t* ob = offs.data() + pc;
            if (pair_k && jt + NR < je) {
              const Tile& t2 = tb[(jt - jb) / NR + 1];
              const int64_t base2 = (t2.n * p.C + g * Cg) * chan + t2.q0 - x_first;
              T *c1 = nullptr, *c2 = nullptr;
              int64_t n1 = 0, n2 = 0;
              const bool y1 = run_of_y(tl, c1, n1), y2 = run_of_y(t2, c2, n2);
              if (base2 + lane_reach + off_max < xt_total + (in_place ? 0 : slack) && y1 == y2) {
                const T* a = ag + Mpad * pc + (i0 / MR) * MR * kb;
                if (y1) {
                  const T* bias = b && pc + kb >= K ? b + g * M + i0 : nullptr;  // after the last slice
                  kr.ukernel_edge_pair(int(edge_rows), kb, a, xb, ob, hi, base2 - base, c1 + i0 * P, n1,
                                       c2 + i0 * P, n2, P, bias, acc);
                  in_y[(jt - jb) / NR] = in_y[(jt - jb) / NR + 1] = 1;
                  if (pc == 0) paired_in_y += 2;
                } else {  // both to the block, for the epilogue (flat tiles with junk lanes)
                  kr.ukernel_edge_pair(int(edge_rows), kb, a, xb, ob, hi, base2 - base, cblock, NR, cblock + NR, NR,
                                       JB, nullptr, acc);
                }
                jt += NR;  // the second tile done too
                continue;
              }
            }
            // the B rows of the next tile of this slice (after the block's
            // last tile: the block's first tile in the next slice), a share
            // per row tile
            const T* xnext = nullptr;
            const int64_t* onext = ob;
            int64_t pf_per = 0, pf_k = 0, pf_n = kb;
            if (prefetch_next && (jt + NR < je || pc + kb < K)) {
              const bool same_slice = jt + NR < je;
              const Tile& tn = tb[same_slice ? (jt - jb) / NR + 1 : 0];
              const int64_t bn = (tn.n * p.C + g * Cg) * chan + tn.q0 - x_first;
              if (bn + lane_reach + off_max < xt_total) {
                xnext = Xt + bn;
                if (!same_slice) {
                  onext = ob + kb;
                  pf_n = std::min<int64_t>(kc, K - pc - kb);
                }
                const int64_t calls = i_split >= 0 ? (i_split - i0) / MR + 1 : ceil_div(i1 - i0, int64_t(MR));
                pf_per = ceil_div(pf_n, calls);
              }
            }
            for (int64_t ir = i0; ir < i1; ir += MR) {
              if (xnext) {
                const int64_t ke = std::min(pf_n, pf_k + pf_per);
                for (; pf_k < ke; ++pf_k) {
                  const char* r = reinterpret_cast<const char*>(xnext + onext[pf_k]);
                  __builtin_prefetch(r);
                  __builtin_prefetch(r + NR * sizeof(T) - 1);
                  if (NR * sizeof(T) > 64) __builtin_prefetch(r + 64);
                }
              }
              const bool in_y = cdirect && ir < i_direct;
              const T* a = ag + Mpad * pc + (ir / MR) * MR * kb;
              T* const c = in_y ? cdirect + ir * P : cblock + (ir - i0) * JB;
              if (ir == i_split) {  // rows [ir, i1): the last ones
                kr.ukernel_edge(8, kb, a, xb, ob, hi, c, in_y ? P : JB, acc);
                kr.ukernel_edge_split(kb, a, xb, ob, hi, c + 8 * (in_y ? P : JB), in_y ? P : JB, acc);
                break;
              }
              if (edge_k && ir == i_full)
                kr.ukernel_edge(int(edge_rows), kb, a, xb, ob, hi, c, in_y ? P : JB, acc);
              else if (groups_r)
                (tiling.R == 2 ? kr.ukernel_off2 : kr.ukernel_off4)(kb, a, xb, ob, Wp, c, in_y ? P : JB, acc);
              else
                kr.ukernel_off(kb, a, xb, ob, c, in_y ? P : JB, acc);
            }
            continue;
          }
          for (int64_t ir = i0; ir < i1; ir += AM) {
            const bool in_y = cdirect && ir < i_direct;  // a tile of y: written in place
            const int64_t ldc = in_y ? P : JB;
            T* const c = in_y ? cdirect + ir * P : cblock + (ir - i0) * JB;
            if (a_rows) {
              const T* a = w + (g * M + ir) * K + pc;
              int64_t lda = K;
              if (ir + AM > M) {  // the last rows of w, zero-padded to a whole tile
                for (int64_t r = 0; r < AM; ++r)
                  for (int64_t k = 0; k < kb; ++k) edge[r * kb + k] = ir + r < M ? a[r * K + k] : T(0);
                a = edge;
                lda = kb;
              }
              kr.ukernel_rows(kb, a, lda, bpanel, c, ldc, acc);
              continue;
            }
            const T* a = ag + Mpad * pc + (ir / MR) * MR * kb;
            if (gap_tile) {
              const int64_t* ob = offs.data() + pc;
              if (ir == i_split) {
                kr.ukernel_gap(8, false, kb, a, Xt, ob, gl, c, ldc, acc);
                kr.ukernel_gap(8, true, kb, a, Xt, ob, gl, c + 8 * ldc, ldc, acc);
                break;
              }
              kr.ukernel_gap(edge_k && ir == i_full ? int(edge_rows) : MR, false, kb, a, Xt, ob, gl, c, ldc, acc);
              continue;
            }
            if (ir == i_split) {  // rows [ir, i1): the last ones
              const T* bb = over || exact ? bpanel : Xt + base;
              const int64_t* bo = over || exact ? nullptr : offs.data() + pc;
              kr.ukernel_edge(8, kb, a, bb, bo, hi, c, ldc, acc);
              kr.ukernel_edge_split(kb, a, bb, bo, hi, c + 8 * ldc, ldc, acc);
              break;
            }
            if (edge_k && ir == i_full)
              kr.ukernel_edge(int(edge_rows), kb, a, over || exact ? bpanel : Xt + base,
                              over || exact ? nullptr : offs.data() + pc, hi, c, ldc, acc);
            else if (over || exact)
              kr.ukernel(kb, a, bpanel, c, ldc, acc);
            else if (groups_r)
              (tiling.R == 2 ? kr.ukernel_off2 : kr.ukernel_off4)(kb, a, Xt + base, offs.data() + pc, Wp, c, ldc, acc);
            else
              kr.ukernel_off(kb, a, Xt + base, offs.data() + pc, c, ldc, acc);
          }
        }
      }
      // epilogue: bias on the tiles written in place; the rest copied out of
      // the block (+ bias), adjacent runs merged -- a flat tiling's pieces of
      // one output row (an exact tiling's of whole images) go out as one run
      if (paired_in_y == nblk) continue;  // nothing left to do
      const bool merge = tiling.mode != DirectTiling::kRows;
      for (int64_t i = i0; i < i1; ++i) {
        const T bv = b ? b[g * M + i] : T(0);
        const T* crow = cbuf + (i - i0) * JB;
        T* const yi = yg + i * P;                   // image n's row i at yi + n*OC*P
        int64_t rs = 0, rd = 0, rl = 0;             // pending run: crow[rs, rs + rl) -> yi[rd, rd + rl)
        auto flush = [&]() {
          T* d = yi + rd;
          const T* src = crow + rs;
          for (int64_t v = 0; v < rl; ++v) d[v] = src[v] + bv;
          rl = 0;
        };
        for (int64_t u = 0; u < nblk; ++u) {
          const Tile& tl = tb[u];
          if (in_y && in_y[u]) continue;  // written with its bias by the edge pair
          if (tl.direct && i < i_direct) {
            if (b) {
              T* d = yi + tl.n * p.OC * P + tl.oh * p.OW + tl.ow0;
              for (int l = 0; l < NR; ++l) d[l] += bv;
            }
            continue;
          }
          tiling.for_each_run(tl, [&](int64_t l0, int64_t cnt, int64_t n, int64_t yoff) {
            const int64_t sl = u * NR + l0, dl = n * p.OC * P + yoff;
            if (!merge) {  // row tiling: a copied run ends its output row, nothing to join
              T* d = yi + dl;
              const T* src = crow + sl;
              for (int64_t v = 0; v < cnt; ++v) d[v] = src[v] + bv;
              return;
            }
            if (rl > 0 && sl == rs + rl && dl == rd + rl) {
              rl += cnt;
              return;
            }
            if (rl > 0) flush();
            rs = sl;
            rd = dl;
            rl = cnt;
          });
        }
        if (rl > 0) flush();
      }
    }
  });
}

// Weight gradient, stride 1, as inner products along the same Wp pitch:
//   dW_g[o, k] = sum_n sum_j dyw[n, g*OCg + o, j] * Xp[n, g*Cg][off[k] + j]
// Either transposed on the gather kernel (see below), j running over the valid
// positions only, or as 4x3 output tiles (dot4x3 kernel) over position blocks
// short enough that the block of Xp rows stays in L2 while every output row
// tile passes over it; there dyw is dy laid out on the Wp pitch with zeros in
// the junk columns (dy itself when there are none), and j runs over the pitch.
// The reduction over images is cut into chunks fixed by the shape (as in
// conv2d.cpp), each into its own partial dW; the order of every sum is fixed
// by the shape, never the thread count.
template <typename T>
void conv2d_direct_backward_weight(T* dw, const T* dy, const T* x, const Conv2dParams& p) {
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  const int64_t M = p.OCg(), K = p.Kg(), Cg = p.Cg();
  // Strided (the gather form only, see conv2d_direct_backward_weight_strided):
  // over the phase planes of x, as the forward reads them, where each tap's
  // positions are runs again; S = 1: the padded input.
  const int64_t sh = p.stride_h, sw = p.stride_w, S = sh * sw;
  const int64_t Hp = p.OH + p.dil_h * (p.KH - 1) / sh, Wp = p.OW + p.dil_w * (p.KW - 1) / sw, plane = Hp * Wp;
  const int64_t chan = S * plane;  // elements per channel
  const int64_t Jimg = p.OH * Wp;
  // The reduction runs over positions [0, Jred): the last row's junk columns
  // are left out, so the furthest read, off[K-1] + Jred - 1, is the group's
  // last input element -- never past the end of x.
  const int64_t Jred = (p.OH - 1) * Wp + p.OW;
  const bool in_place = S == 1 && p.pad_t == 0 && p.pad_b == 0 && p.pad_l == 0 && p.pad_r == 0;

  Buffer<T> padded;
  const T* X = x;
  if (!in_place) {
    padded.reset(checked_add(checked_mul(checked_mul(p.N, p.C, "conv2d padded input"), chan, "conv2d padded input"),
                             kr.nr + Wp, "conv2d padded input"),
                 "conv2d padded input");
    if (S == 1)
      build_padded(padded.data(), x, p, Hp, Wp, kr.nr + Wp);
    else
      build_phases(padded.data(), x, p, Hp, Wp, kr.nr + Wp);
    X = padded.data();
  }

  std::vector<int64_t> offs(static_cast<size_t>(K));
  for (int64_t c = 0, k = 0; c < Cg; ++c)
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const int64_t eh = kh * p.dil_h, ew = kw * p.dil_w;
        offs[size_t(k++)] = c * chan + ((eh % sh) * sw + ew % sw) * plane + (eh / sh) * Wp + ew / sw;
      }

  const int64_t dw_size = p.OC * K;
  const int64_t R = weight_grad_chunks(p.N, dw_size), per = ceil_div(p.N, R);
  // Transposed, when the output channels fill a gather tile's NR lanes (>= 3/4;
  // gather_tile: the full-width tile, else the narrow one):
  //   dW_g^T (K x M) = X_col (K x positions) * dy^T (positions x M)
  // on the gather micro-kernel -- GM taps (rows of X_col: runs of Xp read in
  // place, one broadcast per tap and position) by NR output channels (a panel
  // of dy^T, transposed once per image). The kernel's position offsets skip
  // the junk columns: on the pitch they had been 12% of the FMAs on 16x16
  // images, 40% on LeNet's 10x10. Against the pitch, separate processes, 3
  // runs at 1 thread: 32x64x32x32 3x3 11.5-12.0 -> 10.6-11.0 ms, 32x128x16x16
  // 11.3-11.4 -> 10.1-10.2, LeNet's 64x6x14x14 -> 16 5x5 0.277 -> 0.187-0.189.
  // Partial results per image chunk go to Kpad x Mpad blocks, transposed into
  // dw (summed in chunk order) at the end. Measured against the 4x3 inner
  // products below at 1 thread, alternated in one process: 64->64 3x3 on
  // 32x32 images 1.17-1.21x faster, LeNet's 6->16 5x5 1.72x; with LeNet's 6
  // output channels (16 lanes) 0.42x.
  const GatherTile<T> gt = gather_tile(kr, M, false);
  if (gt.fn) {
    const int GM = gt.mr, NR = gt.nr;
    const int64_t Mpad = round_up(M, NR), Kpad = round_up(K, GM), ob_count = Mpad / NR;
    const int64_t tsize = checked_mul(Kpad, Mpad, "conv2d weight-gradient partial sums");
    Buffer<T> part(checked_mul(checked_mul(R, p.G, "conv2d weight-gradient partial sums"), tsize,
                               "conv2d weight-gradient partial sums"));
    const int64_t ttiles = Kpad / GM;
    const int nthr = num_threads();
    // Tap blocks: the fewest that give every thread an equal number of tasks
    // (each block transposes its images' dy again; it was ~4 tasks per thread,
    // 1.04-1.09x slower on the 64-channel layers at 1 and 2 threads)
    int64_t parts = 1;
    while (parts < ttiles && (R * p.G * parts < nthr || (R * p.G * parts) % nthr != 0)) ++parts;
    const int64_t tblk = ceil_div(ttiles, parts) * GM;
    parts = ceil_div(Kpad, tblk);
    const int64_t tasks = R * p.G * parts;
    const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * K * p.P(), tasks);
    // Images in groups of IG, each group one run of positions for the kernel
    // (the tap pointers' offsets reach into the group's later images): on
    // small images a call per image was a short reduction (8x8: 64 positions).
    // 32x256x8x8 at 1 thread, alternated in one process: 11.08 -> 10.93 ms.
    // Positions per kernel call: LT, so that the B panel slice stays in L1
    // (256 x 32 channels: 32 KB), or up to 1024 where M fills at most two of
    // the tile's widths (the slice then in L2, the partial sums loaded and
    // stored a quarter as often): alternated in one process, 32x64x32x32 3x3
    // dW 10.93 -> 10.39 ms at 1 thread, 6.01 -> 5.48 at 2; 32x32x32x32 2.77
    // -> 2.70 / 1.39 -> 1.37; with 128 or 256 channels, 1 to 4% slower.
    const int64_t LT = Mpad <= 2 * NR ? 1024 : 256;
    const int64_t P = p.P(), IG = std::max<int64_t>(1, std::min<int64_t>(LT / P, per)), PG = IG * P;
    const int64_t L = std::min<int64_t>(PG, LT);
    const int64_t panel_sz = checked_mul(Mpad, PG, "conv2d output gradient");
    Buffer<T> panels(checked_mul(nt, panel_sz, "conv2d output gradient"));
    // position j of image i of a group: its offset from the group's first
    // image on the Wp pitch; the reduction runs over the valid positions only,
    // never the junk columns
    std::vector<int64_t> pos(static_cast<size_t>(PG));
    for (int64_t i = 0; i < IG; ++i)
      for (int64_t j = 0; j < P; ++j) pos[size_t(i * P + j)] = i * p.C * chan + (j / p.OW) * Wp + j % p.OW;
    parallel_for(tasks, nt, [&](int64_t t, int tid) {
      const int64_t g = t % p.G, rest = t / p.G;
      const int64_t r = rest % R, part_i = rest / R;
      const int64_t k0 = part_i * tblk, k1 = std::min(Kpad, k0 + tblk);
      const int64_t n0 = r * per, n1 = std::min(p.N, n0 + per);
      T* ct = part.data() + (r * p.G + g) * tsize;
      std::fill(ct + k0 * Mpad, ct + k1 * Mpad, T(0));
      T* pan = panels.data() + tid * panel_sz;
      for (int64_t n = n0; n < n1; n += IG) {
        const int64_t ig = std::min(IG, n1 - n), npos = ig * P;
        const T* xg = X + (n * p.C + g * Cg) * chan;
        // dy^T panels: block ob holds [i*P + j][c] = dy[n + i][ob*NR + c][j] (zero past M)
        for (int64_t ob = 0; ob < ob_count; ++ob) {
          const int64_t rows = std::min<int64_t>(NR, M - ob * NR);
          T* d = pan + ob * PG * NR;
          for (int64_t i = 0; i < ig; ++i)
            kr.transpose(rows, P, dy + ((n + i) * p.OC + g * M + ob * NR) * P, P, d + i * P * NR, NR);
          if (rows < NR)
            for (int64_t j = 0; j < npos; ++j) std::fill(d + j * NR + rows, d + (j + 1) * NR, T(0));
        }
        for (int64_t jb = 0; jb < npos; jb += L) {
          const int64_t len = std::min(L, npos - jb);
          for (int64_t k = k0; k < k1; k += GM) {
            // (taps past K, rows of the partial sums that are never read, read tap K-1)
            const T* a[kMaxGather];
            for (int i = 0; i < GM; ++i) a[i] = xg + offs[size_t(std::min(k + i, K - 1))];
            for (int64_t ob = 0; ob < ob_count; ++ob)
              gt.fn(len, a, pos.data() + jb, pan + (ob * PG + jb) * NR, ct + k * Mpad + ob * NR, Mpad, true);
          }
        }
      }
    });
    // dw[g*M + o][k] = sum over chunks r (in order) of part[r][g][k][o]: per
    // block of taps, the chunks summed into chunk 0's rows (contiguous), then
    // the block turned into dw by the ISA's transpose. (One element at a
    // time, reading down a column of part, 1 KB apart for 256 channels, had
    // taken 7% of 32x256x8x8's weight gradient.)
    const int64_t TB = 64, tblocks = ceil_div(K, TB), ttasks = p.G * tblocks;
    parallel_for(ttasks, threads_for_flops(16.0 * double(R) * dw_size, ttasks), [&](int64_t t, int) {
      const int64_t g = t / tblocks, kb0 = (t - g * tblocks) * TB, kn = std::min(TB, K - kb0);
      T* const p0 = part.data() + g * tsize + kb0 * Mpad;
      for (int64_t rr = 1; rr < R; ++rr) {
        const T* pr = part.data() + (rr * p.G + g) * tsize + kb0 * Mpad;
        for (int64_t i = 0; i < kn * Mpad; ++i) p0[i] += pr[i];
      }
      kr.transpose(kn, M, p0, Mpad, dw + g * M * K + kb0, K);  // dw[o*K + k] = p0[k*Mpad + o]
    });
    return;
  }
  // (stride 1 from here on: the dispatch takes the strided form only with a gather tile)
  Buffer<T> wide;
  const T* DY = dy;
  if (Wp != p.OW) {  // dy on the Wp pitch, zeros in the junk columns
    const int64_t rows = checked_mul(p.N, p.OC, "conv2d output gradient");
    wide.reset(checked_mul(rows, Jimg, "conv2d output gradient"), "conv2d output gradient");
    parallel_for(rows, threads_for_flops(double(rows) * Jimg, rows), [&](int64_t r, int) {
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        T* d = wide.data() + r * Jimg + oh * Wp;
        std::memcpy(d, dy + r * p.P() + oh * p.OW, sizeof(T) * p.OW);
        std::fill(d + p.OW, d + Wp, T(0));
      }
    });
    DY = wide.data();
  }
  Buffer<T> partial(R > 1 ? checked_mul(R, dw_size, "conv2d weight-gradient partial sums") : 0);

  const int64_t otiles = ceil_div(M, 4);
  const int nthr = num_threads();
  int64_t parts = std::min<int64_t>(otiles, std::max<int64_t>(1, ceil_div(4 * int64_t(nthr), R * p.G)));
  const int64_t oblk = ceil_div(otiles, parts) * 4;
  parts = ceil_div(M, oblk);
  const int64_t tasks = R * p.G * parts;
  const int nt = threads_for_flops(2.0 * double(p.N) * p.OC * K * p.P(), tasks);
  // Position block: the whole image while its Xp block (Cg planes) fits in
  // L2, else a slice of it that does.
  const int64_t l2_elems = (int64_t(512) << 10) / int64_t(sizeof(T));
  const int64_t JB = Cg * plane <= l2_elems ? Jred : std::max<int64_t>(256, Jred * l2_elems / (Cg * plane)) / 8 * 8;
  Buffer<T> zeros(JB);
  zeros.zero();

  parallel_for(tasks, nt, [&](int64_t t, int) {
    const int64_t g = t % p.G, rest = t / p.G;
    const int64_t r = rest % R, part = rest / R;
    const int64_t o0 = part * oblk, o1 = std::min(M, o0 + oblk);
    const int64_t n0 = r * per, n1 = std::min(p.N, n0 + per);
    T* out = (R > 1 ? partial.data() + r * dw_size : dw) + g * M * K;
    std::fill(out + o0 * K, out + o1 * K, T(0));
    for (int64_t n = n0; n < n1; ++n) {
      const T* xg = X + (n * p.C + g * Cg) * plane;
      const T* dyg = DY + (n * p.OC + g * M) * Jimg;
      for (int64_t jb = 0; jb < Jred; jb += JB) {
        const int64_t len = std::min(JB, Jred - jb);
        for (int64_t o = o0; o < o1; o += 4) {
          const T* a[4];
          for (int i = 0; i < 4; ++i) a[i] = o + i < o1 ? dyg + (o + i) * Jimg + jb : zeros.data();
          for (int64_t k = 0; k < K; k += 3) {
            const T* bp[3];
            for (int j = 0; j < 3; ++j) bp[j] = xg + offs[size_t(std::min(k + j, K - 1))] + jb;
            T res[12];
            kr.dot4x3(len, a, bp, res);
            for (int i = 0; i < 4 && o + i < o1; ++i)
              for (int j = 0; j < 3 && k + j < K; ++j) out[(o + i) * K + k + j] += res[i * 3 + j];
          }
        }
      }
    }
  });
  if (R > 1) sum_partials(dw, partial.data(), R, dw_size);
}

template <typename T>
bool conv2d_direct_backward_weight_strided(const Conv2dParams& p) {
  return (p.stride_h > 1 || p.stride_w > 1) && conv2d_direct_forward_applies(p) &&
         gather_tile(kernel_for<T>(active_kernels()), p.OCg(), false).fn;
}
template bool conv2d_direct_backward_weight_strided<float>(const Conv2dParams&);
template bool conv2d_direct_backward_weight_strided<double>(const Conv2dParams&);

template <typename T>
bool conv2d_direct_backward_weight_reads_junk(const Conv2dParams& p) {
  return !gather_tile(kernel_for<T>(active_kernels()), p.OCg(), false).fn && p.KW > 1;  // KW = 1: no junk columns
}
template bool conv2d_direct_backward_weight_reads_junk<float>(const Conv2dParams&);
template bool conv2d_direct_backward_weight_reads_junk<double>(const Conv2dParams&);

template void conv2d_direct_backward_weight<float>(float*, const float*, const float*, const Conv2dParams&);
template void conv2d_direct_backward_weight<double>(double*, const double*, const double*, const Conv2dParams&);

template void conv2d_direct_forward<float>(float*, const float*, const float*, const float*, const Conv2dParams&,
                                           ConvWeightPack<float>*, bool);
template void conv2d_direct_forward<double>(double*, const double*, const double*, const double*,
                                            const Conv2dParams&, ConvWeightPack<double>*, bool);

}  // namespace fastconv
