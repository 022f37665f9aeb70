// The register micro-kernel interface and the per-ISA kernel table.
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   C[i][j] (+)= sum_k a[k*MR + i] * b[k*NR + j],  0 <= i < MR, 0 <= j < NR
//   a: MR-row panel of A, k-major (kc*MR values); b: NR-column panel of B,
//   k-major (kc*NR values); C row-major with row stride ldc, unit column stride.
// accumulate == false overwrites C; true adds to it. kc >= 1.
// Edge tiles never reach a micro-kernel with a short shape: the driver pads
// panels with zeros and lands the tile in a scratch tile instead (a short last
// row panel may go to the ISA's edge kernel, UKernelEdgeFn, which computes
// only its rows).
#pragma once

#include <cstdint>

namespace fastconv {

template <typename T>
using UKernelFn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);

// The same tile with B rows read in place: row k of the B panel is the NR
// values at b + offs[k] (contiguous, unaligned). Direct stride-1 convolution
// reads input rows this way, with no packing; a packed panel is the special
// case offs[k] = k*NR.
template <typename T>
using UKernelOffFn = void (*)(int64_t kc, const T* a, const T* b, const int64_t* offs, T* c, int64_t ldc,
                              bool accumulate);

// The same product with A read in place from the rows of a row-major matrix:
//   C[i][j] (+)= sum_k a[i*lda + k] * b[k*NR + j],  0 <= i < rows_mr, 0 <= j < NR
// (rows_mr rows, NR the kernel's packed B width). linear's forward reads its
// weight this way, so the weight is never packed: W (OUT x IN) times the
// packed X^T (IN x batch), each element of W read from memory once.
template <typename T>
using UKernelRowsFn = void (*)(int64_t kc, const T* a, int64_t lda, const T* b, T* c, int64_t ldc, bool accumulate);

// The last row panel of A when it is short (M % MR rows): only the first
// `rows` (0 < rows <= 8, rows < MR) rows of the packed MR-row panel a are computed and
// stored, so the tile can land in C itself, and the padding rows cost no
// FMAs beyond the kernel's row granularity. B as in UKernelOffFn, or (offs ==
// nullptr) a packed NR-wide panel. The sums run in the same order as the full
// kernel's. nullptr in ISAs without one.
// hi: as in UKernelOff2Fn (nr/2 for an ordinary run; ignored for a packed
// panel); hi = -q: B rows in four quarters q apart, as in UKernelOff4Fn.
template <typename T>
using UKernelEdgeFn = void (*)(int rows, int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi, T* c,
                               int64_t ldc, bool accumulate);

// Rows MR-4 .. MR-1 of the packed MR-row panel a, then rows 0..3 of the next
// panel (a + MR*kc): 8 rows, all stored; B and hi as in UKernelEdgeFn. Where
// M % MR == 4, the last MR + 4 rows run as two 8-row tiles (the edge kernel
// on the panel's first 8 rows, then this) instead of MR rows and 4: with 4
// rows the edge kernel keeps 8 accumulators, too few to cover the FMA
// latency. Sums in the full kernel's order. nullptr in ISAs without one.
template <typename T>
using UKernelEdgeSplitFn = void (*)(int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi, T* c,
                                    int64_t ldc, bool accumulate);

// Two adjacent tiles of the first `rows` (<= 6) rows of the packed MR-row
// panel a, each read as UKernelEdgeFn reads B with offs (halves hi apart): the
// first at b, the second d2 further on. Lanes [0, n1) of the first go to c,
// [0, n2) of the second to c2 (rows ldc apart; n1, n2 <= nr), with bias[r]
// added to row r when bias is not nullptr (after the sum, and after the
// accumulation into c when accumulate). Four registers per row: for M <= 6 in
// all (LeNet's 6 channels, the data gradient of a 1- to 6-channel input) the
// single-tile edge kernel keeps 12 of its 16 accumulators busy (R = 8 for 5..8
// rows) on 8 broadcasts per 2 B loads; the pair keeps 24 on 6 per 4, and
// stores straight into y where the tiles' outputs are runs of it. Sums in the
// full kernel's order. nullptr in ISAs without one.
template <typename T>
using UKernelEdgePairFn = void (*)(int rows, int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi,
                                   int64_t d2, T* c, int64_t n1, T* c2, int64_t n2, int64_t ldc, const T* bias,
                                   bool accumulate);

