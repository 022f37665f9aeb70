// The compiled module fastconv._core: private to the package.
#include "bindings/shim.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastconv compiled kernels (private: use fastconv.functional)";
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const fastconv::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const fastconv::SizeError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });
  fastconv::register_runtime(m);
  fastconv::register_conv(m);
  fastconv::register_linear(m);
  fastconv::register_pool(m);
}
