#include "cpu/cpu.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
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

// Best-of-n FMA throughput of two tables' probes (flops per second, arbitrary
// scale), run alternately: interference only slows a run down, so the best run
// is the stable one, and alternating gives both the same exposure to a noisy
// spell (a VM's neighbour, a clock ramp) instead of letting it fall on one.
void probe_rates(const KernelTable* a, const KernelTable* b, double& ra, double& rb) {
  float sink = 0;
  ra = rb = 0;
  auto once = [&](const KernelTable* t, double& best) {
    const auto t0 = std::chrono::steady_clock::now();
    const double flops = t->fma_probe(4096, &sink);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0) best = std::max(best, flops / dt);
  };
  for (int rep = 0; rep < 32; ++rep) {
    once(a, ra);
    once(b, rb);
  }
}

std::string& choice_note() {
  static std::string note;
  return note;
}

const KernelTable* choose_initial() {
  const char* env = std::getenv("FASTCONV_ISA");
  if (env && *env) {
    // A request for a path this machine cannot run falls back to the best one
    // rather than failing at import; build_info() shows what is in use.
    if (const KernelTable* t = table_for(env)) {
      choice_note() = std::string("FASTCONV_ISA=") + env;
      return t;
    }
  }
  // The best path this CPU runs, AVX-512 ahead of AVX2 even where a 512-bit
  // FMA runs as two 256-bit halves (AMD Zen 4: the FMA probe gives 1.00x):
  // there the AVX-512 kernels (twice the registers, masked edges, their own
  // Winograd transforms), alternated with the AVX2 ones in one process, ran
  // the benchmark's convolutions of 0.1 ms and more 0.99-1.93x as fast
  // forward, 0.93-1.62x forward+backward, whole models 1.05-1.33x; the
  // microsecond layers, pooling and linear 0.74-1.25x, within those runs'
  // noise.
  choice_note() = "best available";
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

std::string isa_choice() {
  active_kernels();  // make sure the choice was made
  std::string note = choice_note();
  // For the record (it no longer decides anything): how AVX-512's FMA
  // throughput compares with AVX2's here, ~2x with full-width units.
  const KernelTable* a512 = table_for("avx512");
  const KernelTable* a2 = table_for("avx2");
  if (a512 && a2) {
    static const double ratio = [&] {
      double r512 = 0, r2 = 0;
      probe_rates(a512, a2, r512, r2);
      return r512 / std::max(r2, 1.0);
    }();
    char buf[96];
    std::snprintf(buf, sizeof buf, "; FMA probe: avx512 throughput %.2fx avx2", ratio);
    note += buf;
  }
  return note;
}

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
