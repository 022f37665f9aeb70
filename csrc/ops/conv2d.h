// conv2d (cross-correlation), forward and backward. See conv2d.cpp for the maths.
#pragma once

#include <cstdint>
#include <vector>

namespace fastconv {

struct Conv2dParams {
  int64_t N, C, H, W;           // input x (N, C, H, W)
  int64_t OC, KH, KW;           // weight w (OC, C/G, KH, KW)
  int64_t G;                    // groups
  int64_t stride_h, stride_w;
  int64_t pad_t, pad_b, pad_l, pad_r;  // per side, so 'same' with even kernels is exact
  int64_t dil_h, dil_w;
  int64_t OH, OW;               // output y (N, OC, OH, OW)

  int64_t Cg() const { return C / G; }
  int64_t OCg() const { return OC / G; }
  int64_t Kg() const { return Cg() * KH * KW; }     // GEMM reduction length per group
  int64_t P() const { return OH * OW; }             // output pixels per plane
};

// Validates shapes and options (ValueError naming the argument and the shapes)
// and output / workspace sizes (SizeError). x_shape and w_shape must be 4-D;
// bias_len < 0 means no bias.
Conv2dParams make_conv2d_params(const std::vector<int64_t>& x_shape, const std::vector<int64_t>& w_shape,
                                int64_t bias_len, int64_t stride_h, int64_t stride_w, int64_t pad_t, int64_t pad_b,
                                int64_t pad_l, int64_t pad_r, int64_t dil_h, int64_t dil_w, int64_t groups);

// Which algorithm dense convolutions use. automatic: Winograd F(2x2, 3x3)
// for the float32 3x3 stride-1 shapes it is measured faster on, the direct
// in-place path for other stride-1 and most strided shapes, implicit-im2col
// GEMM otherwise; im2col forces the GEMM everywhere, direct never takes
// Winograd, winograd takes it wherever it applies (3x3, and 5x5 only here;
// tests cover each on the same shapes). Depthwise is always direct.
enum class ConvAlgorithm { automatic = 0, im2col = 1, direct = 2, winograd = 3 };
ConvAlgorithm conv2d_algorithm();
void set_conv2d_algorithm(ConvAlgorithm a);

template <typename T>
class ConvWeightPack;  // ops/weight_pack.h

// x (N,C,H,W), w (OC,C/G,KH,KW), b (OC) or null -> y (N,OC,OH,OW).
// pack: w's panels kept from earlier calls (used when it was made from w with
// these sizes and the path packs the weight at all), or null.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dParams& p,
                    ConvWeightPack<T>* pack = nullptr);

// dy (N,OC,OH,OW), w (OC,C/G,KH,KW) -> dx (N,C,H,W)
template <typename T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dParams& p);

// dy (N,OC,OH,OW), x (N,C,H,W) -> dw (OC,C/G,KH,KW) and/or db (OC); either may be null
template <typename T>
void conv2d_backward_weight(T* dw, T* db, const T* dy, const T* x, const Conv2dParams& p);

}  // namespace fastconv
