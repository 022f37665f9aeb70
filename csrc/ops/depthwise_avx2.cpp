// Depthwise kernels built for AVX2 + FMA (this file's flags); see depthwise_impl.h.
#define FASTCONV_DW_NS avx2
#include "ops/depthwise_impl.h"
