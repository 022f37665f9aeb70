// linear (fully connected), forward and backward. See linear.cpp.
#pragma once

#include <cstdint>
#include <vector>

namespace fastconv {

struct LinearParams {
  int64_t B, IN, OUT;  // x (B, IN), w (OUT, IN), y (B, OUT); leading dims of x folded into B
};

// x_shape: any rank >= 1 (all but the last dim are folded into B).
LinearParams make_linear_params(const std::vector<int64_t>& x_shape, const std::vector<int64_t>& w_shape,
                                int64_t bias_len);

// x (B,IN), w (OUT,IN), b (OUT) or null -> y (B,OUT)
template <typename T>
void linear_forward(T* y, const T* x, const T* w, const T* b, const LinearParams& p);
// dy (B,OUT), w (OUT,IN) -> dx (B,IN)
template <typename T>
void linear_backward_data(T* dx, const T* dy, const T* w, const LinearParams& p);
// dy (B,OUT), x (B,IN) -> dw (OUT,IN) and/or db (OUT); either may be null
template <typename T>
void linear_backward_weight(T* dw, T* db, const T* dy, const T* x, const LinearParams& p);

}  // namespace fastconv
