// Winograd F(2x2, 3x3) and F(2x2, 5x5) for stride-1 convolutions. See winograd_impl.h.
#pragma once

#include "ops/conv2d.h"

namespace fastconv {

template <typename T>
class ConvWeightPack;

// The shapes the Winograd path can compute: a 3x3 or 5x5 kernel, stride 1,
// dilation 1, one group, float32, no crop (pads >= 0), at least one output.
bool conv2d_winograd_applies(const Conv2dParams& p, bool is_float);
// Where the automatic choice takes it (measured; see winograd_scalar.cpp):
// the forward and data gradient, and (more tiles needed) the weight gradient.
bool conv2d_winograd_preferred(const Conv2dParams& p);
bool conv2d_winograd_weight_grad_preferred(const Conv2dParams& p);
// The weight gradient is F(2x2, 3x3) only.
bool conv2d_winograd_weight_grad_applies(const Conv2dParams& p);

// y = conv(x, w) + b through F(2x2, 3x3) or F(2x2, 5x5) (by the kernel
// size; 5x5 is taken only when the algorithm setting asks for it, see
// conv2d_winograd_preferred). Returns false, having written y
// only partly or not at all, when an input or weight is not finite or so large
// that the transforms could overflow where the direct sum would not: the
// caller then computes y another way. flipped: as in conv2d_direct_forward
// (w is the forward weight of the convolution whose data gradient this is).
bool conv2d_winograd_forward(float* y, const float* x, const float* w, const float* b, const Conv2dParams& p,
                             ConvWeightPack<float>* pack, bool flipped = false);

// dw (OC, C, 3, 3) = the weight gradient of conv2d_winograd_forward's
// convolution, through the same transforms (3x3 only); false, dw unwritten, when a value
// of x or dy is not finite or too large for them (the caller computes dw
// another way).
bool conv2d_winograd_backward_weight(float* dw, const float* dy, const float* x, const Conv2dParams& p);

}  // namespace fastconv
