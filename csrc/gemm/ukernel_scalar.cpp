// The portable path: no ISA flags beyond the compiler's baseline.
#include "gemm/ukernel.h"
#include "gemm/ukernel_ref.h"

namespace fastconv {

namespace {
void sgemm_ukernel_4x8__scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool acc) {
  ref::ukernel<float, 4, 8>(kc, a, b, c, ldc, acc);
}
void dgemm_ukernel_4x4__scalar(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool acc) {
  ref::ukernel<double, 4, 4>(kc, a, b, c, ldc, acc);
}
void sgemm_ukernel_off_4x8__scalar(int64_t kc, const float* a, const float* b, const int64_t* offs, float* c,
                                   int64_t ldc, bool acc) {
  ref::ukernel_off<float, 4, 8>(kc, a, b, offs, c, ldc, acc);
}
void dgemm_ukernel_off_4x4__scalar(int64_t kc, const double* a, const double* b, const int64_t* offs, double* c,
                                   int64_t ldc, bool acc) {
  ref::ukernel_off<double, 4, 4>(kc, a, b, offs, c, ldc, acc);
}
void sgemm_ukernel_rows_4x8__scalar(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                                    bool acc) {
  ref::ukernel_rows<float, 4, 8>(kc, a, lda, b, c, ldc, acc);
}
void dgemm_ukernel_rows_4x4__scalar(int64_t kc, const double* a, int64_t lda, const double* b, double* c, int64_t ldc,
                                    bool acc) {
  ref::ukernel_rows<double, 4, 4>(kc, a, lda, b, c, ldc, acc);
}
void sgemm_ukernel_gather_4x8__scalar(int64_t kc, const float* const* a, const int64_t* offs, const float* b, float* c,
                                      int64_t ldc, bool acc) {
  ref::ukernel_gather<float, 4, 8>(kc, a, offs, b, c, ldc, acc);
}
void dgemm_ukernel_gather_4x4__scalar(int64_t kc, const double* const* a, const int64_t* offs, const double* b,
                                      double* c, int64_t ldc, bool acc) {
  ref::ukernel_gather<double, 4, 4>(kc, a, offs, b, c, ldc, acc);
}
void stranspose__scalar(int64_t rows, int64_t cols, const float* s, int64_t lds, float* d, int64_t ldd) {
  ref::transpose<float>(rows, cols, s, lds, d, ldd);
}
void dtranspose__scalar(int64_t rows, int64_t cols, const double* s, int64_t lds, double* d, int64_t ldd) {
  ref::transpose<double>(rows, cols, s, lds, d, ldd);
}
void sgemv__scalar(int64_t n, int64_t k, const float* w, int64_t ldw, const float* x, float* y) {
  ref::gemv<float, 8>(n, k, w, ldw, x, y);
}
void dgemv__scalar(int64_t n, int64_t k, const double* w, int64_t ldw, const double* x, double* y) {
  ref::gemv<double, 4>(n, k, w, ldw, x, y);
}

void sdot4x3__scalar(int64_t len, const float* const* a, const float* const* b, float* out) {
  ref::dot4x3<float, 8>(len, a, b, out);
}
void ddot4x3__scalar(int64_t len, const double* const* a, const double* const* b, double* out) {
  ref::dot4x3<double, 4>(len, a, b, out);
}

// FMA probe for the portable path: 16 independent scalar multiply-adds.
__attribute__((no_sanitize("address", "undefined"))) double fma_probe__scalar(int64_t iters, float* sink) {
  float acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = 1.0f + 1e-7f * float(i);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 16; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  }
  float t = 0;
  for (int i = 0; i < 16; ++i) t += acc[i];
  *sink = t;
  return double(iters) * 16 * 2;
}

const KernelTable kScalar = {
    "scalar",
    {sgemm_ukernel_4x8__scalar, sgemm_ukernel_off_4x8__scalar, sgemv__scalar, sdot4x3__scalar, 4, 8, 256, 128, 2048, "sgemm_ukernel_4x8__scalar",
     sgemm_ukernel_rows_4x8__scalar, 4, stranspose__scalar,
     sgemm_ukernel_gather_4x8__scalar, 4, nullptr, 0, ref::copy_runs<float>, ref::split_row<float>, ref::add_to<float>, nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr},
    {dgemm_ukernel_4x4__scalar, dgemm_ukernel_off_4x4__scalar, dgemv__scalar, ddot4x3__scalar, 4, 4, 256, 64, 2048, "dgemm_ukernel_4x4__scalar",
     dgemm_ukernel_rows_4x4__scalar, 4, dtranspose__scalar,
     dgemm_ukernel_gather_4x4__scalar, 4, nullptr, 0, ref::copy_runs<double>, ref::split_row<double>, ref::add_to<double>, nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr},
    fma_probe__scalar,
};
}  // namespace

const KernelTable* scalar_kernels() { return &kScalar; }

#ifndef FASTCONV_HAVE_X86_KERNELS
const KernelTable* avx2_kernels() { return nullptr; }
#endif
#ifndef FASTCONV_HAVE_AVX512_KERNELS
const KernelTable* avx512_kernels() { return nullptr; }
#endif
#ifndef FASTCONV_HAVE_NEON_KERNELS
const KernelTable* neon_kernels() { return nullptr; }
#endif

}  // namespace fastconv
