// Weight panels packed once and kept for repeated forward calls
// (nn.Conv2d.prepack): the GEMM A operand of a convolution, the G groups'
// (OC/G) x (C/G*KH*KW) weight matrices in the panel layout of
// prepack_a_groups, per micro-kernel and slice length (the path a call takes
// picks them; another ISA, set with set_isa, gets its own entry).
//
// The pack refers to the weight's memory and does not watch it: its owner
// must keep the weight alive and unchanged while the pack exists (the Python
// layer makes the array read-only and drops the pack before it may change).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/buffer.h"
#include "common/check.h"
#include "gemm/driver.h"

namespace fastconv {

template <typename T>
class ConvWeightPack {
 public:
  ConvWeightPack(const T* w, int64_t groups, int64_t rows_per_group, int64_t k)
      : w_(w), G_(groups), M_(rows_per_group), K_(k) {}

  // Whether this pack was made from weight w of a call with these sizes.
  bool matches(const T* w, int64_t groups, int64_t rows_per_group, int64_t k) const {
    return w == w_ && groups == G_ && rows_per_group == M_ && k == K_;
  }

  // The groups' panels for kernel kr and slices of kc (groups prepacked_a_size
  // apart), packed on first use. Safe to call from concurrent forward calls;
  // the memory stays valid for the life of the pack.
  const T* panels(const GemmKernel<T>& kr, int64_t kc) {
    return layout(kr, kc, checked_mul(G_, prepacked_a_size(M_, K_, kr), "conv2d packed weight"),
                  [&](T* dst) { prepack_a_groups(dst, w_, G_, M_, K_, kr, kc); });
  }

  // Another layout of the same weight, `count` values filled by fill(dst) on
  // first use, told apart from the panels above by a negative key (the
  // Winograd path's transformed weight). Concurrency and lifetime as panels.
  template <class Fill>
  const T* custom_panels(const GemmKernel<T>& kr, int64_t key, int64_t count, Fill&& fill) {
    return layout(kr, key, count, fill);
  }

  // Packed layouts built so far, and their bytes.
  int64_t entries() {
    std::lock_guard<std::mutex> lock(mu_);
    return int64_t(entries_.size());
  }
  int64_t bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (const auto& e : entries_) n += e->data.size() * int64_t(sizeof(T));
    return n;
  }

 private:
  // The entry for (kr, key), built by fill on first use.
  template <class Fill>
  const T* layout(const GemmKernel<T>& kr, int64_t key, int64_t count, Fill&& fill) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_)
      if (e->kernel == &kr && e->kc == key) return e->data.data();
    auto e = std::make_unique<Entry>();
    e->kernel = &kr;
    e->kc = key;
    e->data.reset(count, "conv2d packed weight");
    fill(e->data.data());
    entries_.push_back(std::move(e));
    return entries_.back()->data.data();
  }

  struct Entry {
    const GemmKernel<T>* kernel;
    int64_t kc;
    Buffer<T> data;
  };
  const T* w_;
  int64_t G_, M_, K_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace fastconv
