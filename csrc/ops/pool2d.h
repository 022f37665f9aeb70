// 2-D pooling: max, average, adaptive average/max, max-unpooling; forward and
// backward. See pool2d.cpp for the maths.
#pragma once

#include <cstdint>
#include <vector>

namespace fastconv {

struct Pool2dParams {
  int64_t N, C, H, W;         // input (N, C, H, W)
  int64_t KH, KW;             // window
  int64_t sh, sw;             // stride
  int64_t ph, pw;             // padding (both sides)
  int64_t dh, dw;             // dilation (max pooling only; 1 for average)
  int64_t OH, OW;             // output (N, C, OH, OW)
  bool ceil_mode;
  // average pooling
  bool count_include_pad;
  int64_t divisor;            // divisor_override, 0 = none
  int64_t planes() const { return N * C; }
};

// kind: "max_pool2d" or "avg_pool2d" (the padding limit and messages differ).
Pool2dParams make_pool2d_params(const char* op, const std::vector<int64_t>& x_shape, int64_t KH, int64_t KW,
                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                bool ceil_mode, bool count_include_pad, int64_t divisor);

// Adaptive pooling: window i of OH covers [floor(i*H/OH), ceil((i+1)*H/OH)).
Pool2dParams make_adaptive_params(const char* op, const std::vector<int64_t>& x_shape, int64_t OH, int64_t OW);

// Unpooling: x (N,C,H,W) + indices -> y (N,C,OH,OW).
Pool2dParams make_unpool_params(const std::vector<int64_t>& x_shape, const std::vector<int64_t>& ind_shape,
                                int64_t OH, int64_t OW);

// x (N,C,H,W) -> y (N,C,OH,OW), ind (N,C,OH,OW) flat h*W+w per plane (ind may be null)
template <typename T>
void max_pool2d_forward(T* y, int64_t* ind, const T* x, const Pool2dParams& p);
// dy, ind (N,C,OH,OW) -> dx (N,C,H,W)
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const int64_t* ind, const Pool2dParams& p);

template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dParams& p);
template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dParams& p);

template <typename T>
void adaptive_avg_pool2d_forward(T* y, const T* x, const Pool2dParams& p);
template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, const Pool2dParams& p);
template <typename T>
void adaptive_max_pool2d_forward(T* y, int64_t* ind, const T* x, const Pool2dParams& p);

// x, ind (N,C,H,W) -> y (N,C,OH,OW). Returns false (nothing out of bounds
// written) if some index is outside [0, OH*OW).
template <typename T>
bool max_unpool2d_forward(T* y, const T* x, const int64_t* ind, const Pool2dParams& p);
// dy (N,C,OH,OW), ind (N,C,H,W) -> dx (N,C,H,W); indices already checked by the forward.
template <typename T>
bool max_unpool2d_backward(T* dx, const T* dy, const int64_t* ind, const Pool2dParams& p);

}  // namespace fastconv
