#include "common/parallel.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace fastconv {

namespace {
int parse_positive(const char* s) {
  if (!s || !*s) return 0;
  // OMP_NUM_THREADS may be a list ("4,2"): the first entry is the outer level.
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || v <= 0 || v > 4096) return 0;
  return static_cast<int>(v);
}

std::atomic<int>& setting() {
  static std::atomic<int> n{default_num_threads()};
  return n;
}
}  // namespace

int default_num_threads() {
  if (int n = parse_positive(std::getenv("OMP_NUM_THREADS"))) return n;
#ifdef _OPENMP
  int procs = omp_get_num_procs();
#else
  int procs = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return procs > 0 ? procs : 1;
}

int num_threads() { return setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) { setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

bool have_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace fastconv
