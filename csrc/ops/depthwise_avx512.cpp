// Depthwise kernels built for AVX-512 (this file's flags): depthwise_impl.h
// with 512-bit vectors. See there.
#define FASTCONV_DW_NS avx512
#define FASTCONV_DW_VBYTES 64
#include "ops/depthwise_impl.h"
