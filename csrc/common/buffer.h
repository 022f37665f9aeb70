// 64-byte aligned scratch owned by one call (never static: kernels run
// concurrently once the GIL is released).
//
// Large blocks (>= 128 KB) are taken from and given back to a small
// process-wide cache (scratch_acquire / scratch_release, buffer.cpp) instead of
// malloc/free: glibc hands such sizes back to the kernel on free, and every
// call then paid for page faults on fresh pages -- 14% of 32x128x16x16 3x3's
// weight gradient (two 5 MB scratch copies per call) in a perf profile. The
// ops' large NumPy results come from the same cache (shim::empty) and go back
// to it when the array is freed. Each block is owned by one user at a time;
// the cache holds at most 16 blocks, 128 MB in all.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/check.h"

namespace fastconv {

// A 64-byte aligned block of at least `bytes` (its capacity in *cap), or nullptr.
void* scratch_acquire(size_t bytes, size_t* cap);
// Give back a block from scratch_acquire (cap as returned); it may be cached.
void scratch_release(void* p, size_t cap);
// Blocks the cache holds and their bytes; scratch_clear frees them all.
void scratch_cache_stats(int64_t* blocks, int64_t* bytes);
void scratch_clear();
// Smallest block the cache keeps (0 under AddressSanitizer: none).
size_t scratch_min_cached();

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(int64_t count, const char* what = "scratch buffer") { reset(count, what); }
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_), cap_(o.cap_) {
    o.ptr_ = nullptr;
    o.size_ = 0;
    o.cap_ = 0;
  }

  void reset(int64_t count, const char* what = "scratch buffer") {
    release();
    if (count <= 0) return;
    size_t bytes = checked_bytes(count, sizeof(T), what);
    bytes = (bytes + 63) & ~size_t(63);
    void* p = scratch_acquire(bytes, &cap_);
    if (!p) throw std::bad_alloc();
    ptr_ = static_cast<T*>(p);
    size_ = count;
  }
  void zero() { if (ptr_) std::memset(ptr_, 0, sizeof(T) * size_); }

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  int64_t size() const { return size_; }
  T& operator[](int64_t i) { return ptr_[i]; }

 private:
  void release() {
    if (ptr_) scratch_release(ptr_, cap_);
    ptr_ = nullptr;
    size_ = 0;
    cap_ = 0;
  }

  T* ptr_ = nullptr;
  int64_t size_ = 0;
  size_t cap_ = 0;  // bytes of the block
};

}  // namespace fastconv