// UKernelOffFn with each B row in two halves: lanes [0, nr/2) at b + offs[k],
// lanes [nr/2, nr) at b + offs[k] + hi. The direct convolution's two-row tiles
// (output rows nr/2 wide: two rows per tile, read in place) use it. nullptr in
// ISAs without one.
template <typename T>
using UKernelOff2Fn = void (*)(int64_t kc, const T* a, const T* b, const int64_t* offs, int64_t hi, T* c,
                               int64_t ldc, bool accumulate);
// The same in four quarters of nr/4 lanes, q apart: lanes [j*nr/4, (j+1)*nr/4)
// of B row k at b + offs[k] + j*q (four-row tiles of outputs nr/4 wide).
template <typename T>
using UKernelOff4Fn = UKernelOff2Fn<T>;

// Dot-product kernel for the memory-bound GEMV path (linear at batch 1):
//   y[j] = sum_k w[j*ldw + k] * x[k], j < n.
template <typename T>
using GemvFn = void (*)(int64_t n, int64_t k, const T* w, int64_t ldw, const T* x, T* y);

// Inner-product tile for reductions along contiguous rows (stride-1 weight
// gradients): out[i*3 + j] = sum_{l < len} a[i][l] * b[j][l], i < 4, j < 3.
// Lanes accumulate l = lane (mod width) in order, then a fixed tree, then the
// tail: the order is fixed by len alone.
template <typename T>
using Dot4x3Fn = void (*)(int64_t len, const T* const* a, const T* const* b, T* out);

// Output-channel-vectorised tile for convolutions with few output channels:
//   C[i][j] (+)= sum_k a[i][offs[k]] * b[k*NR + j],  i < gather_mr, j < NR
// Rows i are output positions (a[i] points at position i's window origin in
// the padded input; offs[k] is tap k's offset from it), columns j are output
// channels (b: the weight transposed and packed, NR channels per row k).
template <typename T>
using UKernelGatherFn = void (*)(int64_t kc, const T* const* a, const int64_t* offs, const T* b, T* c, int64_t ldc,
                                 bool accumulate);

// Transpose a block: dst[c*ldd + r] = src[r*lds + c], r < rows, c < cols.
// Packing panels whose source runs along the reduction (B~ of weight
// gradients, X^T of linear) goes through it: rows are gathered contiguously,
// then turned with register transposes instead of one strided store each.
template <typename T>
using TransposeFn = void (*)(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd);

// Copy kb runs of cnt consecutive values (cnt <= nr) into the rows of a
// packed panel: dst[k*ldd + u] = src[offs[k] + u], k < kb, u < cnt. The direct
// convolution's exact tiling packs its B panels this way, a run per output row
// segment; reads and writes nothing outside the runs.
template <typename T>
using CopyRunsFn = void (*)(int64_t kb, const T* src, const int64_t* offs, int64_t cnt, T* dst, int64_t ldd);

// A whole exact-tiling B row read in place as two registers of nr/2 lanes:
// register v takes lane l from b + offs[k] + at[v] + l, or, for the lanes set
// in mask[v], from gap[v] further on (the register crosses the end of an
// output row: its later lanes start the next row, or the next image). Only
// the lanes taken are read (masked loads).
struct GapLanes {
  int64_t at[2];
  int64_t gap[2];
  uint32_t mask[2];
};

// The packed-A tile kernels with the exact tiling's B rows read in place as
// GapLanes says (no B panel): rows == mr the full kernel, split the edge split
// (UKernelEdgeSplitFn's 8 rows), else the first `rows` (<= 8) rows as
// UKernelEdgeFn. Sums in the same order as on a packed panel.
template <typename T>
using UKernelGapFn = void (*)(int rows, bool split, int64_t kc, const T* a, const T* b, const int64_t* offs,
                              const GapLanes& g, T* c, int64_t ldc, bool accumulate);

