// Kernel bodies shared by the per-ISA micro-kernel files, written once over a
// vector type V and its operations (passed as lambdas).
//
// Include this file INSIDE the anonymous namespace of an ISA file
// (ukernel_avx2.cpp, ukernel_avx512.cpp): each inclusion then has internal
// linkage and is compiled with that file's target flags, so the linker can
// never hand one ISA's instantiation to another's caller. It includes nothing
// itself; the including file provides <cstdint> and the intrinsics.

// 4x3 inner products, 12 vector accumulators: out[i*3 + j] = sum_l a[i][l] * b[j][l].
// Lane l accumulates elements l (mod width) in order; then hsum (a fixed tree);
// then the scalar tail: the order depends on len alone.
template <typename T, typename V, class Load, class Fma, class Hsum>
inline void dot4x3_body(int64_t len, const T* const* a, const T* const* b, T* out, int width, Load load, Fma fma,
                        Hsum hsum, V zero) {
  V c00 = zero, c01 = zero, c02 = zero, c10 = zero, c11 = zero, c12 = zero;
  V c20 = zero, c21 = zero, c22 = zero, c30 = zero, c31 = zero, c32 = zero;
  const T *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *b0 = b[0], *b1 = b[1], *b2 = b[2];
  int64_t i = 0;
  for (; i + width <= len; i += width) {
    const V x0 = load(b0 + i), x1 = load(b1 + i), x2 = load(b2 + i);
    V d = load(a0 + i);
    c00 = fma(d, x0, c00); c01 = fma(d, x1, c01); c02 = fma(d, x2, c02);
    d = load(a1 + i);
    c10 = fma(d, x0, c10); c11 = fma(d, x1, c11); c12 = fma(d, x2, c12);
    d = load(a2 + i);
    c20 = fma(d, x0, c20); c21 = fma(d, x1, c21); c22 = fma(d, x2, c22);
    d = load(a3 + i);
    c30 = fma(d, x0, c30); c31 = fma(d, x1, c31); c32 = fma(d, x2, c32);
  }
  const V acc[12] = {c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32};
  for (int t = 0; t < 12; ++t) {
    T tail = 0;
    for (int64_t q = i; q < len; ++q) tail += a[t / 3][q] * b[t % 3][q];
    out[t] = hsum(acc[t]) + tail;
  }
}

// y[j] = sum_l w[j][l] * x[l] for R rows at once (R = 4, then 1 for the last
// rows). Four rows per pass share each load of x and give the memory system
// four streams: one row at a time ran about 1.4x slower on rows that are not
// 64-byte aligned, as NumPy's large arrays are (16 bytes off). A row sums in
// the same order in either pass: chunks of 2*width into two accumulators (first
// and second half), a last single chunk into the first, the masked tail into the
// second, then hsum(first + second).
template <int R, typename T, typename V, class Ops, class TailLoad, class Hsum>
__attribute__((always_inline)) inline void gemv_rows(int64_t k, const T* __restrict w, int64_t ldw,
                                                     const T* __restrict x, T* __restrict y, int64_t width,
                                                     TailLoad tail_load, Hsum hsum) {
  const int64_t k1 = k - k % width, k2 = k - k % (2 * width);
  V a[R], b[R];
  const T* r[R];
#pragma GCC unroll 4
  for (int q = 0; q < R; ++q) {
    a[q] = b[q] = Ops::zero();
    r[q] = w + q * ldw;
  }
  for (int64_t kk = 0; kk < k2; kk += 2 * width) {
    const V x0 = Ops::load(x + kk), x1 = Ops::load(x + kk + width);
#pragma GCC unroll 4
    for (int q = 0; q < R; ++q) {
      a[q] = Ops::fma(Ops::load(r[q] + kk), x0, a[q]);
      b[q] = Ops::fma(Ops::load(r[q] + kk + width), x1, b[q]);
    }
  }
  if (k2 < k1) {
    const V x0 = Ops::load(x + k2);
#pragma GCC unroll 4
    for (int q = 0; q < R; ++q) a[q] = Ops::fma(Ops::load(r[q] + k2), x0, a[q]);
  }
  if (k1 < k) {
    const V xt = tail_load(x + k1);
#pragma GCC unroll 4
    for (int q = 0; q < R; ++q) b[q] = Ops::fma(tail_load(r[q] + k1), xt, b[q]);
  }
#pragma GCC unroll 4
  for (int q = 0; q < R; ++q) y[q] = hsum(Ops::add(a[q], b[q]));
}

