// Direct stride-1 convolution: a GEMM whose B operand is read in place.
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
// Work: tiles over (group, output-channel block, position block), batch
// folded into the positions; each tile accumulates in a private scratch
// block, so writes are disjoint and the sum order is fixed by the shape.
#include "ops/conv2d_direct.h"

#include <algorithm>
#include <cstring>

#include "common/buffer.h"
#include "common/parallel.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/gemm.h"

namespace fastconv {

bool conv2d_direct_applies(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && !(p.G > 1 && p.Cg() == 1);
}

namespace {

// Xp for padded (or cropped: pads may be negative) inputs, plus NR + Wp zeros of
// tail slack for the junk lanes of the last tile.
template <typename T>
void build_padded(T* xp, const T* x, const Conv2dParams& p, int64_t Hp, int64_t Wp, int64_t slack) {
  const int64_t planes = p.N * p.C, plane = Hp * Wp;
  parallel_for(planes, threads_for_flops(double(planes) * plane, planes), [&](int64_t t, int) {
    const T* src = x + t * p.H * p.W;
    T* dst = xp + t * plane;
    const int64_t q_lo = std::max<int64_t>(0, p.pad_l), q_hi = std::min(Wp, p.W + p.pad_l);
    for (int64_t r = 0; r < Hp; ++r) {
      T* d = dst + r * Wp;
      const int64_t sr = r - p.pad_t;
      if (sr < 0 || sr >= p.H || q_hi <= q_lo) {
        std::fill(d, d + Wp, T(0));
        continue;
      }
      std::fill(d, d + q_lo, T(0));
      std::memcpy(d + q_lo, src + sr * p.W + (q_lo - p.pad_l), sizeof(T) * (q_hi - q_lo));
      std::fill(d + q_hi, d + Wp, T(0));
    }
  });
  std::fill(xp + planes * plane, xp + planes * plane + slack, T(0));
}

}  // namespace

template <typename T>
void conv2d_direct_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p) {
  if (p.N == 0 || p.OC == 0) return;
  const GemmKernel<T>& kr = kernel_for<T>(active_kernels());
  const int MR = kr.mr, NR = kr.nr;
  const int64_t M = p.OCg(), K = p.Kg(), Cg = p.Cg();
  const int64_t Hp = p.OH + p.dil_h * (p.KH - 1), Wp = p.OW + p.dil_w * (p.KW - 1), plane = Hp * Wp;
  const int64_t Jimg = p.OH * Wp, Jpad = round_up(Jimg, NR);
  const int64_t J = checked_mul(p.N, Jpad, "conv2d positions");
  const bool in_place = p.pad_t == 0 && p.pad_b == 0 && p.pad_l == 0 && p.pad_r == 0;

  // Xp: x itself, or one padded copy
  const int64_t slack = NR + Wp;
  Buffer<T> padded;
  const T* X = x;
  if (!in_place) {
    padded.reset(checked_add(checked_mul(checked_mul(p.N, p.C, "conv2d padded input"), plane, "conv2d padded input"),
                             slack, "conv2d padded input"),
                 "conv2d padded input");
    build_padded(padded.data(), x, p, Hp, Wp, slack);
    X = padded.data();
  }
  const int64_t x_total = p.N * p.C * plane;  // elements of Xp proper (slack excluded)

  // B row offsets relative to channel 0 of the group at position j
  std::vector<int64_t> offs(static_cast<size_t>(K));
  for (int64_t c = 0, k = 0; c < Cg; ++c)
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) offs[size_t(k++)] = c * plane + kh * p.dil_h * Wp + kw * p.dil_w;
  const int64_t off_max = offs.back();

  // A: all groups' weights packed once
  const int64_t asz = prepacked_a_size(M, K, kr), Mpad = round_up(M, MR);
  Buffer<T> apacked(checked_mul(p.G, asz, "conv2d packed weight"));
  const int64_t kc = balanced_kc(K, kr.kc);
  for (int64_t g = 0; g < p.G; ++g) prepack_a(apacked.data() + g * asz, w + g * M * K, K, 1, M, K, kr, kc);

  const TileSplit s = split_tiles(M, J, MR, NR, kr.nc, p.G, num_threads());
  const int64_t tasks = checked_mul(p.G, s.tasks(), "conv2d tasks");
  const int nt = threads_for_flops(2.0 * double(p.OC) * K * J, tasks);
  // accumulation block: mblock rows x JB positions, sized to stay in L2
  const int64_t JB = std::min(round_up(s.nblock, NR), std::max<int64_t>(NR, (16384 / s.mblock) / NR * NR));
  const int64_t per_thread = s.mblock * JB + kc * NR;  // C block + one fallback panel
  Buffer<T> scratch(checked_mul(nt, per_thread, "conv2d scratch"));

  parallel_for(tasks, nt, [&](int64_t t, int tid) {
    const int64_t g = t % p.G, rest = t / p.G;
    const int64_t mi = rest % s.mcount, ni = rest / s.mcount;
    const int64_t i0 = mi * s.mblock, i1 = std::min(M, i0 + s.mblock);
    const int64_t j0 = ni * s.nblock, j1 = std::min(J, j0 + s.nblock);
    T* cbuf = scratch.data() + tid * per_thread;
    T* panel = cbuf + s.mblock * JB;
    const T* ag = apacked.data() + g * asz;
    for (int64_t jb = j0; jb < j1; jb += JB) {
      const int64_t je = std::min(j1, jb + JB);
      for (int64_t pc = 0; pc < K; pc += kc) {
        const int64_t kb = std::min<int64_t>(kc, K - pc);
        const bool acc = pc > 0;
        for (int64_t jt = jb; jt < je; jt += NR) {
          const int64_t n = jt / Jpad, q0 = jt - n * Jpad;
          const int64_t base = (n * p.C + g * Cg) * plane + q0;
          const bool over = base + NR - 1 + off_max >= x_total + (in_place ? 0 : slack);
          if (over) {  // only possible at the very end of x: pack with zero fill
            for (int64_t k = 0; k < kb; ++k)
              for (int l = 0; l < NR; ++l) {
                const int64_t idx = base + offs[size_t(pc + k)] + l;
                panel[k * NR + l] = idx < x_total ? X[idx] : T(0);
              }
          }
          for (int64_t ir = i0; ir < i1; ir += MR) {
            const T* a = ag + Mpad * pc + (ir / MR) * MR * kb;
            T* c = cbuf + (ir - i0) * JB + (jt - jb);
            if (over)
              kr.ukernel(kb, a, panel, c, JB, acc);
            else
              kr.ukernel_off(kb, a, X + base, offs.data() + pc, c, JB, acc);
          }
        }
      }
      // store the valid positions of the block (+ bias)
      for (int64_t j = jb; j < je;) {
        const int64_t n = j / Jpad, q = j - n * Jpad;
        const int64_t oh = q / Wp, ow = q - oh * Wp;
        const int64_t run = std::min({je - j, Wp - ow, Jpad - q});  // to the end of this padded row
        if (oh < p.OH && ow < p.OW) {
          const int64_t cnt = std::min(run, p.OW - ow);
          for (int64_t i = i0; i < i1; ++i) {
            const T* src = cbuf + (i - i0) * JB + (j - jb);
            T* dst = y + (n * p.OC + g * M + i) * p.P() + oh * p.OW + ow;
            if (b) {
              const T bv = b[g * M + i];
              for (int64_t u = 0; u < cnt; ++u) dst[u] = src[u] + bv;
            } else {
              std::memcpy(dst, src, sizeof(T) * cnt);
            }
          }
        }
        j += run;
      }
    }
  });
}

template void conv2d_direct_forward<float>(float*, const float*, const float*, const float*, const Conv2dParams&);
template void conv2d_direct_forward<double>(double*, const double*, const double*, const double*,
                                            const Conv2dParams&);

}  // namespace fastconv
