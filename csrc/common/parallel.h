// Thread count and the one parallel-for every op uses.
//
// The thread count is a process-wide setting (not omp_set_num_threads, which
// is per calling thread: regions started from other Python threads would not
// see it). Every region passes num_threads(...) explicitly.
//
// Bodies of parallel_for must not throw: allocate before the region.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastconv {

int num_threads();               // threads kernels use now, >= 1 (1 in a child forked after the pool started)
void set_num_threads(int n);     // n >= 1 (validated by the caller)
int default_num_threads();       // OMP_NUM_THREADS if set and valid, else the core count
bool have_openmp();
// GNU OpenMP's thread pool does not survive fork(): a child that enters a
// parallel region after its parent started the pool hangs. A fork handler
// notes that case and the child then runs every kernel on its own thread.
bool forked_serial();
void note_pool_started();

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Threads to use for `ntasks` independent tasks.
inline int threads_for(int64_t ntasks) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), ntasks)));
}

// Run body(task, thread) for task in [0, ntasks) on `nthreads` threads. Every
// task writes disjoint outputs, so results do not depend on which thread ran
// what.
//
// Static schedule: thread i runs the i-th contiguous share of the tasks, the
// same share on every call. Callers make their tasks equal in cost, and order
// them so that neighbouring tasks touch neighbouring memory (a position block
// of the output, the padded input rows it reads). A thread then writes the
// output and scratch lines it wrote in the previous call, still in its own
// cache. With a dynamic schedule the lines went back and forth between the
// cores, which costs little while the two vCPUs share a cache and much when
// they do not: these VMs have spells in which a cache line takes 350-430 ns
// between the cores instead of 75-120. Alternated in one process in such a
// spell (5 runs, 2 threads): AlexNet conv1 0.49-0.51 -> 0.42 ms, conv2
// 1.20-1.24 -> 1.12-1.15, 1x64x32x32 3x3 0.28-0.29 -> 0.24, 1x256x8x8 3x3
// 0.29 -> 0.26; outside the spells within noise.
template <class F>
void parallel_for(int64_t ntasks, int nthreads, F&& body) {
  if (ntasks <= 0) return;
  if (nthreads <= 1 || ntasks == 1) {
    for (int64_t t = 0; t < ntasks; ++t) body(t, 0);
    return;
  }
#ifdef _OPENMP
  note_pool_started();
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int64_t t = 0; t < ntasks; ++t) body(t, omp_get_thread_num());
#else
  for (int64_t t = 0; t < ntasks; ++t) body(t, 0);
#endif
}

template <class F>
void parallel_for(int64_t ntasks, F&& body) {
  parallel_for(ntasks, threads_for(ntasks), static_cast<F&&>(body));
}

// Split [0, n) into `parts` nearly equal contiguous ranges; range i is [begin, end).
inline void split_range(int64_t n, int64_t parts, int64_t i, int64_t& begin, int64_t& end) {
  const int64_t q = n / parts, r = n % parts;
  begin = i * q + std::min(i, r);
  end = begin + q + (i < r ? 1 : 0);
}

}  // namespace fastconv
