// Shims for conv2d forward / backward.
#include <array>

#include <memory>
#include <type_traits>

#include "bindings/shim.h"
#include "ops/conv2d.h"
#include "ops/weight_pack.h"

namespace fastconv {

namespace py = pybind11;
using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;  // top, bottom, left, right

// A weight's packed panels kept across forward calls (nn.Conv2d.prepack).
// Made only from a read-only array, which it keeps alive (so its address is
// not reused by another array while the pack exists); a call uses it only
// with that same array object, still read-only.
struct ConvPack {
  py::array weight;
  int64_t groups = 1;
  std::unique_ptr<ConvWeightPack<float>> f32;
  std::unique_ptr<ConvWeightPack<double>> f64;

  template <typename T>
  ConvWeightPack<T>* for_call(const py::array& w) const {
    if (!w.is(weight) || w.writeable()) return nullptr;
    if constexpr (std::is_same_v<T, float>)
      return f32.get();
    else
      return f64.get();
  }
};

namespace {

Conv2dParams params(const py::array& x, const py::array& w, const py::object& b, Pair stride, Quad pad, Pair dil,
                    int64_t groups) {
  return make_conv2d_params(shim::shape_of(x), shim::shape_of(w), shim::opt_len(b, "conv2d", "bias"), stride[0],
                            stride[1], pad[0], pad[1], pad[2], pad[3], dil[0], dil[1], groups);
}

template <typename T>
py::array forward(const py::array& x, const py::array& w, const py::object& b, const Conv2dParams& p,
                  const py::object& out, const ConvPack* pack = nullptr) {
  const T* xp = shim::in_ptr<T>(x, "conv2d", "input");
  const T* wp = shim::in_ptr<T>(w, "conv2d", "weight");
  const T* bp = shim::opt_ptr<T>(b, "conv2d", "bias");
  auto y = shim::output<T>(out, {p.N, p.OC, p.OH, p.OW}, "conv2d", "conv2d output");
  T* yp = shim::out_ptr(y);
  {
    py::gil_scoped_release nogil;
    conv2d_forward<T>(yp, xp, wp, bp, p, pack ? pack->for_call<T>(w) : nullptr);
  }
  return std::move(y);
}

template <typename T>
py::tuple backward(const py::array& dy, const py::array& x, const py::array& w, const Conv2dParams& p, bool need_dx,
                   bool need_dw, bool need_db) {
  const T* dyp = shim::in_ptr<T>(dy, "conv2d_backward", "grad_output");
  const T* xp = shim::in_ptr<T>(x, "conv2d_backward", "input");
  const T* wp = shim::in_ptr<T>(w, "conv2d_backward", "weight");
  const std::vector<int64_t> want{p.N, p.OC, p.OH, p.OW};
  if (shim::shape_of(dy) != want)
    value_error("conv2d_backward: grad_output has shape ", shape_str(shim::shape_of(dy)), ", expected ",
                shape_str(want), " (the forward output's shape)");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T *dxp = nullptr, *dwp = nullptr, *dbp = nullptr;
  if (need_dx) {
    auto a = shim::empty<T>({p.N, p.C, p.H, p.W}, "conv2d input gradient");
    dxp = shim::out_ptr(a);
    dx = a;
  }
  if (need_dw) {
    auto a = shim::empty<T>({p.OC, p.Cg(), p.KH, p.KW}, "conv2d weight gradient");
    dwp = shim::out_ptr(a);
    dw = a;
  }
  if (need_db) {
    auto a = shim::empty<T>({p.OC}, "conv2d bias gradient");
    dbp = shim::out_ptr(a);
    db = a;
  }
  {
    py::gil_scoped_release nogil;
    if (dxp) conv2d_backward_data<T>(dxp, dyp, wp, p);
    if (dwp || dbp) conv2d_backward_weight<T>(dwp, dbp, dyp, xp, p);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace

void register_conv(py::module_& m) {
  py::class_<ConvPack>(m, "ConvWeightPack",
                       "A conv2d weight's GEMM panels, packed on first use by each path and kept: made from a "
                       "read-only (OC, C/groups, kH, kW) float32/float64 array, used by conv2d_fast for that same "
                       "array while it stays read-only.")
      .def(py::init([](const py::array& w, int64_t groups) {
             const char* op = "ConvWeightPack";
             if (w.ndim() != 4)
               value_error(op, ": weight must be 4-D (OC, C/groups, kH, kW), got shape ",
                           shape_str(shim::shape_of(w)));
             if (groups < 1) value_error(op, ": groups must be positive, got ", groups);
             if (w.shape(0) % groups != 0)
               value_error(op, ": weight has ", int64_t(w.shape(0)), " output channels, not divisible by groups (",
                           groups, ")");
             if (w.writeable())
               value_error(op, ": the weight array must be read-only (the pack is only valid while it cannot "
                               "change)");
             auto pk = std::make_unique<ConvPack>();
             pk->weight = w;
             pk->groups = groups;
             const int64_t M = int64_t(w.shape(0)) / groups, K = int64_t(w.shape(1) * w.shape(2) * w.shape(3));
             if (shim::dtype_of(w, op, "weight") == shim::DType::f32)
               pk->f32 = std::make_unique<ConvWeightPack<float>>(shim::in_ptr<float>(w, op, "weight"), groups, M, K);
             else
               pk->f64 =
                   std::make_unique<ConvWeightPack<double>>(shim::in_ptr<double>(w, op, "weight"), groups, M, K);
             return pk;
           }),
           py::arg("weight"), py::arg("groups") = 1)
      .def_property_readonly("weight", [](const ConvPack& pk) { return pk.weight; })
      .def_property_readonly("groups", [](const ConvPack& pk) { return pk.groups; })
      .def_property_readonly(
          "entries", [](const ConvPack& pk) { return pk.f32 ? pk.f32->entries() : pk.f64->entries(); },
          "packed layouts built so far (one per path / ISA used)")
      .def_property_readonly(
          "nbytes", [](const ConvPack& pk) { return pk.f32 ? pk.f32->bytes() : pk.f64->bytes(); },
          "bytes of the packed layouts built so far");
  m.def(
      "set_conv_algorithm",
      [](const std::string& name) {
        if (name == "auto")
          set_conv2d_algorithm(ConvAlgorithm::automatic);
        else if (name == "im2col")
          set_conv2d_algorithm(ConvAlgorithm::im2col);
        else if (name == "direct")
          set_conv2d_algorithm(ConvAlgorithm::direct);
        else if (name == "winograd")
          set_conv2d_algorithm(ConvAlgorithm::winograd);
        else
          value_error("set_conv_algorithm: expected 'auto', 'im2col', 'direct' or 'winograd', got '", name, "'");
      },
      py::arg("name"),
      "Force the implicit-im2col GEMM path for every dense conv ('im2col'), never use Winograd ('direct'), use "
      "Winograd wherever it applies, 5x5 kernels included ('winograd'), or restore 'auto'.");
  m.def("get_conv_algorithm", []() {
    switch (conv2d_algorithm()) {
      case ConvAlgorithm::im2col: return std::string("im2col");
      case ConvAlgorithm::direct: return std::string("direct");
      case ConvAlgorithm::winograd: return std::string("winograd");
      default: return std::string("auto");
    }
  });
  // conv2d for the common case (see shim.h: fast paths), optionally with a
  // weight's kept panels; None when the general path must handle the call
  auto fast = [](py::handle x, py::handle w, py::handle b, py::handle stride, py::handle padding,
                 py::handle dilation, py::handle groups, py::handle out, const ConvPack* pack) -> py::object {
    const int dt = shim::fast_dtype(x);
    if (dt < 0 || shim::fast_dtype(w) != dt || shim::fast_ndim(x) != 4 || shim::fast_ndim(w) != 4)
      return py::none();
    if (!b.is_none() && (shim::fast_dtype(b) != dt || shim::fast_ndim(b) != 1)) return py::none();
    Pair s{}, pd{}, d{};
    int64_t g = 0;
    if (!shim::fast_pair(stride, 1, s) || !shim::fast_pair(padding, 0, pd) || !shim::fast_pair(dilation, 1, d) ||
        !shim::fast_int(groups.ptr(), g) || g < 1)
      return py::none();
    const Conv2dParams p = make_conv2d_params(shim::fast_shape(x), shim::fast_shape(w),
                                              b.is_none() ? -1 : shim::fast_shape(b)[0], s[0], s[1], pd[0], pd[0],
                                              pd[1], pd[1], d[0], d[1], g);
    if (!shim::fast_out(out, dt, {p.N, p.OC, p.OH, p.OW}, {x, w, b})) return py::none();
    const py::array xa = py::reinterpret_borrow<py::array>(x), wa = py::reinterpret_borrow<py::array>(w);
    const py::object bo = py::reinterpret_borrow<py::object>(b), oo = py::reinterpret_borrow<py::object>(out);
    if (dt == 0) return forward<float>(xa, wa, bo, p, oo, pack);
    return forward<double>(xa, wa, bo, p, oo, pack);
  };
  // (separate entry points: defaulted out and pack arguments would cost every
  // call pybind11's keyword handling)
  m.def(
      "conv2d_fast",
      [fast](py::handle x, py::handle w, py::handle b, py::handle stride, py::handle padding, py::handle dilation,
             py::handle groups) { return fast(x, w, b, stride, padding, dilation, groups, py::none(), nullptr); },
      "conv2d for the common case (see shim.h: fast paths); None when the general path must handle the call.");
  m.def(
      "conv2d_fast_out",
      [fast](py::handle x, py::handle w, py::handle b, py::handle stride, py::handle padding, py::handle dilation,
             py::handle groups, py::handle out) {
        return fast(x, w, b, stride, padding, dilation, groups, out, nullptr);
      },
      "conv2d_fast into `out` (C-contiguous, writeable, the result's shape and dtype, not overlapping an input); "
      "None when the general path must handle the call.");
  m.def(
      "conv2d_fast_packed",
      [fast](py::handle x, py::handle w, py::handle b, py::handle stride, py::handle padding, py::handle dilation,
             py::handle groups, const ConvPack* pack) {
        return fast(x, w, b, stride, padding, dilation, groups, py::none(), pack);
      },
      "conv2d_fast with a ConvWeightPack of the weight array (ignored for any other array).");
  m.def(
      "conv2d_check",
      [](const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, int64_t bias_len, Pair stride, Quad pad,
         Pair dil, int64_t groups) -> py::tuple {
        const Conv2dParams p = make_conv2d_params(xs, ws, bias_len, stride[0], stride[1], pad[0], pad[1], pad[2],
                                                  pad[3], dil[0], dil[1], groups);
        return py::make_tuple(p.N, p.OC, p.OH, p.OW);
      },
      py::arg("input_shape"), py::arg("weight_shape"), py::arg("bias_len"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"),
      "Validate conv2d shapes and options (bias_len -1: no bias) without touching any data; returns the output "
      "shape.");
  m.def(
      "conv2d_forward",
      [](const py::array& x, const py::array& w, const py::object& b, Pair stride, Quad pad, Pair dil,
         int64_t groups, const py::object& out) -> py::array {
        const Conv2dParams p = params(x, w, b, stride, pad, dil, groups);
        if (shim::dtype_of(x, "conv2d", "input") == shim::DType::f32) return forward<float>(x, w, b, p, out);
        return forward<double>(x, w, b, p, out);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("groups"), py::arg("out") = py::none(),
      "y = conv2d(x, weight, bias); padding = (top, bottom, left, right). Arrays: C-contiguous, same dtype.");
  m.def(
      "conv2d_backward",
      [](const py::array& dy, const py::array& x, const py::array& w, Pair stride, Quad pad, Pair dil, int64_t groups,
         bool need_dx, bool need_dw, bool need_db) -> py::tuple {
        const Conv2dParams p = params(x, w, py::none(), stride, pad, dil, groups);
        if (shim::dtype_of(x, "conv2d_backward", "input") == shim::DType::f32)
          return backward<float>(dy, x, w, p, need_dx, need_dw, need_db);
        return backward<double>(dy, x, w, p, need_dx, need_dw, need_db);
      },
      py::arg("grad_output"), py::arg("x"), py::arg("weight"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), py::arg("need_input") = true, py::arg("need_weight") = true,
      py::arg("need_bias") = true,
      "(dx, dw, db) of conv2d; gradients not asked for are None and not computed.");
}

}  // namespace fastconv
