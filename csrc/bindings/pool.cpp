// Shims for the pooling kernels.
#include <array>

#include "bindings/shim.h"
#include "ops/eltwise.h"
#include "ops/pool2d.h"

namespace fastconv {

namespace py = pybind11;
using Pair = std::array<int64_t, 2>;

namespace {

template <typename T>
py::tuple max_fwd(const py::array& x, const Pool2dParams& p, bool adaptive, bool need_indices = true,
                  const py::object& out = py::none()) {
  const char* op = adaptive ? "adaptive_max_pool2d" : "max_pool2d";
  const T* xp = shim::in_ptr<T>(x, op, "input");
  auto y = shim::output<T>(out, {p.N, p.C, p.OH, p.OW}, op, adaptive ? "adaptive_max_pool2d output" : "max_pool2d output");
  py::object ind_obj = py::none();
  int64_t* ip = nullptr;
  if (need_indices || adaptive) {
    auto ind = shim::empty<int64_t>({p.N, p.C, p.OH, p.OW}, adaptive ? "adaptive_max_pool2d indices" : "max_pool2d indices");
    ip = shim::out_ptr(ind);
    ind_obj = ind;
  }
  T* yp = shim::out_ptr(y);
  {
    py::gil_scoped_release nogil;
    if (adaptive)
      adaptive_max_pool2d_forward<T>(yp, ip, xp, p);
    else
      max_pool2d_forward<T>(yp, ip, xp, p);
  }
  return py::make_tuple(y, ind_obj);
}

template <typename T>
py::array max_bwd(const py::array& dy, const py::array& ind, const Pool2dParams& p) {
  const T* gp = shim::in_ptr<T>(dy, "max_pool2d_backward", "grad_output");
  const int64_t* ip = shim::in_ptr<int64_t>(ind, "max_pool2d_backward", "indices");
  auto dx = shim::empty<T>({p.N, p.C, p.H, p.W}, "max_pool2d input gradient");
  T* dp = shim::out_ptr(dx);
  {
    py::gil_scoped_release nogil;
    max_pool2d_backward<T>(dp, gp, ip, p);
  }
  return std::move(dx);
}

template <typename T>
py::array avg_fwd(const py::array& x, const Pool2dParams& p, bool adaptive, const py::object& out = py::none()) {
  const char* op = adaptive ? "adaptive_avg_pool2d" : "avg_pool2d";
  const T* xp = shim::in_ptr<T>(x, op, "input");
  auto y = shim::output<T>(out, {p.N, p.C, p.OH, p.OW}, op, adaptive ? "adaptive_avg_pool2d output" : "avg_pool2d output");
  T* yp = shim::out_ptr(y);
  {
    py::gil_scoped_release nogil;
    if (adaptive)
      adaptive_avg_pool2d_forward<T>(yp, xp, p);
    else
      avg_pool2d_forward<T>(yp, xp, p);
  }
  return std::move(y);
}

template <typename T>
py::array avg_bwd(const py::array& dy, const Pool2dParams& p, bool adaptive) {
  const T* gp = shim::in_ptr<T>(dy, "avg_pool2d_backward", "grad_output");
  auto dx = shim::empty<T>({p.N, p.C, p.H, p.W}, "avg_pool2d input gradient");
  T* dp = shim::out_ptr(dx);
  {
    py::gil_scoped_release nogil;
    if (adaptive)
      adaptive_avg_pool2d_backward<T>(dp, gp, p);
    else
      avg_pool2d_backward<T>(dp, gp, p);
  }
  return std::move(dx);
}

void require_shape(const py::array& a, const std::vector<int64_t>& want, const char* op, const char* name) {
  if (shim::shape_of(a) != want)
    value_error(op, ": ", name, " has shape ", shape_str(shim::shape_of(a)), ", expected ", shape_str(want));
}

Pool2dParams pool_params(const char* op, const py::array& x, Pair k, Pair s, Pair pad, Pair d, bool ceil_mode,
                         bool count_include_pad, int64_t divisor) {
  return make_pool2d_params(op, shim::shape_of(x), k[0], k[1], s[0], s[1], pad[0], pad[1], d[0], d[1], ceil_mode,
                            count_include_pad, divisor);
}

bool is_f32(const py::array& a, const char* op, const char* name) {
  return shim::dtype_of(a, op, name) == shim::DType::f32;
}

}  // namespace

void register_pool(py::module_& m) {
  m.def(
      "relu_fast",
      [](py::handle x) -> py::object {
        // relu of an exact, contiguous float ndarray (any rank >= 1); None: general path
        const int dt = shim::fast_dtype(x);
        if (dt < 0 || shim::fast_ndim(x) < 1) return py::none();
        const py::array xa = py::reinterpret_borrow<py::array>(x);
        const std::vector<int64_t> shape = shim::fast_shape(x);
        auto run = [&](auto tag) -> py::object {
          using T = decltype(tag);
          auto y = shim::empty<T>(shape, "relu output");
          const T* xp = static_cast<const T*>(xa.data());
          T* yp = shim::out_ptr(y);
          const int64_t n = int64_t(xa.size());
          {
            py::gil_scoped_release nogil;
            relu_forward<T>(yp, xp, n);
          }
          return std::move(y);
        };
        return dt == 0 ? run(float{}) : run(double{});
      },
      "relu (PyTorch's: NaN and -0.0 kept) for exact contiguous float arrays; None otherwise.");
  // values-only max pooling for the common case (see shim.h: fast paths); None: general path
  auto max_fast = [](py::handle x, py::handle kernel, py::handle stride, py::handle padding, py::handle dilation,
                     py::handle ceil_mode, py::handle out) -> py::object {
    const int dt = shim::fast_dtype(x);
    if (dt < 0 || shim::fast_ndim(x) != 4) return py::none();
    if (ceil_mode.ptr() != Py_True && ceil_mode.ptr() != Py_False) return py::none();
    Pair k{}, s{}, pd{}, d{};
    if (!shim::fast_pair(kernel, 1, k) || !shim::fast_pair(padding, 0, pd) || !shim::fast_pair(dilation, 1, d))
      return py::none();
    if (stride.is_none())
      s = k;
    else if (!shim::fast_pair(stride, 1, s))
      return py::none();
    const py::array xa = py::reinterpret_borrow<py::array>(x);
    const Pool2dParams p = make_pool2d_params("max_pool2d", shim::fast_shape(x), k[0], k[1], s[0], s[1], pd[0],
                                              pd[1], d[0], d[1], ceil_mode.ptr() == Py_True, false, 0);
    if (!shim::fast_out(out, dt, {p.N, p.C, p.OH, p.OW}, {x})) return py::none();
    const py::object oo = py::reinterpret_borrow<py::object>(out);
    py::tuple r = dt == 0 ? max_fwd<float>(xa, p, false, false, oo) : max_fwd<double>(xa, p, false, false, oo);
    return r[0];
  };
  m.def(
      "max_pool2d_fast",
      [max_fast](py::handle x, py::handle kernel, py::handle stride, py::handle padding, py::handle dilation,
                 py::handle ceil_mode) { return max_fast(x, kernel, stride, padding, dilation, ceil_mode, py::none()); },
      "max_pool2d values for the common case; None when the general path must handle the call.");
  m.def("max_pool2d_fast_out", max_fast,
        "max_pool2d_fast into `out` (C-contiguous, writeable, the result's shape and dtype, not overlapping the "
        "input); None when the general path must handle the call.");
  m.def(
      "max_pool2d_forward",
      [](const py::array& x, Pair k, Pair s, Pair pad, Pair d, bool ceil_mode, bool need_indices,
         const py::object& out) -> py::tuple {
        const Pool2dParams p = pool_params("max_pool2d", x, k, s, pad, d, ceil_mode, false, 0);
        return is_f32(x, "max_pool2d", "input") ? max_fwd<float>(x, p, false, need_indices, out)
                                                : max_fwd<double>(x, p, false, need_indices, out);
      },
      py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("ceil_mode"), py::arg("need_indices") = true, py::arg("out") = py::none(),
      "(y, indices or None) of max pooling");
  m.def(
      "avg_pool2d_forward",
      [](const py::array& x, Pair k, Pair s, Pair pad, bool ceil_mode, bool count_include_pad, int64_t divisor,
         const py::object& out) -> py::array {
        const Pool2dParams p =
            pool_params("avg_pool2d", x, k, s, pad, Pair{1, 1}, ceil_mode, count_include_pad, divisor);
        return is_f32(x, "avg_pool2d", "input") ? avg_fwd<float>(x, p, false, out) : avg_fwd<double>(x, p, false, out);
      },
      py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
      py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("out") = py::none());
  m.def(
      "avg_pool2d_backward",
      [](const py::array& dy, const std::vector<int64_t>& x_shape, Pair k, Pair s, Pair pad, bool ceil_mode,
         bool count_include_pad, int64_t divisor) -> py::array {
        const Pool2dParams p = make_pool2d_params("avg_pool2d_backward", x_shape, k[0], k[1], s[0], s[1], pad[0],
                                                  pad[1], 1, 1, ceil_mode, count_include_pad, divisor);
        require_shape(dy, {p.N, p.C, p.OH, p.OW}, "avg_pool2d_backward", "grad_output");
        return is_f32(dy, "avg_pool2d_backward", "grad_output") ? avg_bwd<float>(dy, p, false)
                                                                : avg_bwd<double>(dy, p, false);
      },
      py::arg("grad_output"), py::arg("input_shape"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
      py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"));
  m.def(
      "adaptive_avg_pool2d_forward",
      [](const py::array& x, Pair size, const py::object& out) -> py::array {
        const Pool2dParams p = make_adaptive_params("adaptive_avg_pool2d", shim::shape_of(x), size[0], size[1]);
        return is_f32(x, "adaptive_avg_pool2d", "input") ? avg_fwd<float>(x, p, true, out)
                                                         : avg_fwd<double>(x, p, true, out);
      },
      py::arg("x"), py::arg("output_size"), py::arg("out") = py::none());
  m.def(
      "adaptive_avg_pool2d_backward",
      [](const py::array& dy, const std::vector<int64_t>& x_shape) -> py::array {
        const std::vector<int64_t> ds = shim::shape_of(dy);
        if (ds.size() != 4)
          value_error("adaptive_avg_pool2d_backward: grad_output must be 4-D, got ", shape_str(ds));
        const Pool2dParams p = make_adaptive_params("adaptive_avg_pool2d", x_shape, ds[2], ds[3]);
        require_shape(dy, {p.N, p.C, p.OH, p.OW}, "adaptive_avg_pool2d_backward", "grad_output");
        return is_f32(dy, "adaptive_avg_pool2d_backward", "grad_output") ? avg_bwd<float>(dy, p, true)
                                                                         : avg_bwd<double>(dy, p, true);
      },
      py::arg("grad_output"), py::arg("input_shape"));
  m.def(
      "adaptive_max_pool2d_forward",
      [](const py::array& x, Pair out) -> py::tuple {
        const Pool2dParams p = make_adaptive_params("adaptive_max_pool2d", shim::shape_of(x), out[0], out[1]);
        return is_f32(x, "adaptive_max_pool2d", "input") ? max_fwd<float>(x, p, true) : max_fwd<double>(x, p, true);
      },
      py::arg("x"), py::arg("output_size"));
  m.def(
      "max_pool_backward",
      [](const py::array& dy, const py::array& ind, const std::vector<int64_t>& x_shape) -> py::array {
        // scatter dy into the argmax positions: the backward of every max pooling
        const std::vector<int64_t> ds = shim::shape_of(dy);
        if (ds.size() != 4) value_error("max_pool2d_backward: grad_output must be 4-D, got ", shape_str(ds));
        Pool2dParams p = make_adaptive_params("max_pool2d_backward", x_shape, ds[2], ds[3]);
        require_shape(ind, ds, "max_pool2d_backward", "indices");
        require_shape(dy, {p.N, p.C, p.OH, p.OW}, "max_pool2d_backward", "grad_output");
        return is_f32(dy, "max_pool2d_backward", "grad_output") ? max_bwd<float>(dy, ind, p)
                                                                : max_bwd<double>(dy, ind, p);
      },
      py::arg("grad_output"), py::arg("indices"), py::arg("input_shape"));
  m.def(
      "max_unpool2d_forward",
      [](const py::array& x, const py::array& ind, Pair out) -> py::array {
        const Pool2dParams p = make_unpool_params(shim::shape_of(x), shim::shape_of(ind), out[0], out[1]);
        const int64_t* ip = shim::in_ptr<int64_t>(ind, "max_unpool2d", "indices");
        auto run = [&](auto tag) -> py::array {
          using T = decltype(tag);
          const T* xp = shim::in_ptr<T>(x, "max_unpool2d", "input");
          auto y = shim::empty<T>({p.N, p.C, p.OH, p.OW}, "max_unpool2d output");
          T* yp = shim::out_ptr(y);
          bool ok;
          {
            py::gil_scoped_release nogil;
            ok = max_unpool2d_forward<T>(yp, xp, ip, p);
          }
          if (!ok)
            value_error("max_unpool2d: found an index outside the output plane of size (", p.OH, ", ", p.OW,
                        ") = ", p.OH * p.OW, " elements; indices must be in [0, ", p.OH * p.OW, ")");
          return std::move(y);
        };
        return is_f32(x, "max_unpool2d", "input") ? run(float{}) : run(double{});
      },
      py::arg("x"), py::arg("indices"), py::arg("output_size"));
  m.def(
      "max_unpool2d_backward",
      [](const py::array& dy, const py::array& ind) -> py::array {
        const std::vector<int64_t> ds = shim::shape_of(dy);
        if (ds.size() != 4) value_error("max_unpool2d_backward: grad_output must be 4-D, got ", shape_str(ds));
        const Pool2dParams p = make_unpool_params(shim::shape_of(ind), shim::shape_of(ind), ds[2], ds[3]);
        if (ds[0] != p.N || ds[1] != p.C)
          value_error("max_unpool2d_backward: grad_output shape ", shape_str(ds), " does not match indices shape ",
                      shape_str(shim::shape_of(ind)));
        const int64_t* ip = shim::in_ptr<int64_t>(ind, "max_unpool2d_backward", "indices");
        auto run = [&](auto tag) -> py::array {
          using T = decltype(tag);
          const T* gp = shim::in_ptr<T>(dy, "max_unpool2d_backward", "grad_output");
          auto dx = shim::empty<T>({p.N, p.C, p.H, p.W}, "max_unpool2d input gradient");
          T* dp = shim::out_ptr(dx);
          bool ok;
          {
            py::gil_scoped_release nogil;
            ok = max_unpool2d_backward<T>(dp, gp, ip, p);
          }
          if (!ok)
            value_error("max_unpool2d_backward: found an index outside the output plane of size (", p.OH, ", ", p.OW,
                        ") = ", p.OH * p.OW, " elements; indices must be in [0, ", p.OH * p.OW, ")");
          return std::move(dx);
        };
        return is_f32(dy, "max_unpool2d_backward", "grad_output") ? run(float{}) : run(double{});
      },
      py::arg("grad_output"), py::arg("indices"));
}

}  // namespace fastconv
