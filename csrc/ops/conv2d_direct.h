// Direct stride-1 convolution (B read in place from the input). See conv2d_direct.cpp.
#pragma once

#include "ops/conv2d.h"

namespace fastconv {

// Stride 1 and not depthwise. Pads may be negative (a crop): the backward data
// pass runs as a direct convolution of dy with the flipped weights.
bool conv2d_direct_applies(const Conv2dParams& p);

// The forward pass also takes strided convolutions (through the phase split of
// the input, see conv2d_direct.cpp) unless the split would be much larger than
// the input.
bool conv2d_direct_forward_applies(const Conv2dParams& p);

// x (N,C,H,W), w (OC,C/G,KH,KW), b (OC) or null -> y (N,OC,OH,OW).
// flipped: w is instead the weight of the convolution this one is the data
// gradient of, (C, OC/G, KH, KW) in p's terms, and the weight used is its
// flip w'[g*OCg + o, c, kh, kw] = w[g*Cg + c, o, KH-1-kh, KW-1-kw] (OCg = p.OCg(),
// Cg = p.Cg()), packed straight from w where the path packs its weight.
template <typename T>
void conv2d_direct_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p,
                           ConvWeightPack<T>* pack = nullptr, bool flipped = false);

// dy (N,OC,OH,OW), x (N,C,H,W) -> dw (OC,C/G,KH,KW); stride 1, or strided
// where conv2d_direct_backward_weight_strided says so.
template <typename T>
void conv2d_direct_backward_weight(T* dw, const T* dy, const T* x, const Conv2dParams& p);
// Whether conv2d_direct_backward_weight takes this strided convolution (its
// gather form over the phase planes of x: where the output channels fill a
// gather tile, and the forward's phase split applies).
template <typename T>
bool conv2d_direct_backward_weight_strided(const Conv2dParams& p);
// Whether conv2d_direct_backward_weight's reduction runs over the junk
// columns of the Wp pitch too (zero dy times real inputs): exact only while
// every input is finite (0 * Inf is NaN). False where the output channels
// fill a gather tile (that form reads valid positions only).
template <typename T>
bool conv2d_direct_backward_weight_reads_junk(const Conv2dParams& p);

// Xp (N,C,Hp,Wp): x padded (or cropped: pads may be negative) by the pads of
// p, plus `slack` zeros of tail. serial: on the calling thread only. Only
// rows [u0, u1) of every plane where u1 >= 0 (the slack with the last row).
template <typename T>
void build_padded(T* xp, const T* x, const Conv2dParams& p, int64_t Hp, int64_t Wp, int64_t slack,
                  bool serial = false, int64_t u0 = 0, int64_t u1 = -1);

// Xs: the sh*sw phase planes (Hq x Wq each) of every channel of the padded x,
// plane (ph, pw) row u column v holding x[u*sh + ph - pad_t][v*sw + pw - pad_l]
// (zero outside x), plus `slack` zeros of tail. Needs stride > 1. Rows as in
// build_padded.
template <typename T>
void build_phases(T* xs, const T* x, const Conv2dParams& p, int64_t Hq, int64_t Wq, int64_t slack,
                  bool serial = false, int64_t u0 = 0, int64_t u1 = -1);

// Reduction chunks over images for weight gradients: set by the shape only,
// never the thread count, so results are bitwise reproducible.
int64_t weight_grad_chunks(int64_t N, int64_t dw_size);
// dw[i] = sum_r partial[r*size + i] in chunk order
template <typename T>
void sum_partials(T* dw, const T* partial, int64_t R, int64_t size);

}  // namespace fastconv
