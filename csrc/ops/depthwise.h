// Depthwise-style convolution: one input channel per group (groups == C, any
// channel multiplier OC/C). Implementation: depthwise_impl.h, compiled per ISA.
#pragma once

#include "ops/conv2d.h"

namespace fastconv {

inline bool conv2d_is_depthwise(const Conv2dParams& p) { return p.G > 1 && p.Cg() == 1; }

// The depthwise kernels work on a zero-padded copy of each plane. When padding
// or stride reach far beyond the image that copy would dwarf input and output
// (up to 2^62 elements), so such shapes take the GEMM path, which only visits
// in-bounds taps.
inline bool depthwise_kernels_apply(const Conv2dParams& p) {
  if (!conv2d_is_depthwise(p)) return false;
  using L = long double;
  const L hp = L(p.H) + L(p.pad_t) + L(p.pad_b), wp = L(p.W) + L(p.pad_l) + L(p.pad_r);
  return hp * wp <= 4 * (L(p.H) * L(p.W) + L(p.OH) * L(p.OW)) + 65536;
}

struct DepthwiseKernels {
  void (*forward_f32)(float*, const float*, const float*, const float*, const Conv2dParams&);
  void (*backward_data_f32)(float*, const float*, const float*, const Conv2dParams&);
  void (*backward_weight_f32)(float*, const float*, const float*, const Conv2dParams&);
  void (*forward_f64)(double*, const double*, const double*, const double*, const Conv2dParams&);
  void (*backward_data_f64)(double*, const double*, const double*, const Conv2dParams&);
  void (*backward_weight_f64)(double*, const double*, const double*, const Conv2dParams&);
};

// x (N,C,H,W), w (OC,1,KH,KW), b (OC) or null -> y (N,OC,OH,OW)
template <typename T>
void depthwise_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p);
// dy (N,OC,OH,OW), w (OC,1,KH,KW) -> dx (N,C,H,W)
template <typename T>
void depthwise_backward_data(T* dx, const T* dy, const T* w, const Conv2dParams& p);
// dy (N,OC,OH,OW), x (N,C,H,W) -> dw (OC,1,KH,KW)
template <typename T>
void depthwise_backward_weight(T* dw, const T* dy, const T* x, const Conv2dParams& p);

}  // namespace fastconv
