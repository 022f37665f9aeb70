// Shims for linear forward / backward.
#include "bindings/shim.h"
#include "ops/linear.h"

namespace fastconv {

namespace py = pybind11;

namespace {

template <typename T>
py::array forward(const py::array& x, const py::array& w, const py::object& b, const LinearParams& p,
                  const py::object& out) {
  const T* xp = shim::in_ptr<T>(x, "linear", "input");
  const T* wp = shim::in_ptr<T>(w, "linear", "weight");
  const T* bp = shim::opt_ptr<T>(b, "linear", "bias");
  std::vector<int64_t> ys = shim::shape_of(x);
  ys.back() = p.OUT;
  auto y = shim::output<T>(out, ys, "linear", "linear output");
  T* yp = shim::out_ptr(y);
  {
    py::gil_scoped_release nogil;
    linear_forward<T>(yp, xp, wp, bp, p);
  }
  return std::move(y);
}

template <typename T>
py::tuple backward(const py::array& dy, const py::array& x, const py::array& w, const LinearParams& p, bool need_dx,
                   bool need_dw, bool need_db) {
  const T* dyp = shim::in_ptr<T>(dy, "linear_backward", "grad_output");
  const T* xp = shim::in_ptr<T>(x, "linear_backward", "input");
  const T* wp = shim::in_ptr<T>(w, "linear_backward", "weight");
  std::vector<int64_t> want = shim::shape_of(x);
  want.back() = p.OUT;
  if (shim::shape_of(dy) != want)
    value_error("linear_backward: grad_output has shape ", shape_str(shim::shape_of(dy)), ", expected ",
                shape_str(want));
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T *dxp = nullptr, *dwp = nullptr, *dbp = nullptr;
  if (need_dx) {
    auto a = shim::empty<T>(shim::shape_of(x), "linear input gradient");
    dxp = shim::out_ptr(a);
    dx = a;
  }
  if (need_dw) {
    auto a = shim::empty<T>({p.OUT, p.IN}, "linear weight gradient");
    dwp = shim::out_ptr(a);
    dw = a;
  }
  if (need_db) {
    auto a = shim::empty<T>({p.OUT}, "linear bias gradient");
    dbp = shim::out_ptr(a);
    db = a;
  }
  {
    py::gil_scoped_release nogil;
    if (dxp) linear_backward_data<T>(dxp, dyp, wp, p);
    if (dwp || dbp) linear_backward_weight<T>(dwp, dbp, dyp, xp, p);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace

void register_linear(py::module_& m) {
  auto fast = [](py::handle x, py::handle w, py::handle b, py::handle out) -> py::object {
    const int dt = shim::fast_dtype(x);
    if (dt < 0 || shim::fast_dtype(w) != dt || shim::fast_ndim(x) < 1 || shim::fast_ndim(w) != 2) return py::none();
    if (!b.is_none() && (shim::fast_dtype(b) != dt || shim::fast_ndim(b) != 1)) return py::none();
    std::vector<int64_t> ys = shim::fast_shape(x);
    const LinearParams p = make_linear_params(ys, shim::fast_shape(w), b.is_none() ? -1 : shim::fast_shape(b)[0]);
    ys.back() = p.OUT;
    if (!shim::fast_out(out, dt, ys, {x, w, b})) return py::none();
    const py::array xa = py::reinterpret_borrow<py::array>(x), wa = py::reinterpret_borrow<py::array>(w);
    const py::object bo = py::reinterpret_borrow<py::object>(b), oo = py::reinterpret_borrow<py::object>(out);
    if (dt == 0) return forward<float>(xa, wa, bo, p, oo);
    return forward<double>(xa, wa, bo, p, oo);
  };
  m.def(
      "linear_fast", [fast](py::handle x, py::handle w, py::handle b) { return fast(x, w, b, py::none()); },
      "linear for the common case (see shim.h: fast paths); None when the general path must handle the call.");
  m.def("linear_fast_out", fast,
        "linear_fast into `out` (C-contiguous, writeable, the result's shape and dtype, not overlapping an input); "
        "None when the general path must handle the call.");
  m.def(
      "linear_check",
      [](const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, int64_t bias_len) -> std::vector<int64_t> {
        const LinearParams p = make_linear_params(xs, ws, bias_len);
        std::vector<int64_t> ys = xs;
        ys.back() = p.OUT;
        return ys;
      },
      py::arg("input_shape"), py::arg("weight_shape"), py::arg("bias_len"),
      "Validate linear shapes (bias_len -1: no bias) without touching any data; returns the output shape.");
  m.def(
      "linear_forward",
      [](const py::array& x, const py::array& w, const py::object& b, const py::object& out) -> py::array {
        const LinearParams p = make_linear_params(shim::shape_of(x), shim::shape_of(w), shim::opt_len(b, "linear", "bias"));
        if (shim::dtype_of(x, "linear", "input") == shim::DType::f32) return forward<float>(x, w, b, p, out);
        return forward<double>(x, w, b, p, out);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out") = py::none(), "y = x @ weight.T + bias over the last dim of x");
  m.def(
      "linear_backward",
      [](const py::array& dy, const py::array& x, const py::array& w, bool need_dx, bool need_dw,
         bool need_db) -> py::tuple {
        const LinearParams p = make_linear_params(shim::shape_of(x), shim::shape_of(w), -1);
        if (shim::dtype_of(x, "linear_backward", "input") == shim::DType::f32)
          return backward<float>(dy, x, w, p, need_dx, need_dw, need_db);
        return backward<double>(dy, x, w, p, need_dx, need_dw, need_db);
      },
      py::arg("grad_output"), py::arg("x"), py::arg("weight"), py::arg("need_input") = true,
      py::arg("need_weight") = true, py::arg("need_bias") = true, "(dx, dw, db) of linear");
}

}  // namespace fastconv
