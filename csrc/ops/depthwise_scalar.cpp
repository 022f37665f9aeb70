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

namespace {
const DepthwiseKernels& table() {
#ifdef FASTCONV_HAVE_X86_KERNELS
  const char* isa = active_kernels().isa;
  if (!std::strcmp(isa, "avx2") || !std::strcmp(isa, "avx512")) return avx2::kTable;
#endif
  return scalar::kTable;
}
}  // namespace

template <>
void depthwise_forward<float>(float* y, const float* x, const float* w, const float* b, const Conv2dParams& p) {
  table().forward_f32(y, x, w, b, p);
}
template <>
void depthwise_forward<double>(double* y, const double* x, const double* w, const double* b,
                               const Conv2dParams& p) {
  table().forward_f64(y, x, w, b, p);
}
template <>
void depthwise_backward_data<float>(float* dx, const float* dy, const float* w, const Conv2dParams& p) {
  table().backward_data_f32(dx, dy, w, p);
}
template <>
void depthwise_backward_data<double>(double* dx, const double* dy, const double* w, const Conv2dParams& p) {
  table().backward_data_f64(dx, dy, w, p);
}
template <>
void depthwise_backward_weight<float>(float* dw, const float* dy, const float* x, const Conv2dParams& p) {
  table().backward_weight_f32(dw, dy, x, p);
}
template <>
void depthwise_backward_weight<double>(double* dw, const double* dy, const double* x, const Conv2dParams& p) {
  table().backward_weight_f64(dw, dy, x, p);
}

}  // namespace fastconv
