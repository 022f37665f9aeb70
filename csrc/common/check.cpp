#include <unistd.h>

#include "common/check.h"

#include <limits>

namespace fastconv {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) os << ", ";
    os << shape[i];
  }
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

std::string shape_str(std::initializer_list<int64_t> shape) {
  return shape_str(std::vector<int64_t>(shape));
}

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw SizeError(cat(what, ": size ", a, " * ", b, " overflows a 64-bit integer"));
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw SizeError(cat(what, ": size ", a, " + ", b, " overflows a 64-bit integer"));
  return r;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const char* what) {
  int64_t n = 1;
  for (int64_t d : shape) n = checked_mul(n, d, what);
  return n;
}

namespace {
// Physical memory of this machine (0 if unknown): one array larger than that
// cannot be filled, so it is refused up front rather than left to the OOM killer.
int64_t physical_memory() {
  static const int64_t bytes = [] {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && pages < std::numeric_limits<int64_t>::max() / page) return int64_t(pages) * page;
#endif
    return int64_t(0);
  }();
  return bytes;
}
}  // namespace

size_t checked_bytes(int64_t count, size_t elem, const char* what) {
  const int64_t limit = std::numeric_limits<int64_t>::max() / 2;  // PTRDIFF_MAX with headroom
  int64_t bytes = checked_mul(count, static_cast<int64_t>(elem), what);
  if (bytes > limit)
    throw SizeError(cat(what, ": ", count, " elements need ", bytes, " bytes, more than can be addressed"));
  const int64_t phys = physical_memory();
  if (phys > 0 && bytes > phys)
    throw SizeError(cat(what, ": ", count, " elements need ", bytes, " bytes, more than this machine's memory (",
                        phys, " bytes)"));
  return static_cast<size_t>(bytes);
}

}  // namespace fastconv
