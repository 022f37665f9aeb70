// 64-byte aligned scratch owned by one call (never static: kernels run
// concurrently once the GIL is released).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/check.h"

namespace fastconv {

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(int64_t count, const char* what = "scratch buffer") { reset(count, what); }
  ~Buffer() { std::free(ptr_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) { o.ptr_ = nullptr; o.size_ = 0; }

  void reset(int64_t count, const char* what = "scratch buffer") {
    std::free(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    if (count <= 0) return;
    size_t bytes = checked_bytes(count, sizeof(T), what);
    bytes = (bytes + 63) & ~size_t(63);
    void* p = std::aligned_alloc(64, bytes);
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
  T* ptr_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace fastconv
