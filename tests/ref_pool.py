"""Independent float64 references for 2-D pooling, written from PyTorch's documented semantics.

Nothing here imports fastconv. Every function is a plain Python loop over
output (or input) elements, on a float64 copy of its input, so it shares no
code or trick with the vectorised kernels. Only for small arrays.

Conventions (torch.nn.functional, CPU):

output size   out = floor((L + 2p - d*(k-1) - 1) / s) + 1, ceil instead of floor
              with ceil_mode; then, with ceil_mode, the last window must start
              inside the input or the left padding: if (out-1)*s >= L + p, out -= 1.
max_pool2d    window (oh, ow) has taps (oh*sh - ph + i*dh, ow*sw - pw + j*dw),
              scanned i-major then j; only in-bounds taps count. The running max
              starts at -inf with the index of the first in-bounds tap (PyTorch's
              initial argmax: the window start advanced by whole dilation steps
              until it is >= 0, even if that lands past the end); a tap replaces
              it when it is greater, or when it is NaN (so ties keep the first,
              and the last NaN wins). Index = h*W + w within the (n, c) plane.
max_pool2d_backward
              dx[n, c].flat[ind] += dy for each output element; an index outside
              the plane (a window with no in-bounds tap) routes nowhere.
avg_pool2d    sum of the in-bounds taps / divisor, where the divisor is
              divisor_override if given, else with count_include_pad the window
              clipped to the padded input [-p, L + p), else the number of
              in-bounds taps. Backward: each in-bounds tap gets dy / divisor.
adaptive      bin i of an output of size O over an input of size L covers
              [floor(i*L/O), ceil((i+1)*L/O)); average or max (as max_pool2d,
              starting with the bin's first element) over the bin.
max_unpool2d  zeros of (N, C, OH, OW) with y[n, c].flat[ind[n, c, h, w]] = x[n, c, h, w],
              in input order (a repeated index keeps the last); default size
              (L - 1)*s + k - 2p. Backward: dx[n, c, h, w] = dy[n, c].flat[ind].

Every function takes a 4-D (N, C, H, W) or 3-D (C, H, W) array and returns
the same rank.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "pool_pair",
    "pool_out_size",
    "max_pool2d_ref",
    "max_pool2d_backward_ref",
    "avg_pool2d_ref",
    "avg_pool2d_backward_ref",
    "adaptive_bins",
    "adaptive_avg_pool2d_ref",
    "adaptive_avg_pool2d_backward_ref",
    "adaptive_max_pool2d_ref",
    "max_unpool2d_size",
    "max_unpool2d_ref",
    "max_unpool2d_backward_ref",
]


def pool_pair(v):
    """int -> (v, v); a 1- or 2-sequence -> pair of ints."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        assert len(v) == 2, v
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pool_out_size(L, k, s, p=0, d=1, ceil_mode=False):
    """Output length along one axis (PyTorch's pooling_output_shape), exact integer arithmetic."""
    num = L + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-num // s) + 1  # ceil division (num may be negative: Python's // floors)
        if (out - 1) * s >= L + p:
            out -= 1
    else:
        out = num // s + 1
    return out


def _batched(x):
    x = np.array(x, dtype=np.float64)
    assert x.ndim in (3, 4), x.shape
    unbatched = x.ndim == 3
    return (x[None] if unbatched else x), unbatched


def _opts(kernel_size, stride, padding, dilation=1):
    kh, kw = pool_pair(kernel_size)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)  # torch: default = kernel
    sh, sw = (kh, kw) if no_stride else pool_pair(stride)
    ph, pw = pool_pair(padding)
    dh, dw = pool_pair(dilation)
    return kh, kw, sh, sw, ph, pw, dh, dw


def _first_tap(start, dil):
    while start < 0:
        start += dil
    return start


