// Errors and overflow-checked size arithmetic shared by every op.
//
// ValueError   -> Python ValueError   (bad shapes, sizes or option values)
// SizeError    -> Python MemoryError  (a result too large to represent or allocate)
// The binding layer registers the translations; csrc/ops never sees Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastconv {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct SizeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Concatenate anything streamable into a message.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// "(2, 3, 4)" -- the shape notation used in every message.
std::string shape_str(const std::vector<int64_t>& shape);
std::string shape_str(std::initializer_list<int64_t> shape);

template <typename... Args>
[[noreturn]] void value_error(const Args&... args) {
  throw ValueError(cat(args...));
}

// a * b, throwing SizeError (naming `what`) if the product leaves int64 or is negative.
int64_t checked_mul(int64_t a, int64_t b, const char* what);
int64_t checked_add(int64_t a, int64_t b, const char* what);
// Product of all dims, checked.
int64_t checked_numel(const std::vector<int64_t>& shape, const char* what);
// Bytes for `count` elements of `elem` bytes, checked against the address space.
size_t checked_bytes(int64_t count, size_t elem, const char* what);

}  // namespace fastconv
