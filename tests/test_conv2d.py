"""conv2d forward and backward against the float64 NumPy reference (and PyTorch when installed)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _core
from reference import (
    LAYOUTS,
    RTOL,
    as_layout,
    assert_close,
    check_vjp,
    conv2d_grads_ref,
    conv2d_out_size,
    conv2d_pads,
    conv2d_ref,
    conv2d_ref_loops,
    conv2d_scales,
    numeric_grad,
)

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------------------
# helpers


def opts_of(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups") if k in cfg}


def make_case(cfg, dtype, rng, integer=False):
    """x, w, b (or None), dy for a config dict (N may be None for an unbatched input)."""
    N, C, H, W = cfg.get("N", 2), cfg["C"], cfg["H"], cfg["W"]
    OC, KH, KW = cfg["OC"], cfg["KH"], cfg["KW"]
    g = cfg.get("groups", 1)
    o = opts_of(cfg)
    OH, OW = conv2d_out_size(H, W, (KH, KW), o.get("stride", 1), o.get("padding", 0), o.get("dilation", 1))

    def draw(shape):
        if integer:
            return rng.integers(-2, 3, size=shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    xs = (C, H, W) if N is None else (N, C, H, W)
    ys = (OC, OH, OW) if N is None else (N, OC, OH, OW)
    x, w = draw(xs), draw((OC, C // g, KH, KW))
    b = draw((OC,)) if cfg.get("bias", True) else None
    return x, w, b, draw(ys)


def check_forward(cfg, dtype, rng, x=None, w=None, b=None, exact=False):
    if x is None:
        x, w, b, _ = make_case(cfg, dtype, rng, integer=exact)
    o = opts_of(cfg)
    y = F.conv2d(x, w, b, **o)
    ref = conv2d_ref(x, w, b, **o)
    assert isinstance(y, np.ndarray) and y.dtype == np.dtype(dtype) and y.flags.c_contiguous
    assert y.shape == ref.shape
    if exact:
        assert np.array_equal(y, ref), f"max err {np.abs(y - ref).max()}"
    else:
        assert_close(y, ref, conv2d_scales(x, w, b, **o), err_msg="conv2d forward")
    return y


def check_backward(cfg, dtype, rng, case=None, exact=False):
    x, w, b, dy = case if case is not None else make_case(cfg, dtype, rng, integer=exact)
    o = opts_of(cfg)
    dx, dw, db = F.conv2d_backward(dy, x, w, **o)
    rx, rw, rb = conv2d_grads_ref(dy, x, w, **o)
    for name, got, want, in_ in (("dx", dx, rx, x), ("dw", dw, rw, w), ("db", db, rb, None)):
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype) and got.flags.c_contiguous, name
        assert got.shape == want.shape, (name, got.shape, want.shape)
        if in_ is not None:
            assert got.shape == in_.shape
    if exact:
        for name, got, want in (("dx", dx, rx), ("dw", dw, rw), ("db", db, rb)):
            assert np.array_equal(got, want), f"{name}: max err {np.abs(got - want).max()}"
    else:
        _, sx, sw, sb = conv2d_scales(x, w, None, dy, **o)
        assert_close(dx, rx, sx, err_msg="conv2d dx")
        assert_close(dw, rw, sw, err_msg="conv2d dw")
        assert_close(db, rb, sb, err_msg="conv2d db")
    return dx, dw, db


def cid(cfg):
    return "-".join(f"{k}{v}" for k, v in cfg.items()).replace(" ", "").replace("'", "")


# ---------------------------------------------------------------------------
# the reference itself: sliding windows == the plain loops; its gradients == central differences

REF_SELF = [
    dict(N=2, C=2, H=5, W=6, OC=3, KH=3, KW=2),
    dict(N=1, C=4, H=6, W=5, OC=4, KH=2, KW=3, stride=(2, 1), padding=(1, 2), groups=2),
    dict(N=2, C=3, H=7, W=7, OC=6, KH=3, KW=3, stride=2, padding=1, dilation=(2, 1), groups=3),
    dict(N=1, C=2, H=6, W=7, OC=2, KH=2, KW=4, padding="same", dilation=(1, 2)),
    dict(N=1, C=1, H=3, W=4, OC=2, KH=5, KW=1, padding=(2, 0), stride=3),
]


@pytest.mark.parametrize("cfg", REF_SELF, ids=cid)
def test_reference_matches_loops_and_numeric_grads(cfg, rng):
    x, w, b, dy = make_case(cfg, np.float64, rng)
    o = opts_of(cfg)
    np.testing.assert_allclose(conv2d_ref(x, w, b, **o), conv2d_ref_loops(x, w, b, **o), rtol=1e-13, atol=1e-13)
    grads = conv2d_grads_ref(dy, x, w, **o)

    def f(x, w, b):
        return conv2d_ref(x, w, b, **o)

    check_vjp(f, [x, w, b], dy, grads)


def test_reference_same_padding_convention():
    # even total padding splits evenly; odd puts the extra row/column bottom/right (PyTorch)
    assert conv2d_pads("same", (3, 3)) == (1, 1, 1, 1)
    assert conv2d_pads("same", (2, 4)) == (0, 1, 1, 2)
    assert conv2d_pads("same", (2, 2), (3, 2)) == (1, 2, 1, 1)
    assert conv2d_pads("valid", (5, 5)) == (0, 0, 0, 0)
    assert conv2d_pads((1, 2), (3, 3)) == (1, 1, 2, 2)


# ---------------------------------------------------------------------------
# the option space

BASE = dict(N=2, C=3, H=9, W=10, OC=4, KH=3, KW=3)


def case(**kw):
    d = dict(BASE)
    d.update(kw)
    return d


OPTION_CASES = [
    # kernels
    case(C=5, H=7, W=6, OC=7, KH=1, KW=1),
    case(C=5, H=7, W=6, OC=7, KH=1, KW=1, stride=2),
    case(KH=2, KW=2),
    case(padding=1),
    case(KH=5, KW=5, padding=2),
    case(KH=1, KW=3, padding=(0, 1)),
    case(KH=3, KW=1),
    case(N=2, C=3, H=35, W=39, OC=8, KH=11, KW=11, stride=4, padding=2),
    case(KH=4, KW=2, bias=False),
    # stride
    case(stride=2),
    case(stride=3, padding=1),
    case(stride=(2, 1)),
    case(stride=(1, 3), padding=(2, 1)),
    case(KH=2, KW=2, stride=4),
    # padding
    case(padding=(1, 2)),
    case(padding=0),
    case(padding="valid"),
    case(padding="same"),
    case(KH=2, KW=2, padding="same"),
    case(KH=4, KW=3, padding="same"),
    case(KH=2, KW=2, dilation=3, padding="same"),
    case(dilation=2, padding="same"),
    case(KH=2, KW=3, dilation=(2, 3), padding="same"),
    case(KH=1, KW=1, padding="same"),
    case(KH=2, KW=2, padding=3),  # rows made only of padding: bias alone
    case(H=2, W=2, padding=1),  # kernel larger than the input, not than the padded input
    case(H=3, W=3),  # kernel == input: a single output pixel
    # dilation
    case(dilation=2),
    case(dilation=(2, 3), padding=1),
    case(dilation=2, stride=2, padding=2),
    case(H=12, W=13, KH=2, KW=3, dilation=(3, 2), stride=(2, 3), padding=(1, 0)),
    # groups
    case(C=4, OC=6, groups=2),
    case(C=6, OC=9, groups=3, padding=1),
    case(C=4, OC=4, groups=2, stride=2, dilation=2, padding=2, bias=False),
    case(C=6, OC=4, groups=2, KH=1, KW=1),
    case(C=8, OC=8, groups=4, padding="same", KH=2, KW=2),
    # depthwise (groups == C), with channel multiplier
    case(C=5, OC=5, groups=5, padding=1),
    case(C=4, OC=8, groups=4, padding=1),
    case(C=3, OC=9, groups=3, padding=(0, 2), KH=2, KW=5, bias=False),
    case(C=5, OC=5, groups=5, stride=2, padding=1),
    case(C=4, OC=4, groups=4, dilation=2, padding="same"),
    case(C=4, OC=8, groups=4, KH=2, KW=2, padding="same"),
    case(C=6, OC=6, groups=6, KH=5, KW=3, stride=(2, 1), dilation=(1, 2), padding=(2, 1)),
    case(C=3, OC=3, groups=3, KH=1, KW=1),
    case(C=4, OC=4, groups=4, H=3, W=3, KH=3, KW=3, padding=4, stride=3),
    # odd geometries
    case(H=1, W=13, KH=1, KW=3),
    case(H=20, W=1, KH=3, KW=1, padding=(1, 0)),
    case(N=1, C=1, OC=1, H=1, W=1, KH=1, KW=1),
    case(N=5, C=2, H=4, W=5, OC=3, padding=1, stride=2),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", OPTION_CASES, ids=cid)
def test_forward_options(cfg, dtype, isa, rng):
    check_forward(cfg, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", OPTION_CASES, ids=cid)
def test_backward_options(cfg, dtype, isa, rng):
    check_backward(cfg, dtype, rng)


@pytest.mark.parametrize("cfg", OPTION_CASES, ids=cid)
def test_integer_valued_data_is_exact(cfg, isa, rng):
    # small integers: every partial sum is exact in float32, so any indexing slip shows as a difference
    check_forward(cfg, np.float32, rng, exact=True)
    check_backward(cfg, np.float32, rng, exact=True)


@pytest.mark.parametrize(
    "W,padding",
    [(w, p) for p in (0, 1) for w in list(range(1, 41)) + [63, 64, 65, 66] if w + 2 * p >= 3],
    ids=lambda v: str(v),
)
def test_strided_data_gradient_row_widths(W, padding, isa, rng):
    # stride 2: dx rows are read out of two column phases (an interleave of
    # about W / 2 pairs, 16 per step with masked tails on AVX-512); every width
    # up to 40 and around 64, exact on small integers
    cfg = case(N=1, C=2, H=5, W=W, OC=3, KH=3, KW=3, stride=2, padding=padding)
    check_backward(cfg, np.float32, rng, exact=True)


# ---------------------------------------------------------------------------
# sizes at and around the GEMM register tiles (avx2 6x16 f32 / 6x8 f64, scalar 4x8 / 4x4)

EDGE = [1, 5, 6, 7, 15, 16, 17, 31, 33]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("P", EDGE, ids=lambda v: f"P{v}")
@pytest.mark.parametrize("OC", EDGE, ids=lambda v: f"OC{v}")
def test_tile_edges(OC, P, dtype, isa, rng):
    # N=3 images of P pixels are folded into one GEMM column range: tiles straddle images
    cfg = dict(N=3, C=3, H=1, W=P, OC=OC, KH=1, KW=3, padding=(0, 1))
    check_forward(cfg, dtype, rng, exact=True)
    check_backward(cfg, dtype, rng, exact=True)


@pytest.mark.parametrize("N", [1, 2, 3, 4, 7, 9, 17])
@pytest.mark.parametrize("P", [(1, 5), (2, 3), (3, 5), (4, 4), (5, 7)], ids=lambda p: f"{p[0]}x{p[1]}")
def test_batch_folded_tiles(N, P, isa, rng):
    cfg = dict(N=N, C=2, H=P[0] + 2, W=P[1] + 2, OC=7, KH=3, KW=3)
    check_forward(cfg, np.float32, rng, exact=True)
    check_backward(cfg, np.float32, rng, exact=True)


BIG_CASES = [
    # reduction length K = C/G*KH*KW around and beyond the KC=256 block
    dict(N=2, C=16, H=6, W=7, OC=10, KH=4, KW=4),  # K = 256
    dict(N=2, C=257, H=3, W=4, OC=7, KH=1, KW=1),  # K = 257
    # 1x1 over several tiles a block, in one and in two slices of K (the next
    # tile's rows are prefetched, within the slice and into the next one), M
    # on the split edge (64) and not (30)
    dict(N=3, C=300, H=9, W=9, OC=64, KH=1, KW=1),
    dict(N=2, C=40, H=13, W=13, OC=30, KH=1, KW=1),
    dict(N=2, C=29, H=6, W=6, OC=13, KH=3, KW=3, padding=1),  # K = 261
    dict(N=2, C=64, H=8, W=8, OC=17, KH=3, KW=3, padding=1),  # K = 576
    dict(N=1, C=128, H=5, W=6, OC=10, KH=3, KW=3, groups=2, padding=1),  # K = 576 per group
    dict(N=2, C=2, H=20, W=21, OC=3, KH=17, KW=17, padding=2),  # KH*KW = 289 > 256 taps
    # weight gradient on the GEMM from a padded copy: output rows longer than a
    # panel (runs split), dilation, groups, asymmetric 'same' padding
    dict(N=1, C=20, H=7, W=70, OC=13, KH=3, KW=3, dilation=2, padding=1),
    dict(N=3, C=40, H=5, W=6, OC=14, KH=3, KW=2, groups=2, dilation=(1, 2), padding="same"),
    # M beyond the MC block (144 f32 / 72 f64 on avx2)
    dict(N=2, C=3, H=4, W=5, OC=150, KH=3, KW=3, padding=1),
    # more output pixels than one backward-data column block (512), and N*P > NC (4096)
    dict(N=2, C=4, H=24, W=24, OC=5, KH=3, KW=3, padding=1),
    dict(N=3, C=3, H=40, W=41, OC=6, KH=3, KW=3, padding="same"),
    # strided weight gradients on the gather form over the phase planes (output
    # channels filling a gather tile, positions enough): 3x3/2, strides (2, 3)
    # with asymmetric padding, dilation 3 at stride 2, AlexNet-like 11x11/4
    dict(N=2, C=5, H=33, W=33, OC=16, KH=3, KW=3, stride=2, padding=1),
    dict(N=16, C=4, H=20, W=23, OC=24, KH=3, KW=3, stride=(2, 3), padding=(1, 0)),
    dict(N=2, C=4, H=40, W=40, OC=16, KH=3, KW=3, stride=2, dilation=3, padding=3),
    dict(N=2, C=3, H=67, W=67, OC=16, KH=11, KW=11, stride=4, padding=2),
    # several backward-weight reduction chunks over the batch
    dict(N=9, C=4, H=5, W=6, OC=6, KH=3, KW=3),
    dict(N=17, C=3, H=4, W=4, OC=5, KH=2, KW=2, stride=2),
    dict(N=9, C=8, H=6, W=6, OC=16, KH=3, KW=3, groups=8, padding=1),
    # a weight so large that fewer partial weight-gradient buffers are used
    dict(N=9, C=512, H=3, W=3, OC=512, KH=3, KW=3),
    # backward data by GEMM + col2im (few input channels): phase planes of the
    # padded dx for strides (2, 3) and dilation; a column stride over 8 takes
    # the per-row walk instead
    dict(N=3, C=2, H=13, W=17, OC=7, KH=4, KW=5, stride=(2, 3), padding=(1, 2), dilation=(1, 2)),
    dict(N=2, C=3, H=9, W=11, OC=5, KH=3, KW=3, padding=(2, 0)),
    dict(N=2, C=2, H=7, W=40, OC=4, KH=2, KW=3, stride=(1, 9), padding=1),
]


# The direct path's tilings (conv2d_direct.cpp): exact tiles of valid positions
# packed per tile (small images), with the weight rows read in place when there
# are few tiles; strided convolutions through the stride-phase planes.
DIRECT_CASES = [
    # exact tiling (the weight's M must be large enough for it to pay), weight
    # read in place: ragged M, K over two slices, groups
    dict(N=1, C=40, H=8, W=8, OC=130, KH=3, KW=3, padding=1),
    dict(N=1, C=64, H=4, W=4, OC=301, KH=3, KW=3, padding=1),  # M beyond one row block
    dict(N=1, C=60, H=6, W=5, OC=140, KH=3, KW=3, padding=1, groups=2),
    dict(N=3, C=30, H=5, W=5, OC=70, KH=3, KW=3, padding=1),  # tiles crossing images
    # exact tiling, packed weights (many tiles), runs crossing images
    dict(N=40, C=20, H=5, W=5, OC=33, KH=3, KW=3, padding=1),
    dict(N=7, C=9, H=3, W=7, OC=64, KH=3, KW=3, padding=1),
    # strided, through the phase planes
    dict(N=2, C=5, H=13, W=11, OC=9, KH=3, KW=3, stride=2, padding=1),
    dict(N=1, C=3, H=23, W=29, OC=7, KH=5, KW=5, stride=3, padding=2, dilation=2),
    dict(N=2, C=4, H=9, W=10, OC=6, KH=4, KW=4, stride=(2, 3), padding=(1, 2)),
    dict(N=3, C=6, H=10, W=10, OC=8, KH=2, KW=2, stride=2),
    dict(N=1, C=3, H=30, W=30, OC=16, KH=7, KW=7, stride=2, padding=3),
    dict(N=2, C=3, H=17, W=19, OC=5, KH=3, KW=3, stride=2, dilation=2, padding=1),  # one phase read: im2col
    dict(N=1, C=3, H=41, W=37, OC=10, KH=11, KW=11, stride=4, padding=2),
    # rows of several vector blocks per phase, left pads up to past the stride
    dict(N=1, C=2, H=6, W=150, OC=5, KH=3, KW=7, stride=2, padding=(1, 3)),
    dict(N=1, C=2, H=13, W=203, OC=4, KH=5, KW=7, stride=4, padding=(0, 3)),
    dict(N=1, C=2, H=8, W=67, OC=4, KH=2, KW=3, stride=(1, 2), padding=(0, 2)),
    dict(N=2, C=2, H=5, W=97, OC=3, KH=1, KW=9, stride=(1, 3), padding=(0, 4)),
    # over 128 outputs per phase row: lane masks worked out per row, not once per call
    dict(N=1, C=2, H=7, W=300, OC=3, KH=3, KW=3, stride=2, padding=1),
    dict(N=1, C=2, H=9, W=560, OC=3, KH=5, KW=5, stride=4, padding=2),
    # as many output channels as the kernel's NR (16 AVX2 float, 8 scalar float and
    # AVX2 double, 32 AVX-512 float) or its narrow gather tile's (AVX-512: 16 float,
    # 8 double) and K >= 128: tiles of output positions with the channels across the
    # vector; ragged last tile, blocks crossing images, K over two slices
    dict(N=5, C=6, H=14, W=13, OC=16, KH=5, KW=5),
    dict(N=3, C=40, H=7, W=9, OC=16, KH=3, KW=3, padding=1),
    dict(N=2, C=15, H=9, W=8, OC=16, KH=3, KW=3, padding=1),  # K = 135
    dict(N=2, C=16, H=11, W=10, OC=32, KH=3, KW=3, padding=2, dilation=2),
    dict(N=3, C=16, H=9, W=11, OC=8, KH=3, KW=3, padding=1),  # the scalar path (NR 8)
    dict(N=2, C=16, H=15, W=13, OC=16, KH=3, KW=3, stride=2, padding=1),
    dict(N=1, C=130, H=1, W=1, OC=16, KH=1, KW=1),  # one position: a tile of repeated lanes
    # output rows a half or a quarter of the kernel's NR wide (AVX-512: 16 / 8 float, 8
    # double; AVX2: 8 float, 4 double), over 32 tiles: tiles of two or four rows read in
    # place; row counts not a multiple of the group (a part-empty last tile), short
    # last row panels, unpadded inputs whose last tile reads past the end of x, K over
    # slices, dilation
    dict(N=6, C=20, H=15, W=16, OC=30, KH=3, KW=3, padding=(0, 1)),
    dict(N=12, C=9, H=9, W=8, OC=13, KH=3, KW=3, padding=1),
    dict(N=10, C=5, H=7, W=4, OC=7, KH=3, KW=3, padding=1),
    dict(N=5, C=16, H=16, W=18, OC=12, KH=2, KW=3),
    dict(N=12, C=8, H=11, W=10, OC=14, KH=3, KW=3),
    dict(N=12, C=40, H=10, W=12, OC=20, KH=3, KW=3, dilation=(2, 1), padding=(0, 3)),
    dict(N=8, C=128, H=16, W=16, OC=24, KH=3, KW=3, padding=1),
    # padded batches over 1 MB: each image padded (or phase-split) by the thread that
    # reads it, blocks ending with their image; ragged rows, an image split between tasks
    dict(N=5, C=64, H=30, W=27, OC=20, KH=3, KW=3, padding=1),
    dict(N=3, C=56, H=41, W=38, OC=9, KH=5, KW=5, padding=2, dilation=(1, 2)),
    dict(N=4, C=56, H=33, W=35, OC=12, KH=3, KW=3, stride=2, padding=1),
    # K over two of AVX-512's direct slices (up to 2304 taps each): rows tiling and row
    # groups with the edge rows, exact tiling with the weight read in place
    dict(N=2, C=260, H=6, W=9, OC=28, KH=3, KW=3, padding=1),
    dict(N=3, C=130, H=8, W=8, OC=40, KH=5, KW=5, padding=2),
    dict(N=1, C=300, H=5, W=5, OC=40, KH=3, KW=3, padding=1),
    # depthwise rows of two to four vectors (AVX-512: 32-63 floats, 16-31 doubles): two
    # output rows at a time, an odd last row, a channel multiplier, dilation
    dict(N=2, C=6, H=13, W=45, OC=12, KH=3, KW=3, groups=6, padding=1),
    dict(N=1, C=4, H=9, W=40, OC=4, KH=3, KW=5, groups=4, padding=(1, 4), dilation=(1, 2)),
    dict(N=2, C=3, H=6, W=20, OC=3, KH=3, KW=3, groups=3, padding=1),
    # rows of exactly two vectors (AVX-512 32 floats, AVX2 / portable 16): one block per row
    dict(N=1, C=2, H=5, W=32, OC=2, KH=3, KW=3, groups=2, padding=1),
    dict(N=1, C=2, H=7, W=16, OC=4, KH=3, KW=3, groups=2, padding=1),
    # rows of one to two vectors (AVX2 / portable: 8-15 floats, 4-7 doubles): four rows at
    # a time, the last 3, 2 or 1 as a smaller group
    dict(N=2, C=5, H=11, W=13, OC=10, KH=3, KW=3, groups=5, padding=1),
    dict(N=1, C=4, H=6, W=9, OC=4, KH=3, KW=3, groups=4, padding=1),
    dict(N=2, C=3, H=9, W=6, OC=3, KH=3, KW=3, groups=3, padding=1),
    dict(N=1, C=3, H=10, W=12, OC=6, KH=5, KW=3, groups=3, padding=(2, 1), dilation=(1, 2)),
    # exact tiling with output rows at least half a tile wide (AVX-512: 16 floats, 8
    # doubles): B rows read in place by the gap kernels, each half from two masked
    # loads, halves crossing a row end or an image; M % 12 == 4 (the edge split) and
    # fewer rows than a tile; the last partial tile on a packed panel
    dict(N=1, C=16, H=27, W=27, OC=64, KH=5, KW=5, padding=2),
    dict(N=3, C=8, H=7, W=21, OC=96, KH=3, KW=3, padding=1),
    dict(N=2, C=6, H=5, W=17, OC=40, KH=3, KW=3, padding=(1, 0), dilation=(1, 2)),
    # at most 6 output channels (AVX-512's edge pair: two position tiles per call, into
    # y where both are runs of it): row tiles with 28 valid lanes, an odd tile count
    # (the last one alone), pairs crossing images, K over two slices with the bias on the
    # last; rows of one whole tile; rows of a whole and a part tile; flat tiles with junk
    # lanes (into the block); the data gradient of a 1-channel input (1 row)
    dict(N=3, C=9, H=11, W=32, OC=6, KH=5, KW=5),
    dict(N=2, C=2, H=6, W=34, OC=5, KH=3, KW=3),
    dict(N=1, C=3, H=7, W=50, OC=3, KH=3, KW=3, padding=(0, 1)),
    dict(N=2, C=3, H=9, W=9, OC=4, KH=3, KW=3, padding=1),
    dict(N=2, C=1, H=12, W=30, OC=6, KH=5, KW=5),
    # weight gradient on the gather kernel over small images, a group of images per
    # kernel call (>= 1024 positions in all): groups shorter than the rest at the end
    # of an image chunk, groups of the convolution, the narrow tile
    dict(N=17, C=6, H=8, W=8, OC=32, KH=3, KW=3, padding=1, groups=2),
    dict(N=70, C=5, H=5, W=5, OC=40, KH=3, KW=3, padding=1),
    dict(N=40, C=3, H=6, W=7, OC=64, KH=3, KW=2, padding=(1, 0), dilation=(2, 1)),
]


@pytest.fixture
def direct():
    """The direct kernels themselves (auto would take Winograd on some of these shapes: tests/test_winograd.py)."""
    fastconv.set_conv_algorithm("direct")
    yield
    fastconv.set_conv_algorithm("auto")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", DIRECT_CASES, ids=cid)
def test_direct_tilings(cfg, dtype, isa, direct, rng):
    check_forward(cfg, dtype, rng)
    check_backward(cfg, dtype, rng)
    if dtype == np.float32:
        check_forward(cfg, dtype, rng, exact=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", BIG_CASES, ids=cid)
def test_large_and_blocked(cfg, dtype, isa, direct, rng):
    check_forward(cfg, dtype, rng)
    check_backward(cfg, dtype, rng)
    if dtype == np.float32:
        check_forward(cfg, dtype, rng, exact=True)
        check_backward(cfg, dtype, rng, exact=True)


# ---------------------------------------------------------------------------
# batch 0 / 1 / unbatched, bias, dtypes, layouts


@pytest.mark.parametrize("cfg", [case(), case(C=4, OC=4, groups=4, padding=1), case(bias=False, stride=2)], ids=cid)
def test_empty_batch(cfg, rng):
    x, w, b, dy = make_case(dict(cfg, N=0), np.float32, rng)
    o = opts_of(cfg)
    y = F.conv2d(x, w, b, **o)
    OH, OW = conv2d_out_size(cfg["H"], cfg["W"], (cfg["KH"], cfg["KW"]), **{k: v for k, v in o.items() if k != "groups"})
    assert y.shape == (0, cfg["OC"], OH, OW) and y.dtype == np.float32
    dx, dw, db = F.conv2d_backward(dy, x, w, **o)
    assert dx.shape == x.shape
    assert dw.shape == w.shape and np.array_equal(dw, np.zeros_like(w))
    assert db.shape == (cfg["OC"],) and np.array_equal(db, np.zeros(cfg["OC"], np.float32))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "cfg", [case(N=None, padding=1), case(N=None, C=4, OC=8, groups=4, stride=2), case(N=None, bias=False)], ids=cid
)
def test_unbatched(cfg, dtype, rng):
    x, w, b, dy = make_case(cfg, dtype, rng)
    assert x.ndim == 3
    y = check_forward(cfg, dtype, rng, x, w, b)
    assert y.ndim == 3
    batched = F.conv2d(x[None], w, b, **opts_of(cfg))
    assert np.array_equal(y, batched[0])
    dx, dw, db = check_backward(cfg, dtype, rng, (x, w, b, dy))
    assert dx.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_batch_one_matches_slices_of_a_batch(dtype, rng):
    cfg = case(N=4, padding=1)
    x, w, b, _ = make_case(cfg, dtype, rng)
    y = F.conv2d(x, w, b, padding=1)
    for n in range(4):
        yn = F.conv2d(x[n : n + 1], w, b, padding=1)
        assert_close(yn[0], y[n], conv2d_scales(x[n : n + 1], w, b, padding=1)[0], err_msg=f"image {n}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bias_is_added_per_channel(dtype, rng):
    cfg = case(padding=1)
    x, w, b, _ = make_case(cfg, dtype, rng)
    y0 = F.conv2d(x, w, None, padding=1)
    y1 = F.conv2d(x, w, b, padding=1)
    assert_close(y1 - y0, np.broadcast_to(b[None, :, None, None], y1.shape), rtol=RTOL[np.dtype(dtype)] * 100,
                 scale=conv2d_scales(x, w, b, padding=1))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_noncontiguous_inputs(layout, dtype, rng):
    cfg = case(C=4, OC=6, groups=2, padding=(1, 2), stride=(1, 2))
    x, w, b, dy = make_case(cfg, dtype, rng)
    want_y = F.conv2d(x, w, b, **opts_of(cfg))
    want_g = F.conv2d_backward(dy, x, w, **opts_of(cfg))
    xv, wv, bv, dyv = (as_layout(a, layout) for a in (x, w, b, dy))
    copies = [a.copy() for a in (xv, wv, bv, dyv)]
    y = F.conv2d(xv, wv, bv, **opts_of(cfg))
    grads = F.conv2d_backward(dyv, xv, wv, **opts_of(cfg))
    assert y.dtype == np.dtype(dtype) and y.flags.c_contiguous
    assert np.array_equal(y, want_y)
    for got, want in zip(grads, want_g):
        assert got.dtype == np.dtype(dtype) and got.flags.c_contiguous
        assert np.array_equal(got, want)
    for a, c in zip((xv, wv, bv, dyv), copies):  # inputs untouched
        assert np.array_equal(a, c)
    check_forward(cfg, dtype, rng, xv, wv, bv)


@pytest.mark.parametrize("which", ["x", "w", "dy"])
def test_views_into_larger_arrays(which, rng):
    # the brief's views: x[:, :, ::-1], x[..., ::2], a transposed x
    cfg = case(C=4, H=8, W=8, OC=5, padding=1)
    x, w, b, dy = make_case(cfg, np.float64, rng)
    big = rng.standard_normal((2, 4, 8, 16))
    if which == "x":
        for xv in (big[:, :, ::-1, ::2], big[..., ::2].transpose(0, 1, 3, 2), big[:, :, :, 3:11][:, ::-1]):
            check_forward(cfg, np.float64, rng, xv, w, b)
            check_backward(cfg, np.float64, rng, (xv, w, b, dy))
    elif which == "w":
        wv = rng.standard_normal((5, 4, 3, 6))[:, :, ::-1, ::2]
        check_forward(cfg, np.float64, rng, x, wv, b)
        check_backward(cfg, np.float64, rng, (x, wv, b, dy))
    else:
        dyv = rng.standard_normal((2, 5, 8, 16))[..., ::-2]
        check_backward(cfg, np.float64, rng, (x, w, b, dyv))


@pytest.mark.parametrize(
    "in_dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint16, np.bool_, np.float16], ids=lambda d: np.dtype(d).name
)
def test_integer_bool_half_inputs_compute_in_float32(in_dtype, rng):
    cfg = case(padding=1)
    x, w, b, dy = make_case(cfg, np.float64, rng, integer=True)
    if in_dtype in (np.uint8, np.uint16, np.bool_):
        x, w, b, dy = (np.abs(a) for a in (x, w, b, dy))
    x, w, b, dy = (a.astype(in_dtype) for a in (x, w, b, dy))
    y = F.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float32
    assert np.array_equal(y, conv2d_ref(x, w, b, padding=1))  # small integers: exact
    grads = F.conv2d_backward(dy, x, w, padding=1)
    for got, want in zip(grads, conv2d_grads_ref(dy, x, w, padding=1)):
        assert got.dtype == np.float32 and np.array_equal(got, want)
    # an integer input with a float32 weight is float32 too
    assert F.conv2d(x, w.astype(np.float32), padding=1).dtype == np.float32


def test_broadcast_and_readonly_inputs(rng):
    cfg = case(padding=1)
    x, w, b, dy = make_case(cfg, np.float32, rng)
    xb = np.broadcast_to(x[:1], x.shape)  # stride 0 along the batch, read-only
    check_forward(cfg, np.float32, rng, xb, w, b)
    check_backward(cfg, np.float32, rng, (xb, w, b, dy))
    for a in (x, w, b, dy):
        a.flags.writeable = False
    check_forward(cfg, np.float32, rng, x, w, b)
    check_backward(cfg, np.float32, rng, (x, w, b, dy))


def test_python_lists_are_accepted(rng):
    x = rng.integers(-2, 3, (1, 2, 4, 4)).tolist()
    w = rng.integers(-2, 3, (3, 2, 2, 2)).tolist()
    y = F.conv2d(x, w, [1, 2, 3])
    assert y.dtype == np.float32 and np.array_equal(y, conv2d_ref(x, w, [1, 2, 3]))


@pytest.mark.parametrize(
    "dts",
    [
        (np.float32, np.float64, None),
        (np.float64, np.float32, np.float32),
        (np.float32, np.float32, np.float64),
        (np.int32, np.float64, None),
        (np.float16, np.float64, np.float16),
    ],
    ids=lambda d: "-".join("none" if t is None else np.dtype(t).name for t in d),
)
def test_mixed_precision_computes_in_float64(dts, rng):
    cfg = case(padding=1, bias=dts[2] is not None)
    x, w, b, dy = make_case(cfg, np.float64, rng, integer=dts[0] in (np.int32,))
    x, w = x.astype(dts[0]), w.astype(dts[1])
    b = None if b is None else b.astype(dts[2])
    y = F.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float64
    assert_close(y, conv2d_ref(x, w, b, padding=1), conv2d_scales(x, w, b, padding=1))
    grads = F.conv2d_backward(dy.astype(np.float32), x, w, padding=1)
    for got in grads:  # the backward has no bias: float64 only if input or weight is
        assert got.dtype == (np.float64 if np.float64 in dts[:2] else np.float32)
    # float32 everywhere but a float64 grad_output: float64 gradients
    grads = F.conv2d_backward(dy, x.astype(np.float32), w.astype(np.float32), padding=1)
    for got, want in zip(grads, conv2d_grads_ref(dy, x.astype(np.float32), w.astype(np.float32), padding=1)):
        assert got.dtype == np.float64
        assert np.allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_complex_is_type_error(which, rng):
    x, w, b, _ = make_case(case(), np.float64, rng)
    args = {"input": x, "weight": w, "bias": b}
    args[which] = args[which].astype(np.complex64)
    with pytest.raises(TypeError, match="complex"):
        F.conv2d(args["input"], args["weight"], args["bias"])


def test_longdouble_computes_in_float64(rng):
    x, w, b, _ = make_case(case(), np.float64, rng)
    y = F.conv2d(x.astype(np.longdouble), w, b)
    assert y.dtype == np.float64
    assert_close(y, conv2d_ref(x, w, b), conv2d_scales(x, w, b))


def test_result_is_fresh_and_inputs_untouched(rng):
    cfg = case(C=1, OC=1, KH=1, KW=1)  # 1x1 conv: the output could alias the input's layout
    x, w, b, dy = make_case(cfg, np.float32, rng)
    copies = [a.copy() for a in (x, w, b, dy)]
    y = F.conv2d(x, w, b)
    grads = F.conv2d_backward(dy, x, w)
    for r in (y,) + tuple(grads):
        for a in (x, w, b, dy):
            assert not np.shares_memory(r, a)
    for a, c in zip((x, w, b, dy), copies):
        assert np.array_equal(a, c)


def test_nan_and_inf_propagate(isa, rng):
    cfg = case(N=1, C=2, H=8, W=9, OC=3, stride=2, dilation=(1, 2), padding=1)
    for groups, OC in ((1, 3), (2, 4)):
        x, w, b, _ = make_case(dict(cfg, groups=groups, OC=OC), np.float32, rng)
        x[0, 1, 3, 5] = np.nan  # both read by some tap (odd columns: stride 2, dilation 2, pad 1)
        x[0, 0, 6, 3] = np.inf
        o = dict(opts_of(cfg), groups=groups)
        y = F.conv2d(x, w, b, **o)
        ref = conv2d_ref(x, w, b, **o)
        assert np.array_equal(np.isnan(y), np.isnan(ref))
        assert np.array_equal(np.isposinf(y), np.isposinf(ref)) and np.array_equal(np.isneginf(y), np.isneginf(ref))
        assert np.isnan(y).any() and np.isfinite(y).any()
        fin = np.isfinite(ref)
        assert np.allclose(y[fin], ref[fin], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------
# backward: which gradients, central differences


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=3)), ids=str)
@pytest.mark.parametrize("cfg", [case(padding=1), case(C=4, OC=8, groups=4, stride=2)], ids=cid)
def test_needs_input_grad(cfg, flags, rng):
    x, w, b, dy = make_case(cfg, np.float64, rng)
    full = F.conv2d_backward(dy, x, w, **opts_of(cfg))
    part = F.conv2d_backward(dy, x, w, **opts_of(cfg), needs_input_grad=flags)
    assert len(part) == 3
    for need, got, want in zip(flags, part, full):
        if need:
            assert np.array_equal(got, want)
        else:
            assert got is None


GRADCHECK_CASES = [
    dict(N=2, C=2, H=5, W=4, OC=3, KH=3, KW=2, padding=1),
    dict(N=1, C=4, H=5, W=6, OC=4, KH=2, KW=2, groups=2, stride=2, padding=(1, 0)),
    dict(N=2, C=3, H=5, W=5, OC=6, KH=3, KW=3, groups=3, dilation=2, padding="same"),
    dict(N=1, C=2, H=4, W=5, OC=2, KH=2, KW=3, padding="same", dilation=(1, 2)),
    dict(N=None, C=2, H=4, W=4, OC=3, KH=3, KW=3, stride=(1, 2), padding=(2, 1), bias=True),
]


@pytest.mark.parametrize("cfg", GRADCHECK_CASES, ids=cid)
def test_backward_matches_central_differences(cfg, rng):
    x, w, b, dy = make_case(cfg, np.float64, rng)
    o = opts_of(cfg)
    grads = F.conv2d_backward(dy, x, w, **o)

    def f(x, w, b):
        return F.conv2d(x, w, b, **o)

    check_vjp(f, [x, w, b], dy, grads)


# ---------------------------------------------------------------------------
# thread count: results must be bitwise identical for 1 and 2 threads

THREAD_CASES = [
    dict(N=4, C=16, H=16, W=16, OC=24, KH=3, KW=3, padding=1),
    dict(N=3, C=64, H=9, W=10, OC=33, KH=3, KW=3, padding=1, stride=(1, 2)),  # K = 576
    dict(N=9, C=8, H=15, W=17, OC=20, KH=5, KW=5, padding=2, dilation=(1, 2)),  # chunked dw
    dict(N=2, C=32, H=30, W=30, OC=32, KH=3, KW=3, groups=32, padding=1),  # depthwise
    dict(N=2, C=16, H=20, W=20, OC=32, KH=3, KW=3, groups=16, stride=2, padding=1),  # depthwise x2
    dict(N=2, C=32, H=14, W=14, OC=48, KH=3, KW=3, groups=4, padding="same"),
    dict(N=1, C=64, H=28, W=28, OC=40, KH=1, KW=1),
    dict(N=2, C=8, H=48, W=48, OC=16, KH=3, KW=3, padding="same"),  # N*P > NC
    dict(N=9, C=256, H=3, W=3, OC=512, KH=3, KW=3, padding=1),  # large dw: fewer partial sums
    dict(N=17, C=8, H=8, W=8, OC=64, KH=3, KW=3, padding=1),  # dw on the gather kernel, image groups
    # batch 1: the padded rows in bands per thread, the weight packed per thread
    dict(N=1, C=16, H=32, W=32, OC=24, KH=3, KW=3, padding=1),
    dict(N=1, C=3, H=63, W=63, OC=16, KH=11, KW=11, stride=4, padding=2),  # phase planes in bands
    # batch 1, rows split between the threads: a padded copy per thread
    dict(N=1, C=16, H=20, W=20, OC=48, KH=3, KW=3, padding=1),
    # batch 1, few exact tiles: rows split between the threads where M is whole 12-row
    # tiles per thread on AVX-512's gap kernels (48), else a block of tiles per thread
    # (40, and the data gradients' 16 rows); the odd 23rd tile split by rows
    # (on AVX-512: 40 as 24 + 16 rows, the 64-row data gradient as 36 + 28)
    dict(N=1, C=16, H=27, W=27, OC=48, KH=5, KW=5, padding=2),
    dict(N=1, C=16, H=27, W=27, OC=40, KH=5, KW=5, padding=2),
    dict(N=1, C=64, H=27, W=27, OC=24, KH=5, KW=5, padding=2),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", THREAD_CASES, ids=cid)
def test_bitwise_identical_for_1_and_2_threads(cfg, dtype, isa, restore_runtime, rng):
    x, w, b, dy = make_case(cfg, dtype, rng)
    o = opts_of(cfg)
    out = {}
    for nt in (1, 2):
        fastconv.set_num_threads(nt)
        out[nt] = (F.conv2d(x, w, b, **o),) + tuple(F.conv2d_backward(dy, x, w, **o))
    for name, a, c in zip(("y", "dx", "dw", "db"), out[1], out[2]):
        assert np.array_equal(a, c), f"{name} differs between 1 and 2 threads (max {np.abs(a - c).max()})"
    check_forward(cfg, dtype, rng, x, w, b)


def test_thread_fixture_results_match_reference(num_threads, rng):
    cfg = THREAD_CASES[0]
    assert fastconv.get_num_threads() == num_threads
    check_forward(cfg, np.float32, rng)
    check_backward(cfg, np.float32, rng)


# ---------------------------------------------------------------------------
# randomized: hypothesis over shapes and options

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    given = None

if given is not None:

    @st.composite
    def conv_configs(draw):
        groups = draw(st.integers(1, 3))
        Cg, OCg = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        dil = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        kind = draw(st.sampled_from(["int", "pair", "valid", "same"]))
        if kind == "same":
            stride, padding = (1, 1), "same"
        elif kind == "int":
            padding = draw(st.integers(0, 3))
        elif kind == "pair":
            padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        else:
            padding = "valid"
        pt, pb, pl, pr = conv2d_pads(padding, (KH, KW), dil)
        H = draw(st.integers(max(1, dil[0] * (KH - 1) + 1 - pt - pb), 12))
        W = draw(st.integers(max(1, dil[1] * (KW - 1) + 1 - pl - pr), 12))
        return dict(
            N=draw(st.sampled_from([None, 0, 1, 2, 3])),
            C=Cg * groups,
            H=H,
            W=W,
            OC=OCg * groups,
            KH=KH,
            KW=KW,
            stride=stride,
            padding=padding,
            dilation=dil,
            groups=groups,
            bias=draw(st.booleans()),
        )

    @settings(max_examples=60, deadline=None)
    @given(cfg=conv_configs(), dtype=st.sampled_from(DTYPES), isa_name=st.sampled_from(_core.available_isas()),
           seed=st.integers(0, 2**32 - 1))
    def test_random_configs_forward_backward(cfg, dtype, isa_name, seed):
        before = _core.active_isa()
        _core.set_isa(isa_name)
        try:
            rng = np.random.default_rng(seed)
            case_ = make_case(cfg, dtype, rng)
            check_forward(cfg, dtype, rng, *case_[:3])
            check_backward(cfg, dtype, rng, case_)
        finally:
            _core.set_isa(before)

else:  # pragma: no cover

    def test_random_configs_forward_backward():
        pytest.skip("hypothesis is not installed (it belongs in the test extra)")


# ---------------------------------------------------------------------------
# PyTorch parity

TORCH_CASES = [
    case(padding=1),
    case(KH=2, KW=2, padding="same"),
    case(KH=4, KW=3, dilation=(1, 2), padding="same"),
    case(C=4, OC=8, groups=4, padding=1, stride=2),
    case(C=6, OC=9, groups=3, dilation=2, padding=(2, 1)),
    case(N=3, C=3, H=35, W=39, OC=8, KH=11, KW=11, stride=4, padding=2),
    case(C=5, OC=5, groups=5, KH=2, KW=2, padding="same", bias=False),
    case(N=None, padding="valid", stride=(2, 1)),
]


def _torch_conv(torch, x, w, b, dy, o):
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    with warnings.catch_warnings():  # torch warns about 'same' with even kernels (a copy on its side)
        warnings.simplefilter("ignore", UserWarning)
        ty = torch.nn.functional.conv2d(tx, tw, tb, **o)
    ty.backward(torch.tensor(dy))
    return (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())


def _random_torch_cases(n=12, seed=1234):
    r = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        groups = int(r.integers(1, 4))
        KH, KW = int(r.integers(1, 6)), int(r.integers(1, 6))
        dil = (int(r.integers(1, 3)), int(r.integers(1, 3)))
        same = r.random() < 0.3
        stride = (1, 1) if same else (int(r.integers(1, 4)), int(r.integers(1, 4)))
        padding = "same" if same else (int(r.integers(0, 3)), int(r.integers(0, 3)))
        H = int(r.integers(dil[0] * (KH - 1) + 1, 16))
        W = int(r.integers(dil[1] * (KW - 1) + 1, 16))
        out.append(dict(N=int(r.integers(1, 4)), C=groups * int(r.integers(1, 4)), H=H, W=W,
                        OC=groups * int(r.integers(1, 5)), KH=KH, KW=KW, stride=stride, padding=padding,
                        dilation=dil, groups=groups, bias=bool(r.random() < 0.7)))
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("cfg", TORCH_CASES + _random_torch_cases(), ids=cid)
def test_matches_pytorch(cfg, dtype, rng):
    torch = pytest.importorskip("torch")
    x, w, b, dy = make_case(cfg, dtype, rng)
    o = opts_of(cfg)
    ty, tdx, tdw, tdb = _torch_conv(torch, x, w, b, dy, o)
    y = F.conv2d(x, w, b, **o)
    dx, dw, db = F.conv2d_backward(dy, x, w, **o, needs_input_grad=(True, True, b is not None))
    sy, sx, sw, sb = conv2d_scales(x, w, b, dy, **o)
    rtol = 2 * RTOL[np.dtype(dtype)]  # both sides round
    assert y.shape == ty.shape
    assert_close(y, ty, sy, rtol=rtol, err_msg="forward vs torch")
    assert_close(dx, tdx, sx, rtol=rtol, err_msg="dx vs torch")
    assert_close(dw, tdw, sw, rtol=rtol, err_msg="dw vs torch")
    if b is not None:
        assert_close(db, tdb, sb, rtol=rtol, err_msg="db vs torch")


# ---------------------------------------------------------------------------
# extreme but valid options: sizes near the int64 limit must give the right (tiny) answer


@pytest.mark.parametrize("stride", [(2**32 + 1, 2**32 + 1), (2**62, 2**62), (65, 2**40)])
def test_huge_strides_on_both_axes(stride):
    # one output position; the strides' product (the phase-plane count) must not
    # overflow on the way to choosing the kernel (UBSan: signed overflow, found by
    # the fuzzer under the sanitizers)
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    w = np.full((2, 1, 2, 2), 0.5, np.float32)
    y = F.conv2d(x, w, stride=stride)
    assert y.shape == (1, 2, 1, 1) and np.array_equal(y[0, :, 0, 0], np.full(2, 0.5 * (0 + 1 + 4 + 5), np.float32))
    dx, dw, db = F.conv2d_backward(np.ones_like(y), x, w, stride=stride)
    want_dx = np.zeros_like(x)
    want_dx[0, 0, :2, :2] = 1.0
    assert np.array_equal(dx, want_dx) and np.array_equal(dw, np.broadcast_to(x[:, :, :2, :2], w.shape))


@pytest.mark.parametrize("groups", [1, 3])
def test_huge_dilation_with_same_padding(groups):
    # 'same' padding of a 2x1 kernel at dilation 2**62: both taps of every output
    # land in the padding, so y, dx and dw are zero and db is the sum of dy. The
    # weight gradient's padded-plane size had wrapped (12 elements) and its copy
    # wrote past them (a segfault, found by the fuzzer in a Release build).
    x = np.arange(3 * 12, dtype=np.float32).reshape(1, 3, 3, 4)
    w = np.ones((3, 3 // groups, 2, 1), np.float32)
    y = F.conv2d(x, w, padding="same", dilation=2**62, groups=groups)
    assert y.shape == x.shape and not y.any()
    dy = np.arange(y.size, dtype=np.float32).reshape(y.shape)
    dx, dw, db = F.conv2d_backward(dy, x, w, padding="same", dilation=2**62, groups=groups)
    assert dx.shape == x.shape and not dx.any()
    assert dw.shape == w.shape and not dw.any()
    assert np.array_equal(db, dy.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("axis", ["h", "w"])
@pytest.mark.parametrize("groups", [1, 2])
def test_huge_stride_and_padding(axis, groups):
    # W=3, pad 2**62-2 each side, stride 2**62: two output columns, at input columns
    # -(2**62-2) (padding) and 2. Near-limit arithmetic must not overflow.
    s, p = 2**62, 2**62 - 2
    x = np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 1, 1, 3)
    x = np.concatenate([x, 10 * x], axis=1)[:, :groups]
    w = np.ones((groups, 1, 1, 1), np.float32)
    stride, padding = (1, s), (0, p)
    if axis == "h":
        x = x.transpose(0, 1, 3, 2)
        stride, padding = stride[::-1], padding[::-1]
    y = F.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    want = np.array([[0.0, 3.0], [0.0, 30.0]], np.float32)[:groups].reshape(1, groups, 1, 2)
    if axis == "h":
        want = want.transpose(0, 1, 3, 2)
    assert np.array_equal(y, want), y
    dy = np.ones_like(want)
    dx, dw, db = F.conv2d_backward(dy, x, w, stride=stride, padding=padding, groups=groups)
    want_dx = np.zeros_like(x)
    if axis == "h":
        want_dx[:, :, 2, 0] = 1
    else:
        want_dx[:, :, 0, 2] = 1
    assert np.array_equal(dx, want_dx), dx
    assert np.array_equal(dw.ravel(), want.reshape(groups, 2)[:, 1]), dw
    assert np.array_equal(db, np.full(groups, 2, np.float32))

