#include "common/buffer.h"

#include <pthread.h>

#include <mutex>
#include <new>

namespace fastconv {

namespace {

// smaller blocks: plain aligned_alloc / free. Under AddressSanitizer nothing is
// cached, so every buffer is its own allocation and an overrun past its size
// (or a use after its release) is still caught.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kMinCached = ~size_t(0);
#else
constexpr size_t kMinCached = size_t(128) << 10;
#endif
constexpr size_t kMaxCachedTotal = size_t(128) << 20;
constexpr int kMaxBlocks = 16;

struct Block {
  void* p;
  size_t cap;
};

// Blocks given back and not yet reused, oldest first. Guarded by mu.
struct Cache {
  std::mutex mu;
  Block blocks[kMaxBlocks];
  int count = 0;
  size_t total = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: Buffers may outlive static destruction order
  return *c;
}

// A forked child gets a copy of the cache whose mutex another thread of the
// parent may have held: it starts over with a fresh mutex and no blocks (the
// copies are left alone; they are the parent's pages).
void on_fork_child() {
  Cache& c = cache();
  new (&c.mu) std::mutex;
  c.count = 0;
  c.total = 0;
}

struct ForkHandler {
  ForkHandler() { pthread_atfork(nullptr, nullptr, on_fork_child); }
};
const ForkHandler g_fork_handler;

}  // namespace

void* scratch_acquire(size_t bytes, size_t* cap) {
  if (bytes >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    // the smallest cached block that fits without wasting more than its request
    int best = -1;
    for (int i = 0; i < c.count; ++i)
      if (c.blocks[i].cap >= bytes && c.blocks[i].cap <= 2 * bytes &&
          (best < 0 || c.blocks[i].cap < c.blocks[best].cap))
        best = i;
    if (best >= 0) {
      const Block b = c.blocks[best];
      for (int i = best; i + 1 < c.count; ++i) c.blocks[i] = c.blocks[i + 1];
      --c.count;
      c.total -= b.cap;
      *cap = b.cap;
      return b.p;
    }
  }
  *cap = bytes;
  return std::aligned_alloc(64, bytes);
}

void scratch_release(void* p, size_t cap) {
  if (cap < kMinCached || cap > kMaxCachedTotal) {
    std::free(p);
    return;
  }
  Cache& c = cache();
  void* evict[kMaxBlocks + 1];
  int nevict = 0;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    // make room: the oldest blocks go first
    while (c.count > 0 && (c.count == kMaxBlocks || c.total + cap > kMaxCachedTotal)) {
      evict[nevict++] = c.blocks[0].p;
      c.total -= c.blocks[0].cap;
      for (int i = 0; i + 1 < c.count; ++i) c.blocks[i] = c.blocks[i + 1];
      --c.count;
    }
    c.blocks[c.count++] = Block{p, cap};
    c.total += cap;
  }
  for (int i = 0; i < nevict; ++i) std::free(evict[i]);
}

void scratch_cache_stats(int64_t* blocks, int64_t* bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  *blocks = c.count;
  *bytes = int64_t(c.total);
}

void scratch_clear() {
  Cache& c = cache();
  Block taken[kMaxBlocks];
  int n = 0;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    for (int i = 0; i < c.count; ++i) taken[n++] = c.blocks[i];
    c.count = 0;
    c.total = 0;
  }
  for (int i = 0; i < n; ++i) std::free(taken[i].p);
}

size_t scratch_min_cached() { return kMinCached == ~size_t(0) ? 0 : kMinCached; }

}  // namespace fastconv
