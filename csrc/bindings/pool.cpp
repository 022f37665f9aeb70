// Shims for pooling (filled in with the pooling kernels).
#include "bindings/shim.h"

namespace fastconv {

void register_pool(pybind11::module_& m) {}

}  // namespace fastconv