def max_pool2d_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices): float64 values and int64 flat per-plane argmax, as torch's max_pool2d(return_indices=True)."""
    x, unbatched = _batched(x)
    N, C, H, W = x.shape
    kh, kw, sh, sw, ph, pw, dh, dw = _opts(kernel_size, stride, padding, dilation)
    OH = pool_out_size(H, kh, sh, ph, dh, ceil_mode)
    OW = pool_out_size(W, kw, sw, pw, dw, ceil_mode)
    assert OH >= 1 and OW >= 1, (OH, OW)
    y = np.empty((N, C, OH, OW))
    ind = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    h0, w0 = oh * sh - ph, ow * sw - pw
                    best = -math.inf
                    besti = _first_tap(h0, dh) * W + _first_tap(w0, dw)
                    for i in range(kh):
                        h = h0 + i * dh
                        if not 0 <= h < H:
                            continue
                        for j in range(kw):
                            w = w0 + j * dw
                            if not 0 <= w < W:
                                continue
                            v = float(x[n, c, h, w])
                            if v > best or math.isnan(v):
                                best, besti = v, h * W + w
                    y[n, c, oh, ow] = best
                    ind[n, c, oh, ow] = besti
    if unbatched:
        return y[0], ind[0]
    return y, ind


def max_pool2d_backward_ref(dy, indices, input_shape):
    """Scatter-add dy into the argmax positions of a zero input of input_shape (float64)."""
    dy = np.array(dy, dtype=np.float64)
    ind = np.array(indices, dtype=np.int64)
    shape = tuple(int(v) for v in input_shape)
    unbatched = len(shape) == 3
    if unbatched:
        shape, dy, ind = (1,) + shape, dy[None], ind[None]
    N, C, H, W = shape
    assert dy.shape[:2] == (N, C) and ind.shape == dy.shape, (dy.shape, ind.shape, shape)
    dx = np.zeros(shape)
    for n in range(N):
        for c in range(C):
            for oh in range(dy.shape[2]):
                for ow in range(dy.shape[3]):
                    k = int(ind[n, c, oh, ow])
                    if 0 <= k < H * W:
                        dx[n, c, k // W, k % W] += dy[n, c, oh, ow]
    return dx[0] if unbatched else dx


def _avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Yield (oh, ow, [(h, w) in-bounds taps], divisor) for every output element."""
    kh, kw, sh, sw, ph, pw, _, _ = _opts(kernel_size, stride, padding)
    OH = pool_out_size(H, kh, sh, ph, 1, ceil_mode)
    OW = pool_out_size(W, kw, sw, pw, 1, ceil_mode)
    assert OH >= 1 and OW >= 1, (OH, OW)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)  # clipped to the padded input
            taps = [(h, w) for h in range(max(h0, 0), min(h1, H)) for w in range(max(w0, 0), min(w1, W))]
            if divisor_override is not None:
                div = int(divisor_override)
            elif count_include_pad:
                div = (h1 - h0) * (w1 - w0)
            else:
                div = len(taps)
            yield oh, ow, taps, div


def _avg_out_shape(H, W, kernel_size, stride, padding, ceil_mode):
    kh, kw, sh, sw, ph, pw, _, _ = _opts(kernel_size, stride, padding)
    return pool_out_size(H, kh, sh, ph, 1, ceil_mode), pool_out_size(W, kw, sw, pw, 1, ceil_mode)


def avg_pool2d_ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
    """float64 average pooling, as torch's avg_pool2d."""
    x, unbatched = _batched(x)
    N, C, H, W = x.shape
    OH, OW = _avg_out_shape(H, W, kernel_size, stride, padding, ceil_mode)
    y = np.empty((N, C, OH, OW))
    wins = list(_avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))
    for n in range(N):
        for c in range(C):
            for oh, ow, taps, div in wins:
                s = 0.0
                for h, w in taps:
                    s += x[n, c, h, w]
                y[n, c, oh, ow] = s / div
    return y[0] if unbatched else y


