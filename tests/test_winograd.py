"""Winograd F(2x2, 3x3) and F(2x2, 5x5): the float32 stride-1 forward path, its
data gradient (the stride-1 convolution of dy with the flipped weight) and, for
3x3, its weight gradient.

Forced with set_conv_algorithm("winograd") it is checked against the NumPy
float64 reference on shapes that reach every part of it (tiles across images
and chunk ends, odd output sizes, each padding, output-channel counts that end
in every kind of partial register tile), on every ISA. Its bound check must
hand inputs it cannot take exactly (Inf, NaN, values large enough to overflow
its transforms) to the direct path, so specials follow the IEEE rules of the
reference. The automatic choice must take it where it is meant to.
"""

import zlib

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
import fastconv.nn as nn
from fastconv import _core
from reference import assert_close, conv2d_grads_ref, conv2d_ref, conv2d_scales


@pytest.fixture
def algorithm():
    """Set the conv algorithm inside the test; restores 'auto' afterwards."""
    yield _core.set_conv_algorithm
    _core.set_conv_algorithm("auto")


def _case(rng, N, C, H, W, K, bias=True, dtype=np.float32, k=3):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C, k, k)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    return x, w, b


# (N, C, H, W, OC, padding): tiny planes (one tile, a partial tile), odd and
# even output sizes, no / symmetric / asymmetric / large / 'same' padding
# (per-side pads: test_per_side_pads),
# more tiles than a chunk, tile rows that cross panels and images, and OC
# whose last 12-row tile is full, 4 (the split pair), <= 8 (edge) or 9..11 rows.
SHAPES = [
    (1, 1, 1, 1, 1, 1),
    (1, 2, 2, 3, 3, 1),
    (2, 3, 5, 5, 4, 1),
    (3, 5, 6, 7, 8, 0),
    (1, 4, 9, 3, 11, 2),
    (2, 6, 8, 8, 12, (1, 2)),
    (2, 16, 11, 13, 20, "same"),
    (1, 3, 4, 4, 5, 3),
    (5, 8, 15, 17, 24, 1),
    (2, 32, 32, 32, 28, 1),
    (1, 64, 32, 32, 64, 1),
    (4, 20, 16, 16, 76, 1),
    (1, 9, 40, 70, 9, 1),
    (3, 128, 8, 8, 130, 1),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_winograd_matches_reference(shape, isa, algorithm):
    N, C, H, W, K, pad = shape
    rng = np.random.default_rng(zlib.crc32(str(shape).encode()))
    x, w, b = _case(rng, N, C, H, W, K, bias=K % 2 == 0)
    algorithm("winograd")
    y = F.conv2d(x, w, b, padding=pad)
    ref = conv2d_ref(x, w, b, padding=pad)
    assert y.dtype == np.float32
    assert_close(y, ref, conv2d_scales(x, w, b, padding=pad), err_msg=f"winograd {shape}")
    # the path did run: its rounding differs from the direct sum's
    algorithm("direct")
    direct = F.conv2d(x, w, b, padding=pad)
    if C * K > 1:
        assert not np.array_equal(y, direct), "forced winograd gave the direct path's bits"


@pytest.mark.parametrize("shape", [(2, 3, 5, 5, 4, 1), (3, 5, 6, 7, 8, 0), (1, 4, 9, 3, 11, 2), (2, 16, 11, 13, 20, 1),
                                   (2, 64, 16, 16, 24, 1), (1, 20, 8, 9, 76, 0), (2, 20, 33, 35, 76, 1),
                                   (9, 3, 30, 31, 5, 2)], ids=str)
def test_gradients(shape, isa, algorithm):
    N, C, H, W, K, pad = shape
    rng = np.random.default_rng(sum(shape[:5]))
    x, w, _ = _case(rng, N, C, H, W, K, bias=False)
    dy = rng.standard_normal(conv2d_ref(x, w, padding=pad).shape).astype(np.float32)
    algorithm("winograd")
    dx, dw, db = F.conv2d_backward(dy, x, w, padding=pad)
    rdx, rdw, rdb = conv2d_grads_ref(dy, x, w, padding=pad)
    sdx, sdw, sdb = conv2d_scales(x, w, None, dy, padding=pad)[1:]
    assert_close(dx, rdx, sdx, err_msg=f"dx {shape}")
    assert_close(dw, rdw, sdw, err_msg=f"dw {shape}")
    assert_close(db, rdb, sdb, err_msg=f"db {shape}")
    algorithm("direct")
    ddx, ddw, ddb = F.conv2d_backward(dy, x, w, padding=pad)
    assert not np.array_equal(dx, ddx) and not np.array_equal(dw, ddw)
    assert np.array_equal(db, ddb)  # (the bias gradient is a plain sum either way)


# 5x5: 6x6 input tiles (one partial, several), each padding up to 4, OC
# ending in every kind of register tile, AlexNet's conv2.
SHAPES5 = [
    (1, 1, 1, 1, 1, 2),
    (2, 3, 5, 6, 4, 2),
    (3, 5, 6, 7, 8, 0),
    (1, 4, 9, 3, 11, 4),
    (2, 16, 11, 13, 20, 1),
    (1, 9, 30, 40, 28, 2),
    (1, 64, 27, 27, 76, 2),
]


@pytest.mark.parametrize("shape", SHAPES5, ids=str)
def test_winograd_5x5(shape, isa, algorithm):
    N, C, H, W, K, pad = shape
    rng = np.random.default_rng(sum(shape))
    x, w, b = _case(rng, N, C, H, W, K, bias=K % 2 == 0, k=5)
    dy = rng.standard_normal(conv2d_ref(x, w, padding=pad).shape).astype(np.float32)
    algorithm("winograd")
    y = F.conv2d(x, w, b, padding=pad)
    dx, dw, db = F.conv2d_backward(dy, x, w, padding=pad)
    assert_close(y, conv2d_ref(x, w, b, padding=pad), conv2d_scales(x, w, b, padding=pad), err_msg=f"y {shape}")
    rdx, rdw, rdb = conv2d_grads_ref(dy, x, w, padding=pad)
    sdx, sdw, _ = conv2d_scales(x, w, None, dy, padding=pad)[1:]
    assert_close(dx, rdx, sdx, err_msg=f"dx {shape}")
    assert_close(dw, rdw, sdw, err_msg=f"dw {shape}")
    algorithm("direct")
    ddx, ddw, ddb = F.conv2d_backward(dy, x, w, padding=pad)
    if C * K > 1:  # (one 1x1 input and one channel: a single product, the same either way)
        assert not np.array_equal(y, F.conv2d(x, w, b, padding=pad)) and not np.array_equal(dx, ddx)
    assert np.array_equal(dw, ddw) and np.array_equal(db, ddb)  # no 5x5 Winograd weight gradient: the direct one


@pytest.mark.parametrize("pads", [(2, 0, 0, 1), (0, 2, 1, 0), (1, 0, 2, 2), (0, 0, 0, 3)], ids=str)
def test_per_side_pads(pads, isa, algorithm):
    """Four independent pads (the kernels' form; the public API reaches it through 'same')."""
    rng = np.random.default_rng(sum(pads))
    x, w, b = _case(rng, 2, 7, 7, 10, 16)
    t, bo, l, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    algorithm("winograd")
    y = _core.conv2d_forward(x, w, b, (1, 1), pads, (1, 1), 1)
    assert_close(y, conv2d_ref(xp, w, b), conv2d_scales(xp, w, b), err_msg=f"pads {pads}")
    algorithm("direct")
    assert not np.array_equal(y, _core.conv2d_forward(x, w, b, (1, 1), pads, (1, 1), 1))


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_small_integers_are_exact(pad, algorithm):
    """Halves of small integers and their sums are exact in float32: so is the result."""
    rng = np.random.default_rng(pad)
    x = rng.integers(-3, 4, (2, 10, 9, 12)).astype(np.float32)
    w = rng.integers(-3, 4, (14, 10, 3, 3)).astype(np.float32)
    b = rng.integers(-3, 4, 14).astype(np.float32)
    algorithm("winograd")
    assert np.array_equal(F.conv2d(x, w, b, padding=pad), conv2d_ref(x, w, b, padding=pad))


def test_bitwise_independent_of_threads_and_batch(restore_runtime, algorithm):
    rng = np.random.default_rng(7)
    x, w, b = _case(rng, 6, 24, 14, 18, 40)
    dy = rng.standard_normal((6, 40, 14, 18)).astype(np.float32)
    algorithm("winograd")
    out = {}
    for nt in (1, 2):
        fastconv.set_num_threads(nt)
        out[nt] = F.conv2d(x, w, b, padding=1)
        grads = F.conv2d_backward(dy, x, w, padding=1)
        if nt == 1:
            first = grads
        else:
            for name, a, c in zip(("dx", "dw", "db"), first, grads):
                assert np.array_equal(a, c), f"{name} differs between 1 and 2 threads"
    assert np.array_equal(out[1], out[2])
    for n in range(x.shape[0]):  # tiles of one image alone land in other chunks and lanes
        assert np.array_equal(F.conv2d(x[n : n + 1], w, b, padding=1)[0], out[2][n])


def test_out_argument(algorithm):
    rng = np.random.default_rng(3)
    x, w, b = _case(rng, 2, 16, 12, 12, 24)
    algorithm("winograd")
    want = F.conv2d(x, w, b, padding=1)
    out = np.full_like(want, np.nan)
    assert F.conv2d(x, w, b, padding=1, out=out) is out
    assert np.array_equal(out, want)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("where", ["x", "w", "b"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_specials_follow_the_reference(where, value, k, algorithm):
    """Inf - Inf in the transforms would give NaN where the direct sum gives Inf: such calls fall back."""
    rng = np.random.default_rng(11)
    x, w, b = _case(rng, 2, 6, 9, 8, 10, k=k)
    {"x": x[1, 2], "w": w[3, 1], "b": b[4:5]}[where].flat[5 if where != "b" else 0] = value
    algorithm("winograd")
    pad = k // 2
    y = F.conv2d(x, w, b, padding=pad)
    with np.errstate(all="ignore"):
        ref = conv2d_ref(x, w, b, padding=pad)
        scale = conv2d_scales(x, w, b, padding=pad)
    for test in (np.isnan, np.isposinf, np.isneginf):
        assert np.array_equal(test(y), test(ref)), f"{test.__name__} positions differ"
    assert (~np.isfinite(ref)).any() and np.isfinite(ref).any()
    fin = np.isfinite(ref)
    assert_close(y[fin], ref[fin], scale[fin])


@pytest.mark.parametrize("where", ["x", "dy"])
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_gradient_specials_follow_the_reference(where, value, algorithm):
    rng = np.random.default_rng(13)
    x, w, _ = _case(rng, 2, 6, 9, 8, 10, bias=False)
    dy = rng.standard_normal((2, 10, 9, 8)).astype(np.float32)
    {"x": x, "dy": dy}[where][1, 3, 4, 5] = value
    algorithm("winograd")
    grads = F.conv2d_backward(dy, x, w, padding=1)
    with np.errstate(all="ignore"):
        refs = conv2d_grads_ref(dy, x, w, padding=1)
    for name, g, r in zip(("dx", "dw", "db"), grads, refs):
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(g), test(r)), f"{name}: {test.__name__} positions differ"


@pytest.mark.parametrize("k", [3, 5])
def test_values_that_would_overflow_the_transforms(k, algorithm):
    """|x| near FLT_MAX: d0 - d2 overflows in the input transform, the direct sums do not."""
    rng = np.random.default_rng(5)
    x = (np.sign(rng.standard_normal((1, 3, 6, 6))) * 3e38).astype(np.float32)
    w = (rng.standard_normal((4, 3, k, k)) * 1e-4).astype(np.float32)
    algorithm("winograd")
    y = F.conv2d(x, w, padding=k // 2)
    ref = conv2d_ref(x, w, padding=k // 2)
    assert np.isfinite(ref).all() and np.isfinite(y).all()
    assert_close(y, ref, conv2d_scales(x, w, padding=k // 2))


def test_automatic_choice(algorithm):
    """auto takes Winograd on a wide 3x3 layer (its bits, not the direct ones), not where it does not apply."""
    rng = np.random.default_rng(2)
    x, w, b = _case(rng, 4, 32, 16, 16, 32)
    algorithm("winograd")
    wino = F.conv2d(x, w, b, padding=1)
    algorithm("direct")
    direct = F.conv2d(x, w, b, padding=1)
    algorithm("auto")
    assert np.array_equal(F.conv2d(x, w, b, padding=1), wino)
    # float64, stride 2, dilation 2, groups: never Winograd, even when forced
    for kw in (dict(stride=2), dict(dilation=2), dict(groups=2)):
        wk = w[:, : 32 // kw.get("groups", 1)]
        algorithm("direct")
        want = F.conv2d(x, wk, b, padding=1, **kw)
        algorithm("winograd")
        assert np.array_equal(F.conv2d(x, wk, b, padding=1, **kw), want), kw
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    algorithm("direct")
    want = F.conv2d(x64, w64, padding=1)
    algorithm("winograd")
    assert np.array_equal(F.conv2d(x64, w64, padding=1), want)
    assert not np.array_equal(wino, direct)


def test_automatic_choice_of_the_weight_gradient(algorithm):
    """auto takes the Winograd weight gradient from 256 tiles with 32 channels each way, the direct one below."""
    rng = np.random.default_rng(3)

    def dw_under(name, x, w, dy):
        algorithm(name)
        return F.conv2d_backward(dy, x, w, padding=1, needs_input_grad=(False, True, False))[1]

    for n, c, oc, takes in ((4, 32, 32, True), (1, 32, 32, False), (4, 16, 32, False), (4, 32, 16, False)):
        x, w, _ = _case(rng, n, c, 16, 16, oc)
        dy = rng.standard_normal((n, oc, 16, 16)).astype(np.float32)
        wino, direct, auto = (dw_under(a, x, w, dy) for a in ("winograd", "direct", "auto"))
        assert not np.array_equal(wino, direct)
        assert np.array_equal(auto, wino if takes else direct), (n, c, oc)


@pytest.mark.parametrize("k", [3, 5])
def test_prepacked_module_keeps_the_transformed_weight(k, algorithm):
    fastconv.manual_seed(0)
    conv = nn.Conv2d(16, 24, k, padding=k // 2).eval()
    x = np.random.default_rng(1).standard_normal((2, 16, 12, 12)).astype(np.float32)
    algorithm("winograd")
    with fastconv.no_grad():
        plain = np.asarray(conv(x).data)
        conv.prepack()
        first = np.asarray(conv(x).data)
        entries = conv._pack.entries
        second = np.asarray(conv(x).data)
    assert entries == 1 and conv._pack.entries == 1  # built once, then reused
    assert np.array_equal(first, plain) and np.array_equal(second, plain)
    assert_close(plain, conv2d_ref(x, conv.weight.data, conv.bias.data, padding=k // 2),
                 conv2d_scales(x, conv.weight.data, conv.bias.data, padding=k // 2))


def test_algorithm_names(algorithm):
    for name in ("auto", "im2col", "direct", "winograd"):
        algorithm(name)
        assert _core.get_conv_algorithm() == name
    with pytest.raises(ValueError, match="'auto', 'im2col', 'direct' or 'winograd', got 'fft'"):
        _core.set_conv_algorithm("fft")


def test_public_setting(algorithm):
    assert fastconv.CONV_ALGORITHMS == ("auto", "direct", "winograd", "im2col")
    for name in fastconv.CONV_ALGORITHMS:
        fastconv.set_conv_algorithm(name)
        assert fastconv.get_conv_algorithm() == name == _core.get_conv_algorithm()
    with pytest.raises(ValueError, match=r"set_conv_algorithm: name must be one of 'auto', .* got 'Winograd'"):
        fastconv.set_conv_algorithm("Winograd")
    with pytest.raises(TypeError, match="set_conv_algorithm: name must be a str, got int"):
        fastconv.set_conv_algorithm(3)
    assert fastconv.get_conv_algorithm() == "im2col"  # a rejected call changes nothing
