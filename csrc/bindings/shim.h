// Helpers for the binding shims: the only headers that include pybind11.
//
// A shim receives arrays the Python layer already made C-contiguous in the
// right dtype, builds the op's params struct (ValueError / SizeError with
// names and shapes), allocates outputs while holding the GIL, releases the
// GIL around the compute, and returns. No maths here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "common/buffer.h"
#include "common/check.h"

namespace fastconv {
namespace shim {

namespace py = pybind11;

inline std::vector<int64_t> shape_of(const py::array& a) {
  std::vector<int64_t> s(size_t(a.ndim()));
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s[size_t(i)] = int64_t(a.shape(i));
  return s;
}

enum class DType { f32, f64 };

// The dtype a kernel runs in, from the first (data) argument.
inline DType dtype_of(const py::array& a, const char* op, const char* name) {
  // equal(), not identity: unpickled arrays carry equivalent, distinct dtype objects
  if (a.dtype().equal(py::dtype::of<float>())) return DType::f32;
  if (a.dtype().equal(py::dtype::of<double>())) return DType::f64;
  throw py::type_error(cat(op, ": ", name, " must be float32 or float64 here, got ", std::string(py::str(a.dtype()))));
}

// Every array a kernel reads: the agreed dtype, C-contiguous, aligned.
template <typename T>
const T* in_ptr(const py::array& a, const char* op, const char* name) {
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(cat(op, ": ", name, " has dtype ", std::string(py::str(a.dtype())), ", expected ",
                             std::string(py::str(py::dtype::of<T>()))));
  if (!(a.flags() & py::array::c_style) || reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::type_error(cat(op, ": ", name, " must be a C-contiguous, aligned array"));
  return static_cast<const T*>(a.data());
}

// Optional input: None -> nullptr.
template <typename T>
const T* opt_ptr(const py::object& o, const char* op, const char* name) {
  if (o.is_none()) return nullptr;
  return in_ptr<T>(o.cast<py::array>(), op, name);
}

// A fresh C-contiguous output; size checked before numpy allocates.
template <typename T>
py::array_t<T> empty(const std::vector<int64_t>& shape, const char* what) {
  const size_t bytes = checked_bytes(checked_numel(shape, what), sizeof(T), what);
  // An empty result (a zero dimension) may still have huge other dimensions,
  // whose strides must fit in 64 bits as well: check the product with zeros as 1.
  std::vector<int64_t> extent(shape);
  for (int64_t& d : extent) d = std::max<int64_t>(d, 1);
  checked_bytes(checked_numel(extent, what), sizeof(T), what);
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  const size_t min_cached = scratch_min_cached();
  if (min_cached == 0 || bytes < min_cached) return py::array_t<T>(s);
  // A large result in a block of the scratch cache, given back to it when the
  // array is freed (a capsule is its base): repeated calls -- each layer of a
  // model, every inference -- reuse warm pages instead of faulting in fresh
  // ones from the kernel.
  struct Owned {
    void* p;
    size_t cap;
  };
  size_t cap = 0;
  void* p = scratch_acquire((bytes + 63) & ~size_t(63), &cap);
  if (!p) throw std::bad_alloc();
  Owned* o = nullptr;
  try {
    o = new Owned{p, cap};
  } catch (...) {
    scratch_release(p, cap);
    throw;
  }
  py::capsule owner(o, [](void* q) {
    Owned* b = static_cast<Owned*>(q);
    scratch_release(b->p, b->cap);
    delete b;
  });
  return py::array_t<T>(s, static_cast<T*>(p), owner);
}

template <typename T>
T* out_ptr(py::array_t<T>& a) {
  return a.mutable_data();
}

// --- fast paths --------------------------------------------------------------
// The functional ops try a C++ entry point first that accepts only the common
// case (exact ndarrays, same float dtype, C-contiguous, aligned, native byte
// order; options as plain ints or 2-tuples of ints). Anything else makes it
// return None and the Python layer's general handling (conversions, copies,
// error messages for bad options) takes over. Shape errors raised here are the
// same ValueErrors the general path raises (same params builders).

// 0: float32, 1: float64, -1: not eligible.
inline int fast_dtype(py::handle h) {
  PyObject* o = h.ptr();
  if (Py_TYPE(o) != py::detail::npy_api::get().PyArray_Type_) return -1;
  const auto* a = py::detail::array_proxy(o);
  constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((a->flags & need) != need) return -1;
  const auto* d = py::detail::array_descriptor_proxy(a->descr);
  if (d->byteorder == '>') return -1;
  if (d->kind != 'f') return -1;
  if (d->type_num == 11) return 0;  // NPY_FLOAT
  if (d->type_num == 12) return 1;  // NPY_DOUBLE
  return -1;
}

inline int fast_ndim(py::handle h) { return py::detail::array_proxy(h.ptr())->nd; }

inline bool fast_int(PyObject* o, int64_t& v) {
  if (!PyLong_CheckExact(o)) return false;  // bool and int subclasses take the general path
  int overflow = 0;
  const long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
  if (overflow || x < -(int64_t(1) << 62) || x > (int64_t(1) << 62)) {
    PyErr_Clear();
    return false;
  }
  v = x;
  return true;
}

// An int (both entries) or a tuple of two ints, each >= lo.
inline bool fast_pair(py::handle h, int64_t lo, std::array<int64_t, 2>& out) {
  PyObject* o = h.ptr();
  if (fast_int(o, out[0])) {
    out[1] = out[0];
  } else if (PyTuple_CheckExact(o) && PyTuple_GET_SIZE(o) == 2) {
    if (!fast_int(PyTuple_GET_ITEM(o, 0), out[0]) || !fast_int(PyTuple_GET_ITEM(o, 1), out[1])) return false;
  } else {
    return false;
  }
  return out[0] >= lo && out[1] >= lo;
}

inline std::vector<int64_t> fast_shape(py::handle h) {
  const auto* a = py::detail::array_proxy(h.ptr());
  return std::vector<int64_t>(a->dimensions, a->dimensions + a->nd);
}

// The caller's `out` for a fast path: None (a fresh result), or an ndarray the
// result can go into as it is -- fast_dtype dt, writeable, exactly `shape`, and
// sharing no memory bounds with any of `inputs` (None entries skipped; the
// bounds test is np.may_share_memory's default). Anything else is false: the
// general path takes the call and its messages name what is wrong.
inline bool fast_out(py::handle out, int dt, const std::vector<int64_t>& shape,
                     std::initializer_list<py::handle> inputs) {
  if (out.is_none()) return true;
  if (fast_dtype(out) != dt) return false;
  const auto* a = py::detail::array_proxy(out.ptr());
  if (!(a->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_)) return false;
  if (a->nd != int(shape.size()) || !std::equal(shape.begin(), shape.end(), a->dimensions)) return false;
  // [lo, hi) of a C-contiguous array (fast_dtype: every input here is one, of dtype dt)
  auto bounds = [dt](const py::detail::PyArray_Proxy* p, uintptr_t& lo, uintptr_t& hi) {
    uintptr_t bytes = dt == 0 ? sizeof(float) : sizeof(double);
    for (int i = 0; i < p->nd; ++i) bytes *= uintptr_t(p->dimensions[i]);
    lo = reinterpret_cast<uintptr_t>(p->data);
    hi = lo + bytes;
  };
  uintptr_t olo, ohi;
  bounds(a, olo, ohi);
  for (py::handle in : inputs) {
    if (in.is_none()) continue;
    uintptr_t lo, hi;
    bounds(py::detail::array_proxy(in.ptr()), lo, hi);
    if (lo < ohi && olo < hi) return false;
  }
  return true;
}

// The output array: a fresh one, or the caller's `out` after checking that it
// is exactly what the kernel would allocate (dtype, shape, C-contiguous,
// writeable). Overlap with the inputs is checked by the Python layer.
template <typename T>
py::array_t<T> output(const py::object& out, const std::vector<int64_t>& shape, const char* op, const char* what) {
  if (out.is_none()) return empty<T>(shape, what);
  if (fast_out(out, std::is_same_v<T, float> ? 0 : 1, shape, {}))  // already what the kernel needs
    return py::reinterpret_borrow<py::array_t<T>>(out);
  if (!py::isinstance<py::array>(out))
    throw py::type_error(cat(op, ": out must be a numpy array, got ", std::string(py::str(out.get_type()))));
  py::array a = out.cast<py::array>();
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(cat(op, ": out has dtype ", std::string(py::str(a.dtype())), ", expected ",
                             std::string(py::str(py::dtype::of<T>()))));
  if (shape_of(a) != shape)
    value_error(op, ": out has shape ", shape_str(shape_of(a)), ", expected ", shape_str(shape));
  if (!(a.flags() & py::array::c_style) || !a.writeable())
    value_error(op, ": out must be a C-contiguous, writeable array");
  return py::array_t<T>::ensure(a);
}

// Length of an optional 1-D array (-1 for None); a wrong rank is a ValueError.
inline int64_t opt_len(const py::object& o, const char* op, const char* name) {
  if (o.is_none()) return -1;
  py::array a = o.cast<py::array>();
  if (a.ndim() != 1) value_error(op, ": ", name, " must be 1-D, got shape ", shape_str(shape_of(a)));
  return int64_t(a.shape(0));
}

}  // namespace shim

void register_runtime(pybind11::module_& m);
void register_conv(pybind11::module_& m);
void register_linear(pybind11::module_& m);
void register_pool(pybind11::module_& m);

}  // namespace fastconv
