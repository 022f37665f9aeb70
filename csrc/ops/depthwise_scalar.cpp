// Depthwise kernels for the portable path (and the dispatcher).
#include <cstring>

#include "cpu/cpu.h"

#define FASTCONV_DW_NS scalar
#include "ops/depthwise_impl.h"

namespace fastconv {

#ifdef FASTCONV_HAVE_X86_KERNELS
namespace avx2 {
extern const DepthwiseKernels kTable;
}
#endif
#ifdef FASTCONV_HAVE_AVX512_KERNELS
namespace avx512 {
extern const DepthwiseKernels kTable;
}
#endif

namespace {
// The 512-bit kernels for stride-1 convolutions whose rows (`width`: the
// output's, the input's for the data gradient) fill at least half of their
// row block (32 floats, 16 doubles) -- where they gain on the 256-bit ones.
// Alternated in one process at 1 thread, 256- against 512-bit: 8x64x56x56
// 3x3 forward 0.712-0.752 -> 0.638-0.674 ms, dx 0.701-0.767 -> 0.656-0.723,
// dW 0.554-0.570 -> 0.538-0.558; 5x5 forward 1.41-1.47 -> 1.14-1.18, dW
// 4.91-4.93 -> 3.68-3.82. Narrower rows and strides lose: 8x128x28x28 3x3
// forward 0.46 -> 3.11 (rows under half a block: 16 lanes, then one at a
// time), its dW 0.44 -> 0.50; 8x64x56x56 3x3/2 forward 1.11 -> 1.58.
template <typename T>
const DepthwiseKernels& table(const Conv2dParams& p, int64_t width) {
#ifdef FASTCONV_HAVE_X86_KERNELS
  const char* isa = active_kernels().isa;
#ifdef FASTCONV_HAVE_AVX512_KERNELS
  const bool wide = p.stride_h == 1 && p.stride_w == 1 && width * int64_t(sizeof(T)) >= 128;
  if (!std::strcmp(isa, "avx512") && wide) return avx512::kTable;
#endif
  if (!std::strcmp(isa, "avx2") || !std::strcmp(isa, "avx512")) return avx2::kTable;
#endif
  return scalar::kTable;
}
}  // namespace

template <>
void depthwise_forward<float>(float* y, const float* x, const float* w, const float* b, const Conv2dParams& p) {
  table<float>(p, p.OW).forward_f32(y, x, w, b, p);
}
template <>
void depthwise_forward<double>(double* y, const double* x, const double* w, const double* b,
                               const Conv2dParams& p) {
  table<double>(p, p.OW).forward_f64(y, x, w, b, p);
}
template <>
void depthwise_backward_data<float>(float* dx, const float* dy, const float* w, const Conv2dParams& p) {
  table<float>(p, p.W).backward_data_f32(dx, dy, w, p);
}
template <>
void depthwise_backward_data<double>(double* dx, const double* dy, const double* w, const Conv2dParams& p) {
  table<double>(p, p.W).backward_data_f64(dx, dy, w, p);
}
template <>
void depthwise_backward_weight<float>(float* dw, const float* dy, const float* x, const Conv2dParams& p) {
  table<float>(p, p.OW).backward_weight_f32(dw, dy, x, p);
}
template <>
void depthwise_backward_weight<double>(double* dw, const double* dy, const double* x, const Conv2dParams& p) {
  table<double>(p, p.OW).backward_weight_f64(dw, dy, x, p);
}

}  // namespace fastconv