def avg_pool2d_backward_ref(dy, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True, divisor_override=None):
    """Input gradient of avg_pool2d (float64): each in-bounds tap of a window gets dy / divisor."""
    dy = np.array(dy, dtype=np.float64)
    shape = tuple(int(v) for v in input_shape)
    unbatched = len(shape) == 3
    if unbatched:
        shape, dy = (1,) + shape, dy[None]
    N, C, H, W = shape
    OH, OW = _avg_out_shape(H, W, kernel_size, stride, padding, ceil_mode)
    assert dy.shape == (N, C, OH, OW), (dy.shape, (N, C, OH, OW))
    wins = list(_avg_windows(H, W, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))
    dx = np.zeros(shape)
    for n in range(N):
        for c in range(C):
            for oh, ow, taps, div in wins:
                for h, w in taps:
                    dx[n, c, h, w] += dy[n, c, oh, ow] / div
    return dx[0] if unbatched else dx


def adaptive_bins(L, O):
    """[(start, end)] of the O adaptive bins over L: [floor(i*L/O), ceil((i+1)*L/O))."""
    return [((i * L) // O, -(-((i + 1) * L) // O)) for i in range(O)]


def _adaptive_size(output_size, H, W):
    if isinstance(output_size, (tuple, list)):
        oh, ow = output_size
        return (H if oh is None else int(oh)), (W if ow is None else int(ow))
    return int(output_size), int(output_size)


def adaptive_avg_pool2d_ref(x, output_size):
    x, unbatched = _batched(x)
    N, C, H, W = x.shape
    OH, OW = _adaptive_size(output_size, H, W)
    rows, cols = adaptive_bins(H, OH), adaptive_bins(W, OW)
    y = np.empty((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for oh, (h0, h1) in enumerate(rows):
                for ow, (w0, w1) in enumerate(cols):
                    s = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s += x[n, c, h, w]
                    y[n, c, oh, ow] = s / ((h1 - h0) * (w1 - w0))
    return y[0] if unbatched else y


def adaptive_avg_pool2d_backward_ref(dy, input_shape):
    dy = np.array(dy, dtype=np.float64)
    shape = tuple(int(v) for v in input_shape)
    unbatched = len(shape) == 3
    if unbatched:
        shape, dy = (1,) + shape, dy[None]
    N, C, H, W = shape
    OH, OW = dy.shape[2:]
    rows, cols = adaptive_bins(H, OH), adaptive_bins(W, OW)
    dx = np.zeros(shape)
    for n in range(N):
        for c in range(C):
            for oh, (h0, h1) in enumerate(rows):
                for ow, (w0, w1) in enumerate(cols):
                    g = dy[n, c, oh, ow] / ((h1 - h0) * (w1 - w0))
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            dx[n, c, h, w] += g
    return dx[0] if unbatched else dx


def adaptive_max_pool2d_ref(x, output_size):
    """(y, indices) of adaptive max pooling; indices flat h*W + w per plane (int64)."""
    x, unbatched = _batched(x)
    N, C, H, W = x.shape
    OH, OW = _adaptive_size(output_size, H, W)
    rows, cols = adaptive_bins(H, OH), adaptive_bins(W, OW)
    y = np.empty((N, C, OH, OW))
    ind = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh, (h0, h1) in enumerate(rows):
                for ow, (w0, w1) in enumerate(cols):
                    best, besti = -math.inf, h0 * W + w0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            v = float(x[n, c, h, w])
                            if v > best or math.isnan(v):
                                best, besti = v, h * W + w
                    y[n, c, oh, ow] = best
                    ind[n, c, oh, ow] = besti
    if unbatched:
        return y[0], ind[0]
    return y, ind


def max_unpool2d_size(H, W, kernel_size, stride=None, padding=0):
    """The default output size of max_unpool2d: (L - 1)*s + k - 2p per axis."""
    kh, kw, sh, sw, ph, pw, _, _ = _opts(kernel_size, stride, padding)
    return (H - 1) * sh + kh - 2 * ph, (W - 1) * sw + kw - 2 * pw


def max_unpool2d_ref(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    x, unbatched = _batched(x)
    ind = np.array(indices, dtype=np.int64)
    if unbatched:
        ind = ind[None]
    N, C, H, W = x.shape
    assert ind.shape == x.shape
    if output_size is None:
        OH, OW = max_unpool2d_size(H, W, kernel_size, stride, padding)
    else:
        OH, OW = (int(v) for v in tuple(output_size)[-2:])
    y = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    k = int(ind[n, c, h, w])
                    assert 0 <= k < OH * OW, k
                    y[n, c, k // OW, k % OW] = x[n, c, h, w]
    return y[0] if unbatched else y


def max_unpool2d_backward_ref(dy, indices):
    dy = np.array(dy, dtype=np.float64)
    ind = np.array(indices, dtype=np.int64)
    unbatched = dy.ndim == 3
    if unbatched:
        dy, ind = dy[None], ind[None]
    N, C, OH, OW = dy.shape
    dx = np.zeros(ind.shape)
    for n in range(N):
        for c in range(C):
            for h in range(ind.shape[2]):
                for w in range(ind.shape[3]):
                    k = int(ind[n, c, h, w])
                    dx[n, c, h, w] = dy[n, c, k // OW, k % OW]
    return dx[0] if unbatched else dx


# ---------------------------------------------------------------------------
# non-overlapping, unpadded windows (stride == kernel, sizes divisible): the
# same pooling written with reshapes, fast enough for large arrays. Used to
# check large inputs (several threads) and to cross-check the loops above.


def _blocks(x, kernel_size):
    x, unbatched = _batched(x)
    N, C, H, W = x.shape
    kh, kw = pool_pair(kernel_size)
    assert H % kh == 0 and W % kw == 0, (x.shape, kernel_size)
    OH, OW = H // kh, W // kw
    # (N, C, OH, OW, kh*kw): each window's values in scan order (i-major, then j)
    b = x.reshape(N, C, OH, kh, OW, kw).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, OH, OW, kh * kw)
    return b, (N, C, H, W, kh, kw, OH, OW), unbatched


def max_pool2d_blocks_ref(x, kernel_size):
    """(y, indices) for stride == kernel_size, no padding, no NaN (np.argmax keeps the first maximum)."""
    b, (N, C, H, W, kh, kw, OH, OW), unbatched = _blocks(x, kernel_size)
    assert not np.isnan(b).any()
    a = np.argmax(b, axis=-1)
    y = np.take_along_axis(b, a[..., None], axis=-1)[..., 0]
    rows = np.arange(OH)[:, None] * kh + a // kw
    cols = np.arange(OW)[None, :] * kw + a % kw
    ind = (rows * W + cols).astype(np.int64)
    return (y[0], ind[0]) if unbatched else (y, ind)


def avg_pool2d_blocks_ref(x, kernel_size):
    b, _, unbatched = _blocks(x, kernel_size)
    y = b.mean(axis=-1)
    return y[0] if unbatched else y


def avg_pool2d_blocks_backward_ref(dy, kernel_size):
    """Input gradient of avg_pool2d_blocks_ref: each window's dy spread evenly over it."""
    kh, kw = pool_pair(kernel_size)
    dy = np.array(dy, dtype=np.float64)
    return np.repeat(np.repeat(dy, kh, axis=-2), kw, axis=-1) / (kh * kw)


def scatter_plane_ref(dy, indices, input_shape):
    """dx with dx[n, c].flat[ind] = dy for indices that never repeat within a plane (vectorised)."""
    dy = np.array(dy, dtype=np.float64)
    shape = tuple(int(v) for v in input_shape)
    planes = int(np.prod(shape[:-2]))
    dx = np.zeros((planes, shape[-2] * shape[-1]))
    ind = np.asarray(indices).reshape(planes, -1)
    assert all(len(np.unique(r)) == r.size for r in ind)
    np.put_along_axis(dx, ind, dy.reshape(planes, -1), axis=1)
    return dx.reshape(shape)


__all__ += [
    "max_pool2d_blocks_ref",
    "avg_pool2d_blocks_ref",
    "avg_pool2d_blocks_backward_ref",
    "scatter_plane_ref",
]
