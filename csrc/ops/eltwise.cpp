#include "ops/eltwise.h"

#include <algorithm>

#include "common/parallel.h"

namespace fastconv {

template <typename T>
void relu_forward(T* y, const T* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 15;  // elements per task: large enough to stream, small enough to share
  const int64_t tasks = (n + kChunk - 1) / kChunk;
  // memory-bound: a second thread only pays off for arrays well past the L2 size
  const int nt = n >= (int64_t(1) << 20) ? num_threads() : 1;
  parallel_for(tasks, int(std::min<int64_t>(nt, tasks)), [&](int64_t t, int) {
    const int64_t i0 = t * kChunk, i1 = std::min(n, i0 + kChunk);
    for (int64_t i = i0; i < i1; ++i) {
      const T v = x[i];
      y[i] = v < T(0) ? T(0) : v;
    }
  });
}

template void relu_forward<float>(float*, const float*, int64_t);
template void relu_forward<double>(double*, const double*, int64_t);

}  // namespace fastconv
