// Shared between the per-ISA builds of winograd_impl.h and its dispatcher.
#pragma once

#include <cstdint>

namespace fastconv {

// Tiling of one image plane into 2x2 output tiles.
struct WinogradGeom {
  int64_t H, W;    // input plane
  int64_t OH, OW;  // output plane
  int64_t pt, pl;  // top / left padding
  int64_t TH, TW;  // tile rows and columns (ceil(OH/2), ceil(OW/2))
  int64_t TP;      // tiles per image, TH*TW
};

// One ISA's build. forward: y (N, K, OH, OW) from x (N, C, H, W) and the
// transformed, packed weight ut (see winograd_impl.h), bias b or null; false
// when an input value failed |v| <= lim (y then partly written).
struct WinogradKernels {
  bool (*forward)(float* y, const float* x, const float* ut, const float* b, const WinogradGeom& g, int64_t N,
                  int64_t C, int64_t K, float lim);
  // dw (K, C, 3, 3) from dy (N, K, OH, OW) and x; false when a value of x or
  // dy failed |v| <= lim (dw then not written).
  bool (*backward_weight)(float* dw, const float* dy, const float* x, const WinogradGeom& g, int64_t N, int64_t C,
                          int64_t K, float lim);
  // As forward, F(2x2, 5x5) (ut from the 5x5 weight transform).
  bool (*forward5)(float* y, const float* x, const float* ut, const float* b, const WinogradGeom& g, int64_t N,
                   int64_t C, int64_t K, float lim);
};

}  // namespace fastconv
