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

#include <cstdint>
#include <string>
#include <vector>

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
  checked_bytes(checked_numel(shape, what), sizeof(T), what);
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  return py::array_t<T>(s);
}

// The output array: a fresh one, or the caller's `out` after checking that it
// is exactly what the kernel would allocate (dtype, shape, C-contiguous,
// writeable). Overlap with the inputs is checked by the Python layer.
template <typename T>
py::array_t<T> output(const py::object& out, const std::vector<int64_t>& shape, const char* op, const char* what) {
  if (out.is_none()) return empty<T>(shape, what);
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

template <typename T>
T* out_ptr(py::array_t<T>& a) {
  return a.mutable_data();
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
