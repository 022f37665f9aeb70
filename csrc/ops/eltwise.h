// Elementwise kernels the NumPy ufuncs are slow at in a network's inner loop.
#pragma once

#include <cstdint>

namespace fastconv {

// y[i] = x[i] < 0 ? 0 : x[i]  (PyTorch's relu: NaN stays NaN, -0.0 stays -0.0). y may equal x.
template <typename T>
void relu_forward(T* y, const T* x, int64_t n);

}  // namespace fastconv
