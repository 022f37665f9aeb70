// Runtime settings and build information.
#include <algorithm>
#include <chrono>
#include <vector>
#include "bindings/shim.h"
#include "common/parallel.h"
#include "cpu/cpu.h"

namespace fastconv {

namespace py = pybind11;

void register_runtime(py::module_& m) {
  m.def("set_num_threads", [](int n) {
    if (n < 1) value_error("set_num_threads: n must be a positive integer, got ", n);
    set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", &num_threads);
  m.def(
      "scratch_cache_info",
      []() {
        int64_t blocks = 0, bytes = 0;
        scratch_cache_stats(&blocks, &bytes);
        return py::make_tuple(blocks, bytes, int64_t(scratch_min_cached()));
      },
      "(blocks, bytes, smallest block kept) of the cache that large scratch buffers and results are taken from "
      "and given back to (smallest 0: no cache, an AddressSanitizer build).");
  m.def("scratch_cache_clear", &scratch_clear, "Free every block the scratch cache holds.");
  m.def("set_isa", &set_isa, py::arg("isa"));
  m.def("active_isa", &active_isa);
  m.def("available_isas", &available_isas);
  m.def(
      "ukernel_gflops",
      [](int64_t kc, int64_t panels, double seconds, bool offsets) {
        // float micro-kernel throughput on packed panels (diagnostics for the
        // benchmarks): `panels` A panels of MR x kc against one B panel of
        // kc x NR, as the driver's inner loops run them (in-place B rows when
        // `offsets`); GFLOP/s, best of repeated timings on this thread
        if (kc < 1 || kc > 4096 || panels < 1 || panels > 4096 || !(seconds > 0 && seconds <= 10))
          value_error("ukernel_gflops: kc in [1, 4096], panels in [1, 4096], seconds in (0, 10]");
        const GemmKernel<float>& k = active_kernels().f32;
        std::vector<float> a(size_t(panels * kc * k.mr), 0.5f), b(size_t(kc * k.nr + 64), 0.25f);
        std::vector<float> c(size_t(panels * k.mr * k.nr), 0.0f);
        std::vector<int64_t> offs(static_cast<size_t>(kc));
        for (int64_t i = 0; i < kc; ++i) offs[size_t(i)] = i * k.nr;
        py::gil_scoped_release nogil;
        double best = 0;
        const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < t_end) {
          const auto t0 = std::chrono::steady_clock::now();
          for (int rep = 0; rep < 16; ++rep)
            for (int64_t q = 0; q < panels; ++q) {
              float* cq = c.data() + q * k.mr * k.nr;
              if (offsets)
                k.ukernel_off(kc, a.data() + q * kc * k.mr, b.data(), offs.data(), cq, k.nr, rep > 0);
              else
                k.ukernel(kc, a.data() + q * kc * k.mr, b.data(), cq, k.nr, rep > 0);
            }
          const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          best = std::max(best, 16.0 * panels * 2.0 * kc * k.mr * k.nr / dt * 1e-9);
        }
        return best;
      },
      py::arg("kc") = 256, py::arg("panels") = 24, py::arg("seconds") = 0.2, py::arg("offsets") = false);
  m.def(
      "fma_peak",
      [](double seconds) {
        // float FMA throughput of the active ISA on the calling thread, GFLOP/s (best of short runs)
        if (!(seconds > 0 && seconds <= 10)) value_error("fma_peak: seconds must be in (0, 10], got ", seconds);
        const KernelTable& k = active_kernels();
        py::gil_scoped_release nogil;
        float sink = 0;
        double best = 0;
        int64_t iters = 1 << 16;
        const auto t_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < t_end) {
          const auto t0 = std::chrono::steady_clock::now();
          const double flops = k.fma_probe(iters, &sink);
          const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (dt < 1e-3) {
            iters *= 2;
            continue;
          }
          best = std::max(best, flops / dt * 1e-9);
        }
        if (sink == 12345.0f) best += 0;  // keep the result alive
        return best;
      },
      py::arg("seconds") = 0.2);
  m.def(
      "check_result",
      [](const std::vector<int64_t>& shape, int64_t itemsize, const std::string& what) {
        // the checks shim::empty makes before allocating, on the shape alone (before inputs are copied)
        std::vector<int64_t> extent(shape);
        for (int64_t& d : extent) d = std::max<int64_t>(d, 1);
        checked_bytes(checked_numel(shape, what.c_str()), size_t(itemsize), what.c_str());
        checked_bytes(checked_numel(extent, what.c_str()), size_t(itemsize), what.c_str());
      },
      py::arg("shape"), py::arg("itemsize"), py::arg("what"));
  m.def("build_info", []() {
    py::dict d;
    const KernelTable& k = active_kernels();
    d["version"] = FASTCONV_VERSION;
    d["compiler"] = FASTCONV_COMPILER;
    d["openmp"] = have_openmp();
    d["simd"] = std::string(k.isa);
    d["simd_available"] = available_isas();
    d["simd_choice"] = isa_choice();
    d["threads"] = num_threads();
    d["forked_serial"] = forked_serial();
    d["sgemm_kernel"] = std::string(k.f32.name);
    d["dgemm_kernel"] = std::string(k.f64.name);
#ifdef NDEBUG
    d["debug"] = false;
#else
    d["debug"] = true;
#endif
#if defined(__SANITIZE_ADDRESS__)
    d["sanitizers"] = true;
#else
    d["sanitizers"] = false;
#endif
    return d;
  });
}

}  // namespace fastconv

// C entry points for threadpoolctl (python/fastconv/_threadpool.py registers a
// controller that finds this library by these symbols and calls them through
// ctypes). Exported despite the module's hidden default visibility.
extern "C" {
__attribute__((visibility("default"))) int fastconv_threadpool_get_num_threads(void) {
  return fastconv::num_threads();
}
__attribute__((visibility("default"))) void fastconv_threadpool_set_num_threads(int n) {
  fastconv::set_num_threads(n < 1 ? 1 : (n > 4096 ? 4096 : n));
}
__attribute__((visibility("default"))) const char* fastconv_threadpool_version(void) {
  return FASTCONV_VERSION;
}
}
