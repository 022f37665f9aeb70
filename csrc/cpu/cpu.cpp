#include "cpu/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common/check.h"

namespace fastconv {

namespace {

bool cpu_has(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!std::strcmp(isa, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!std::strcmp(isa, "avx512"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return false;
#elif defined(__aarch64__)
  return !std::strcmp(isa, "neon");
#else
  return false;
#endif
}

const KernelTable* table_for(const std::string& isa) {
  if (isa == "scalar") return scalar_kernels();
  if (isa == "avx2") return cpu_has("avx2") ? avx2_kernels() : nullptr;
  if (isa == "avx512") return cpu_has("avx512") ? avx512_kernels() : nullptr;
  if (isa == "neon") return cpu_has("neon") ? neon_kernels() : nullptr;
  return nullptr;
}

const KernelTable* choose_initial() {
  const char* env = std::getenv("FASTCONV_ISA");
  if (env && *env) {
    // A request for a path this machine cannot run falls back to the best one
    // rather than failing at import; build_info() shows what is in use.
    if (const KernelTable* t = table_for(env)) return t;
  }
  for (const auto& isa : available_isas())
    if (const KernelTable* t = table_for(isa)) return t;
  return scalar_kernels();
}

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> t{choose_initial()};
  return t;
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (const char* isa : {"avx512", "avx2", "neon"})
    if (table_for(isa)) out.emplace_back(isa);
  out.emplace_back("scalar");
  return out;
}

const KernelTable& active_kernels() { return *active().load(std::memory_order_acquire); }

std::string active_isa() { return active_kernels().isa; }

void set_isa(const std::string& isa) {
  const KernelTable* t = table_for(isa);
  if (!t) {
    std::string avail;
    for (const auto& s : available_isas()) avail += (avail.empty() ? "" : ", ") + s;
    value_error("set_isa: isa '", isa, "' is not available on this build/CPU (available: ", avail, ")");
  }
  active().store(t, std::memory_order_release);
}

}  // namespace fastconv
