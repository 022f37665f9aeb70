// Direct stride-1 convolution (B read in place from the input). See conv2d_direct.cpp.
#pragma once

#include "ops/conv2d.h"

namespace fastconv {

// Stride 1 and not depthwise. Pads may be negative (a crop): the backward data
// pass runs as a direct convolution of dy with the flipped weights.
bool conv2d_direct_applies(const Conv2dParams& p);

// x (N,C,H,W), w (OC,C/G,KH,KW), b (OC) or null -> y (N,OC,OH,OW)
template <typename T>
void conv2d_direct_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p);

}  // namespace fastconv
