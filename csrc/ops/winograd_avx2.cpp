// The Winograd transforms and drivers built for AVX2 (this file's flags); see winograd_impl.h.
#define FASTCONV_WG_NS avx2
#include "ops/winograd_impl.h"
