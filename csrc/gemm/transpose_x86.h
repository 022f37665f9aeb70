// Float block transposes in AVX registers, shared by the AVX2 and AVX-512
// kernel files (the AVX-512 flags include AVX2).
//
// Include this file INSIDE the anonymous namespace of such a file, as
// ukernel_templates.h: each inclusion is compiled with that file's flags. It
// includes nothing itself; the including file provides <cstdint> and the
// intrinsics.

// 8x8: d[c*ldd + r] = s[r*lds + c], r, c < 8 (unpack, shuffle, lane swap).
inline void transpose8x8(const float* s, int64_t lds, float* d, int64_t ldd) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds), r2 = _mm256_loadu_ps(s + 2 * lds),
               r3 = _mm256_loadu_ps(s + 3 * lds), r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds),
               r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(d + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// 4x4 (SSE unpacks): for the rows left after the 8-row blocks -- packing a
// 12-row weight panel (AVX-512's MR) is then all vector transposes.
inline void transpose4x4(const float* s, int64_t lds, float* d, int64_t ldd) {
  const __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + lds), r2 = _mm_loadu_ps(s + 2 * lds),
               r3 = _mm_loadu_ps(s + 3 * lds);
  const __m128 t0 = _mm_unpacklo_ps(r0, r1), t1 = _mm_unpackhi_ps(r0, r1);
  const __m128 t2 = _mm_unpacklo_ps(r2, r3), t3 = _mm_unpackhi_ps(r2, r3);
  _mm_storeu_ps(d + 0 * ldd, _mm_movelh_ps(t0, t2));
  _mm_storeu_ps(d + 1 * ldd, _mm_movehl_ps(t2, t0));
  _mm_storeu_ps(d + 2 * ldd, _mm_movelh_ps(t1, t3));
  _mm_storeu_ps(d + 3 * ldd, _mm_movehl_ps(t3, t1));
}

// d[c*ldd + r] = s[r*lds + c], r < rows, c < cols: 8x8 blocks, then 4x4 blocks
// of the remaining rows, the ragged edges element by element.
inline void transpose_f32_x86(int64_t rows, int64_t cols, const float* s, int64_t lds, float* d, int64_t ldd) {
  const int64_t r8 = rows / 8 * 8, r4 = rows / 4 * 4, c8 = cols / 8 * 8, c4 = cols / 4 * 4;
  for (int64_t r0 = 0; r0 < r8; r0 += 8)
    for (int64_t c0 = 0; c0 < c8; c0 += 8) transpose8x8(s + r0 * lds + c0, lds, d + c0 * ldd + r0, ldd);
  for (int64_t r0 = r8; r0 < r4; r0 += 4)
    for (int64_t c0 = 0; c0 < c4; c0 += 4) transpose4x4(s + r0 * lds + c0, lds, d + c0 * ldd + r0, ldd);
  // the ragged right columns of each block row, and the bottom rows
  for (int64_t r = 0; r < r8; ++r)
    for (int64_t c = c8; c < cols; ++c) d[c * ldd + r] = s[r * lds + c];
  for (int64_t r = r8; r < r4; ++r)
    for (int64_t c = c4; c < cols; ++c) d[c * ldd + r] = s[r * lds + c];
  for (int64_t r = r4; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) d[c * ldd + r] = s[r * lds + c];
}
