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

// Run body(task, thread) for task in [0, ntasks) on `nthreads` threads (dynamic
// schedule, in chunks when tasks are many: tasks may differ in cost). Every task writes disjoint outputs, so
// results do not depend on which thread ran what.
template <class F>
void parallel_for(int64_t ntasks, int nthreads, F&& body) {
  if (ntasks <= 0) return;
  if (nthreads <= 1 || ntasks == 1) {
    for (int64_t t = 0; t < ntasks; ++t) body(t, 0);
    return;
  }
#ifdef _OPENMP
  note_pool_started();
  // many small tasks (e.g. one per image plane) are handed out in chunks, so
  // threads do not contend on the schedule's counter for every tiny task
  const int64_t chunk = std::max<int64_t>(1, ntasks / (int64_t(nthreads) * 16));
#pragma omp parallel for schedule(dynamic, chunk) num_threads(nthreads)
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
