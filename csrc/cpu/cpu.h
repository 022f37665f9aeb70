// CPU feature detection and the kernel table chosen from it.
//
// The active table is picked once (first use) from the best ISA that was both
// built and is supported by this CPU (AVX-512, then AVX2, then scalar);
// FASTCONV_ISA (scalar|avx2|avx512|neon) narrows the choice. set_isa() switches it later (tests, benchmarks).
#pragma once

#include <string>
#include <vector>

#include "gemm/ukernel.h"

namespace fastconv {

const KernelTable& active_kernels();
// ISAs this build has kernels for and this CPU can run, best first.
std::vector<std::string> available_isas();
// Switch the active path; throws ValueError if `isa` is not available.
void set_isa(const std::string& isa);
std::string active_isa();
// How the initial path was chosen (FASTCONV_ISA or best available), and where
// both AVX-512 and AVX2 run, their FMA throughput ratio (a probe, run once).
std::string isa_choice();

}  // namespace fastconv
