// The implicit im2col matrix of one conv group, walked without being built.
//
//   rows    k = (c, kh, kw), c < C/G            (c, kh, kw row-major: matches w's layout)
//   columns j = (n, oh, ow), folded over the batch
//   X_col[k][j] = x[n, c0 + c, oh*sh + kh*dh - pt, ow*sw + kw*dw - pl], 0 outside the image
//
// walk_row() visits a column range of one row as runs: zero(t, cnt) for
// padding and run(t, cnt, idx, stride) for cnt input elements at
// x_group[idx + i*stride], t counted from the range start. The GEMM packers
// (forward B, backward-weight B) and col2im (backward data) are all walks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/conv2d.h"

namespace fastconv {

struct Im2colGeom {
  int64_t C, H, W, HW, CHW;  // input dims (all channels)
  int64_t sh, sw, OH, OW, P;
};

struct Im2colRow {
  int64_t chan_off;      // c * H * W
  int64_t ih_off;        // kh*dh - pt
  int64_t iw_off;        // kw*dw - pl
  int64_t ow_lo, ow_hi;  // 0 <= ow*sw + iw_off < W  exactly for ow in [ow_lo, ow_hi)
};

// Smallest t >= 0 with t*s + off >= a (s >= 1). Written as (d - 1)/s + 1 so
// that strides and paddings near 2^62 cannot overflow.
inline int64_t first_at_least(int64_t a, int64_t s, int64_t off) {
  if (off >= a) return 0;
  return (a - off - 1) / s + 1;
}

inline Im2colGeom make_im2col_geom(const Conv2dParams& p) {
  return {p.C, p.H, p.W, p.H * p.W, p.C * p.H * p.W, p.stride_h, p.stride_w, p.OH, p.OW, p.OH * p.OW};
}

// Row table for rows [0, Cg*KH*KW) of a group; pad_t / pad_l may be any sign.
inline std::vector<Im2colRow> make_im2col_rows(const Conv2dParams& p) {
  std::vector<Im2colRow> rows;
  rows.reserve(size_t(p.Kg()));
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        Im2colRow r;
        r.chan_off = c * p.H * p.W;
        r.ih_off = kh * p.dil_h - p.pad_t;
        r.iw_off = kw * p.dil_w - p.pad_l;
        r.ow_lo = std::min(p.OW, first_at_least(0, p.stride_w, r.iw_off));
        r.ow_hi = std::max(r.ow_lo, std::min(p.OW, first_at_least(p.W, p.stride_w, r.iw_off)));
        rows.push_back(r);
      }
  return rows;
}

template <class Zero, class Run>
inline void walk_row(const Im2colGeom& g, const Im2colRow& r, int64_t j, int64_t len, Zero&& zero, Run&& run) {
  if (len <= 0) return;
  int64_t n = j / g.P;
  int64_t rem = j - n * g.P;
  int64_t oh = rem / g.OW;
  int64_t ow = rem - oh * g.OW;
  int64_t t = 0;
  while (t < len) {
    const int64_t cnt = std::min(g.OW - ow, len - t);
    const int64_t ih = oh * g.sh + r.ih_off;
    if (ih < 0 || ih >= g.H) {
      zero(t, cnt);
    } else {
      const int64_t a = ow, e = ow + cnt;
      const int64_t lo = std::min(std::max(r.ow_lo, a), e);
      const int64_t hi = std::min(std::max(r.ow_hi, lo), e);
      if (lo > a) zero(t, lo - a);
      if (hi > lo) run(t + (lo - a), hi - lo, n * g.CHW + r.chan_off + ih * g.W + lo * g.sw + r.iw_off, g.sw);
      if (e > hi) zero(t + (hi - a), e - hi);
    }
    t += cnt;
    ow = 0;
    if (++oh == g.OH) {
      oh = 0;
      ++n;
    }
  }
}

}  // namespace fastconv
