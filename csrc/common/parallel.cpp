#include "common/parallel.h"

#include <pthread.h>

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

std::atomic<bool> g_pool_started{false};
std::atomic<bool> g_forked_serial{false};

void on_fork_child() {
  if (g_pool_started.load(std::memory_order_relaxed)) g_forked_serial.store(true, std::memory_order_relaxed);
}

struct ForkHandler {
  ForkHandler() { pthread_atfork(nullptr, nullptr, on_fork_child); }
};
const ForkHandler g_fork_handler;
}  // namespace

bool forked_serial() { return g_forked_serial.load(std::memory_order_relaxed); }

void note_pool_started() {
  if (!g_pool_started.load(std::memory_order_relaxed)) g_pool_started.store(true, std::memory_order_relaxed);
}

int default_num_threads() {
  if (int n = parse_positive(std::getenv("OMP_NUM_THREADS"))) return n;
#ifdef _OPENMP
  int procs = omp_get_num_procs();
#else
  int procs = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return procs > 0 ? procs : 1;
}

int num_threads() { return forked_serial() ? 1 : setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) { setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

bool have_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace fastconv
