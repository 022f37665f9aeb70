// Runtime settings and build information.
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
  m.def("set_isa", &set_isa, py::arg("isa"));
  m.def("active_isa", &active_isa);
  m.def("available_isas", &available_isas);
  m.def("build_info", []() {
    py::dict d;
    const KernelTable& k = active_kernels();
    d["version"] = FASTCONV_VERSION;
    d["compiler"] = FASTCONV_COMPILER;
    d["openmp"] = have_openmp();
    d["simd"] = std::string(k.isa);
    d["simd_available"] = available_isas();
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