template <typename T, typename V, class Ops, class TailLoad, class Hsum>
inline void gemv_body(int64_t n, int64_t k, const T* w, int64_t ldw, const T* x, T* y, int64_t width,
                      TailLoad tail_load, Hsum hsum) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) gemv_rows<4, T, V, Ops>(k, w + j * ldw, ldw, x, y + j, width, tail_load, hsum);
  for (; j < n; ++j) gemv_rows<1, T, V, Ops>(k, w + j * ldw, ldw, x, y + j, width, tail_load, hsum);
}

// Rows of a packed panel from runs (copy_runs in ukernel.h): each run is at
// most two vectors of `width` lanes, moved by move(d, s, half) under that
// half's mask (the ISA's masked load and store); the second only when the run
// is longer than one vector.
template <typename T, class Move>
inline void copy_runs_body(int64_t kb, const T* src, const int64_t* offs, T* dst, int64_t ldd, int64_t width,
                           bool two, Move move) {
  for (int64_t k = 0; k < kb; ++k) {
    const T* s = src + offs[k];
    T* d = dst + k * ldd;
    move(d, s, 0);
    if (two) move(d + width, s + width, 1);
  }
}

// MR x (NV*L) tile whose A element (r, k) is ar[r][at(k)], B a packed panel of
// NV*L columns: NV*MR vector accumulators, one broadcast per row per k. Uses:
//   rows of a matrix read in place (linear's weight): ar[r] = a + r*lda, at(k) = k;
//   gathered conv positions: ar[r] = position r's window origin, at(k) = offs[k].
template <typename T, typename V, int MR, int L, int NV, class At, class Load, class Set1, class Fma, class Add,
          class Store>
__attribute__((always_inline)) inline void gemm_arows_body(int64_t kc, const T* const* a, At at,
                                                           const T* __restrict b, T* __restrict c, int64_t ldc,
                                                           bool accumulate, Load load, Set1 set1, Fma fma, Add add,
                                                           Store store, V zero) {
  static_assert(NV == 1 || NV == 2, "one or two vectors per row");
  V acc[NV][MR];
  const T* ar[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[v][r] = zero;
    ar[r] = a[r];
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t o = at(k);
    V bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = load(b + v * L);
    b += NV * L;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V ai = set1(ar[r][o]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[v][r] = fma(ai, bv[v], acc[v][r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    T* p = c + r * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) store(p + v * L, accumulate ? add(load(p + v * L), acc[v][r]) : acc[v][r]);
  }
}

// The two uses, over one ISA's vector operations (Ops: load, set1, fma, add,
// store, zero as static members).
template <typename T, typename V, int MR, int L, class Ops>
inline void gemm_rows_kernel(int64_t kc, const T* a, int64_t lda, const T* b, T* c, int64_t ldc, bool acc) {
  const T* ar[MR];
  for (int r = 0; r < MR; ++r) ar[r] = a + r * lda;
  gemm_arows_body<T, V, MR, L, 2>(kc, ar, [](int64_t k) { return k; }, b, c, ldc, acc, Ops::load, Ops::set1, Ops::fma,
                               Ops::add, Ops::store, Ops::zero());
}
template <typename T, typename V, int MR, int L, class Ops, int NV = 2>
inline void gemm_gather_kernel(int64_t kc, const T* const* a, const int64_t* offs, const T* b, T* c, int64_t ldc,
                               bool acc) {
  gemm_arows_body<T, V, MR, L, NV>(kc, a, [offs](int64_t k) { return offs[k]; }, b, c, ldc, acc, Ops::load, Ops::set1,
                               Ops::fma, Ops::add, Ops::store, Ops::zero());
}

// FMA throughput probe: N independent accumulators of LANES floats (N must cover
// FMA latency x pipes and, with the 2 constants, fit the register file so nothing
// spills). Returns the flops done. Unsanitized: instrumentation would measure itself.
template <int N, int LANES, typename V, class Set1, class Fma, class Add, class Store>
__attribute__((no_sanitize("address", "undefined"))) inline double fma_probe_body(int64_t iters, float* sink,
                                                                                  Set1 set1, Fma fma, Add add,
                                                                                  Store store) {
  V acc[N];
  for (int i = 0; i < N; ++i) acc[i] = set1(1.0f + 1e-7f * i);
  const V m = set1(0.999999f), a = set1(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < N; ++i) acc[i] = fma(acc[i], m, a);
  }
  V t = acc[0];
  for (int i = 1; i < N; ++i) t = add(t, acc[i]);
  alignas(64) float out[LANES];
  store(out, t);
  *sink = out[0];
  return double(iters) * N * LANES * 2;
}