// Input rows split into their `stride` column phases, zero-padded: for each
// row q < rows (input row s + q*ls, output rows at d + q*ld), r < stride and
// v < n, d[q*ld + r*dstep + v] = s[q*ls + i] where i = start + v*stride + r
// lies in [0, W), else 0. Reads only [0, W) of each input row. Splitting
// strided convolution inputs into phase planes, the rows of one row phase of
// a plane per call (the lane masks, the same for every row, worked out once).
template <typename T>
using SplitRowFn = void (*)(int64_t rows, int64_t n, const T* s, int64_t ls, int64_t W, int64_t start, int64_t stride,
                            T* d, int64_t ld, int64_t dstep);

// d[i] += s[i], i < n (col2im of the stride-1 backward data, run by run).
template <typename T>
using AddToFn = void (*)(int64_t n, const T* s, T* d);

// A panel block transposed from rows read in place: d[c*ldd + r] =
// src[offs[r] + c] for r < rows, zero for rows <= r < width; c < cols. Reads
// nothing else. The weight gradient's im2col panels are packed this way, a
// run of positions at a time. nullptr in ISAs without one.
template <typename T>
using TransposeRunsFn = void (*)(int64_t rows, int64_t width, int64_t cols, const T* src, const int64_t* offs, T* d,
                                 int64_t ldd);

// d[2i] = a[i], d[2i + 1] = b[i], i < n: the strided data gradient's read-out
// of two column phases into one row. nullptr in ISAs without one (a plain loop).
template <typename T>
using Interleave2Fn = void (*)(int64_t n, const T* a, const T* b, T* d);

template <typename T>
struct GemmKernel {
  UKernelFn<T> ukernel;
  UKernelOffFn<T> ukernel_off;
  GemvFn<T> gemv;
  Dot4x3Fn<T> dot4x3;
  int mr, nr;       // register tile
  int kc, mc, nc;   // cache blocks: kc*nr panel of B in L1, mc*kc block of A in L2
  const char* name; // e.g. "sgemm_ukernel_6x16__avx2"
  UKernelRowsFn<T> ukernel_rows;
  int rows_mr;      // rows of A per ukernel_rows tile (its width is nr)
  TransposeFn<T> transpose;
  UKernelGatherFn<T> ukernel_gather;
  int gather_mr;    // positions per ukernel_gather tile (its width is nr)
  // The same tile nr/2 channels wide, where the ISA has one (AVX-512: LeNet's
  // 16 output channels would fill half of the 32-lane tile); else nullptr.
  UKernelGatherFn<T> ukernel_gather_narrow;
  int gather_narrow_mr;
  CopyRunsFn<T> copy_runs;
  SplitRowFn<T> split_row;
  AddToFn<T> add_to;
  UKernelEdgeFn<T> ukernel_edge;
  UKernelOff2Fn<T> ukernel_off2;
  UKernelOff4Fn<T> ukernel_off4;
  UKernelEdgeSplitFn<T> ukernel_edge_split;
  // The direct convolution's reduction slice, where longer than kc (0: kc).
  // Its tiles read B from L2 either way; fewer slices store and reload each
  // C tile fewer times.
  int kc_direct;
  UKernelEdgePairFn<T> ukernel_edge_pair;
  UKernelGapFn<T> ukernel_gap;
  TransposeRunsFn<T> transpose_runs = nullptr;
  Interleave2Fn<T> interleave2 = nullptr;
};

// FMA throughput probe: `iters` rounds of independent float FMAs on this
// ISA's widest registers; returns the number of flops done (2 per lane per FMA).
// Timed by the caller; used by the benchmarks to report % of peak.
using FmaProbeFn = double (*)(int64_t iters, float* sink);

struct KernelTable {
  const char* isa;  // "avx512", "avx2", "neon", "scalar"
  GemmKernel<float> f32;
  GemmKernel<double> f64;
  FmaProbeFn fma_probe;
};

template <typename T>
inline const GemmKernel<T>& kernel_for(const KernelTable& t);
template <>
inline const GemmKernel<float>& kernel_for<float>(const KernelTable& t) { return t.f32; }
template <>
inline const GemmKernel<double>& kernel_for<double>(const KernelTable& t) { return t.f64; }

// Per-ISA tables; a getter returns nullptr when that ISA was not built.
const KernelTable* scalar_kernels();
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();
const KernelTable* neon_kernels();

}  // namespace fastconv
