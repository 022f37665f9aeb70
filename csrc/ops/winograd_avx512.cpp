// The Winograd transforms and drivers built for AVX-512 (this file's flags); see winograd_impl.h.
#define FASTCONV_WG_NS avx512
#define FASTCONV_WG_AVX512 1
#include "ops/winograd_impl.h"
