"""Errors of conv2d, conv2d_backward, linear and linear_backward (API.md section 6).

Every error is a ValueError (shapes, sizes, option values) or a TypeError
(types), raised before any work, with a message naming the argument; sizes
that cannot be represented or allocated are a MemoryError. Never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv.functional as F

X = np.zeros((2, 4, 8, 8), np.float32)
W = np.zeros((6, 2, 3, 3), np.float32)  # groups=2
B = np.zeros(6, np.float32)
DY = np.zeros((2, 6, 6, 6), np.float32)  # output of conv2d(X, W, groups=2)

# the broadcast views below are a few bytes; copying one would need petabytes,
# more than any machine can map, so a premature copy fails fast instead of swapping
HUGE = 2**50


def huge(shape):
    return np.broadcast_to(np.float32(0), shape)


def conv(**kw):
    args = dict(input=X, weight=W, bias=B, groups=2)
    args.update(kw)
    return F.conv2d(args.pop("input"), args.pop("weight"), args.pop("bias"), **args)


def conv_bwd(**kw):
    args = dict(grad_output=DY, input=X, weight=W, groups=2)
    args.update(kw)
    return F.conv2d_backward(args.pop("grad_output"), args.pop("input"), args.pop("weight"), **args)


def test_baseline_calls_are_valid():
    assert conv().shape == DY.shape
    assert [g.shape for g in conv_bwd()] == [X.shape, W.shape, B.shape]


# ---------------------------------------------------------------------------
# ValueError: shapes and option values

VALUE_ERRORS = [
    ("channels not divisible by groups", dict(groups=3, weight=np.zeros((6, 1, 3, 3))), r"input channels \(4\).*divisible by groups \(3\)"),
    ("out_channels not divisible by groups", dict(weight=np.zeros((5, 2, 3, 3)), bias=None), r"out_channels \(5\).*divisible by groups \(2\)"),
    ("weight in-channels mismatch", dict(groups=1), r"weight expects 2 input channels per group.*\(2, 4, 8, 8\).*\(6, 2, 3, 3\)"),
    ("weight in-channels mismatch, groups", dict(weight=np.zeros((6, 3, 3, 3))), r"weight expects 3 input channels per group"),
    ("kernel larger than input", dict(weight=np.zeros((6, 2, 9, 3))), r"larger than the padded input \(8, 8\)"),
    ("dilated kernel larger than input", dict(dilation=4), r"spans \(9, 9\), larger than the padded input"),
    ("kernel larger than padded input", dict(weight=np.zeros((6, 2, 11, 3)), padding=1), r"larger than the padded input \(10, 10\)"),
    ("stride 0", dict(stride=0), r"stride must be positive"),
    ("stride negative", dict(stride=(1, -1)), r"stride must be positive"),
    ("dilation 0", dict(dilation=0), r"dilation must be positive"),
    ("dilation negative", dict(dilation=(-2, 1)), r"dilation must be positive"),
    ("negative padding", dict(padding=-1), r"padding must be non-negative"),
    ("negative padding pair", dict(padding=(0, -2)), r"padding must be non-negative"),
    ("same with stride 2", dict(padding="same", stride=2), r"padding='same'.*strided"),
    ("same with stride (1, 2)", dict(padding="same", stride=(1, 2)), r"padding='same'.*strided"),
    ("unknown padding string", dict(padding="full"), r"padding must be an int, a pair of ints, 'valid' or 'same', got 'full'"),
    ("padding string is case sensitive", dict(padding="SAME"), r"padding must be .*'SAME'"),
    ("stride triple", dict(stride=(1, 2, 3)), r"stride must be an int or a pair"),
    ("padding triple", dict(padding=(1, 2, 3)), r"padding must be an int or a pair"),
    ("groups 0", dict(groups=0), r"groups must be a positive integer"),
    ("groups negative", dict(groups=-2), r"groups must be a positive integer"),
    ("input 2-D", dict(input=np.zeros((8, 8))), r"3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got shape \(8, 8\)"),
    ("input 5-D", dict(input=np.zeros((1, 2, 4, 8, 8))), r"3-D .* or 4-D .* got shape \(1, 2, 4, 8, 8\)"),
    ("input 1-D", dict(input=np.zeros(8)), r"got shape \(8,\)"),
    ("weight 3-D", dict(weight=np.zeros((6, 3, 3))), r"weight must be 4-D.*got shape \(6, 3, 3\)"),
    ("weight 5-D", dict(weight=np.zeros((6, 2, 3, 3, 1))), r"weight must be 4-D"),
    ("bias 2-D", dict(bias=np.zeros((1, 6))), r"bias must be 1-D.*\(1, 6\)"),
    ("bias 0-D", dict(bias=np.float32(0)), r"bias must be 1-D"),
    ("bias length", dict(bias=np.zeros(5)), r"bias must have shape \(6,\).*got \(5,\)"),
    ("zero-size kernel", dict(weight=np.zeros((6, 2, 0, 3))), r"kernel size must be positive"),
    ("zero channels", dict(input=np.zeros((2, 0, 8, 8)), weight=np.zeros((6, 0, 3, 3)), groups=1), r"non-zero channels"),
    ("zero height", dict(input=np.zeros((2, 4, 0, 8))), r"non-zero channels, height and width"),
    ("padding beyond int64", dict(padding=2**63), r"padding=.* out of range"),
    ("stride beyond int64", dict(stride=2**70), r"stride=.* out of range"),
]


@pytest.mark.parametrize("kw,match", [c[1:] for c in VALUE_ERRORS], ids=[c[0] for c in VALUE_ERRORS])
def test_conv2d_value_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        conv(**kw)


@pytest.mark.parametrize("kw,match", [c[1:] for c in VALUE_ERRORS if "bias" not in c[1]],
                         ids=[c[0] for c in VALUE_ERRORS if "bias" not in c[1]])
def test_conv2d_backward_value_errors(kw, match):
    # the backward validates the same options (grad_output shape aside)
    kw = {k: v for k, v in kw.items()}
    with pytest.raises(ValueError, match=match):
        conv_bwd(**kw)


def test_unbatched_input_with_bad_groups():
    with pytest.raises(ValueError, match=r"divisible by groups"):
        F.conv2d(X[0], W, groups=3)


# ---------------------------------------------------------------------------
# TypeError: types

TYPE_ERRORS = [
    ("float stride", dict(stride=1.5), r"stride must be an int, got float"),
    ("integral float stride", dict(stride=2.0), r"stride must be an int, got float"),
    ("bool stride", dict(stride=True), r"stride must be an int, got bool"),
    ("bool in stride pair", dict(stride=(1, True)), r"stride must be an int, got bool"),
    ("numpy bool stride", dict(stride=np.bool_(True)), r"stride must be an int, got bool"),
    ("string stride", dict(stride="2"), r"stride must be an int"),
    ("None stride", dict(stride=None), r"stride must be an int"),
    ("float dilation", dict(dilation=1.0), r"dilation must be an int"),
    ("float padding", dict(padding=1.0), r"padding must be an int"),
    ("bool padding", dict(padding=False), r"padding must be an int, got bool"),
    ("float groups", dict(groups=2.0), r"groups must be an int"),
    ("bool groups", dict(groups=True), r"groups must be an int, got bool"),
    ("complex input", dict(input=X.astype(np.complex64)), r"input is complex"),
    ("complex weight", dict(weight=W.astype(np.complex128)), r"weight is complex"),
    ("complex bias", dict(bias=B.astype(np.complex64)), r"bias is complex"),
    ("object input", dict(input=X.astype(object)), r"input has unsupported dtype object"),
    ("object weight", dict(weight=W.astype(object)), r"weight has unsupported dtype object"),
    ("string input", dict(input=X.astype(str)), r"input has unsupported dtype"),
    ("datetime input", dict(input=X.astype("M8[s]")), r"input has unsupported dtype"),
    ("None input", dict(input=None), r"input"),
    ("ragged input", dict(input=[[1.0, 2.0], [3.0]]), r"input could not be converted"),
]


@pytest.mark.parametrize("kw,match", [c[1:] for c in TYPE_ERRORS], ids=[c[0] for c in TYPE_ERRORS])
def test_conv2d_type_errors(kw, match):
    with pytest.raises(TypeError, match=match):
        conv(**kw)


@pytest.mark.parametrize(
    "kw,match",
    [c[1:] for c in TYPE_ERRORS if "bias" not in c[1]] + [(dict(grad_output=DY.astype(np.complex64)), r"grad_output is complex")],
    ids=[c[0] for c in TYPE_ERRORS if "bias" not in c[1]] + ["complex grad_output"],
)
def test_conv2d_backward_type_errors(kw, match):
    with pytest.raises(TypeError, match=match):
        conv_bwd(**kw)


def test_numpy_integer_options_are_accepted():
    y = conv(stride=np.int64(1), padding=(np.int32(1), np.uint8(0)), dilation=np.int16(1), groups=np.int64(2))
    assert y.shape == (2, 6, 8, 6)


# ---------------------------------------------------------------------------
# backward: grad_output shape, needs_input_grad


@pytest.mark.parametrize(
    "dy,match",
    [
        (np.zeros((2, 6, 7, 7)), r"grad_output has shape \(2, 6, 7, 7\), expected \(2, 6, 6, 6\)"),
        (np.zeros((2, 5, 6, 6)), r"grad_output has shape \(2, 5, 6, 6\), expected \(2, 6, 6, 6\)"),
        (np.zeros((1, 6, 6, 6)), r"grad_output has shape \(1, 6, 6, 6\), expected \(2, 6, 6, 6\)"),
        (np.zeros((6, 6, 6)), r"grad_output has shape \(6, 6, 6\)"),
        (np.zeros((2, 6, 6, 6, 1)), r"grad_output has shape"),
        (np.zeros(()), r"grad_output has shape"),
    ],
    ids=["spatial", "channels", "batch", "3-D", "5-D", "scalar"],
)
def test_conv2d_backward_grad_output_shape(dy, match):
    with pytest.raises(ValueError, match=match):
        conv_bwd(grad_output=dy)


def test_conv2d_backward_unbatched_grad_output_shape():
    with pytest.raises(ValueError, match=r"grad_output must be 3-D for an unbatched input, got shape \(1, 6, 6, 6\)"):
        conv_bwd(input=X[0], grad_output=DY[:1])
    with pytest.raises(ValueError, match=r"grad_output has shape \(6, 6, 5\), expected \(6, 6, 6\)"):
        conv_bwd(input=X[0], grad_output=DY[0, :, :, :5])


@pytest.mark.parametrize("flags", [(True,), (True, True), (True, True, True, True)], ids=len)
def test_conv2d_backward_needs_input_grad_length(flags):
    # a wrong-length flag tuple is a ValueError naming the argument, not a bare unpacking error
    with pytest.raises(ValueError, match=r"needs_input_grad"):
        conv_bwd(needs_input_grad=flags)


# ---------------------------------------------------------------------------
# sizes that cannot be represented or allocated: MemoryError / ValueError, never a crash

TINY = np.zeros((1, 1, 4, 4), np.float32)
ONE = np.ones((1, 1, 1, 1), np.float32)


@pytest.mark.parametrize(
    "kw",
    [
        dict(padding=2**40),  # output 2**41 x 2**41 elements: int64 overflow of the element count
        dict(padding=2**62),  # padded height overflows int64
        dict(padding=(2**61, 0)),  # 2**62 rows of output
        dict(padding=2**17),  # 2**36 elements: representable, too big to allocate here
    ],
    ids=["pad2^40", "pad2^62", "pad2^61", "pad2^17"],
)
def test_conv2d_huge_output_is_memory_error(kw):
    with pytest.raises(MemoryError):
        F.conv2d(TINY, ONE, **kw)
    # the backward checks sizes first: an output size that overflows int64 is a MemoryError
    # whatever grad_output is; a merely huge one is reported as grad_output's wrong shape
    overflow = max(np.ravel(kw["padding"])) >= 2**40
    with pytest.raises(MemoryError if overflow else ValueError):
        F.conv2d_backward(TINY, TINY, ONE, **kw)


def test_conv2d_huge_weight_view_is_memory_error():
    # consistent shapes, but the output (1, 2**50, 4, 4) cannot exist
    with pytest.raises((MemoryError, ValueError)):
        F.conv2d(TINY, huge((HUGE, 1, 1, 1)))


def test_conv2d_huge_input_view_is_memory_error():
    with pytest.raises((MemoryError, ValueError)):
        F.conv2d(huge((HUGE, 1, 4, 4)), ONE)


@pytest.mark.parametrize(
    "args,match",
    [
        ((TINY[:, [0, 0, 0]], huge((HUGE, 1, 1, 1))), r"weight expects 1 input channels per group"),
        ((huge((1, HUGE, 4, 4)), ONE), r"weight expects 1 input channels per group"),
        ((TINY, huge((2, 1, HUGE, 1))), r"larger than the padded input"),
        ((TINY, np.zeros((3, 1, 1, 1)), huge((HUGE,))), r"bias must have shape \(3,\)"),
    ],
    ids=["weight", "input", "kernel", "bias"],
)
def test_conv2d_shape_errors_come_before_copying_huge_views(args, match):
    # a shape error is a ValueError naming the shapes even when an argument is a
    # huge broadcast view: validation must not start by materialising it
    with pytest.raises(ValueError, match=match):
        F.conv2d(*args)


def test_conv2d_huge_dilation_is_value_error():
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(TINY, np.zeros((1, 1, 2, 2), np.float32), dilation=2**62)


def test_conv2d_huge_groups_is_value_error():
    with pytest.raises(ValueError, match="divisible by groups"):
        F.conv2d(TINY, ONE, groups=2**62)


# ---------------------------------------------------------------------------
# linear

LX = np.zeros((4, 8), np.float32)
LW = np.zeros((6, 8), np.float32)
LB = np.zeros(6, np.float32)

LINEAR_VALUE_ERRORS = [
    ("in_features mismatch", (np.zeros((4, 7)), LW, None), r"input has 7 features .*\(4, 7\).*\(6, 8\) expects in_features=8"),
    ("weight 1-D", (LX, LW[0], None), r"weight must be 2-D .*got shape \(8,\)"),
    ("weight 3-D", (LX, LW[None], None), r"weight must be 2-D .*got shape \(1, 6, 8\)"),
    ("bias 2-D", (LX, LW, LB[None]), r"bias must be 1-D .*\(1, 6\)"),
    ("bias length", (LX, LW, LB[:5]), r"bias must have shape \(6,\).*got \(5,\)"),
    ("scalar input", (np.float32(1), LW, None), r"input must have at least 1 dimension"),
]


@pytest.mark.parametrize("args,match", [c[1:] for c in LINEAR_VALUE_ERRORS], ids=[c[0] for c in LINEAR_VALUE_ERRORS])
def test_linear_value_errors(args, match):
    with pytest.raises(ValueError, match=match):
        F.linear(*args)
    if args[2] is None:
        with pytest.raises(ValueError, match=match.replace("linear", "linear_backward")):
            F.linear_backward(np.zeros((4, 6)), args[0], args[1])


@pytest.mark.parametrize(
    "args,match",
    [
        ((LX.astype(np.complex64), LW), r"input is complex"),
        ((LX, LW + 0j), r"weight is complex"),
        ((LX, LW, LB + 0j), r"bias is complex"),
        ((LX.astype(object), LW), r"input has unsupported dtype object"),
        ((LX, LW.astype("m8[s]")), r"weight has unsupported dtype"),
        (([[1.0], [1.0, 2.0]], LW), r"input could not be converted"),
    ],
    ids=["complex input", "complex weight", "complex bias", "object", "timedelta", "ragged"],
)
def test_linear_type_errors(args, match):
    with pytest.raises(TypeError, match=match):
        F.linear(*args)


@pytest.mark.parametrize(
    "dy,match",
    [
        (np.zeros((4, 5)), r"grad_output has shape \(4, 5\), expected \(4, 6\)"),
        (np.zeros((4, 6, 1)), r"grad_output has shape \(4, 6, 1\), expected \(4, 6\)"),
        (np.zeros((3, 6)), r"grad_output has shape \(3, 6\)"),
        (np.zeros(6), r"grad_output has shape \(6,\)"),
    ],
)
def test_linear_backward_grad_output_shape(dy, match):
    with pytest.raises(ValueError, match=match):
        F.linear_backward(dy, LX, LW)


def test_linear_backward_type_errors():
    with pytest.raises(TypeError, match="grad_output is complex"):
        F.linear_backward(np.zeros((4, 6), np.complex64), LX, LW)


@pytest.mark.parametrize("flags", [(True,), (True, False), (True, True, True, True)], ids=len)
def test_linear_backward_needs_input_grad_length(flags):
    with pytest.raises(ValueError, match=r"needs_input_grad"):
        F.linear_backward(np.zeros((4, 6)), LX, LW, needs_input_grad=flags)


def test_linear_huge_views():
    with pytest.raises((MemoryError, ValueError)):
        F.linear(LX, huge((HUGE, 8)))  # output (4, 2**50)
    with pytest.raises((MemoryError, ValueError)):
        F.linear(huge((HUGE, 8)), LW)
    # inconsistent shapes: the ValueError comes first, whatever the views would cost to copy
    with pytest.raises(ValueError, match=r"expects in_features=7"):
        F.linear(LX, huge((HUGE, 7)))
