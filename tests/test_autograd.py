"""Tensor and the autograd engine: every op's gradient against float64 finite differences."""

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import Tensor, no_grad, tensor

from ref_autograd import assert_close, numeric_grad

rng = np.random.default_rng(1234)


def check(fn, *shapes, positive=False, seed_grad=True):
    """fn(*tensors) -> Tensor; compare d sum(fn * w) / d inputs with finite differences."""
    arrays = [rng.standard_normal(s) for s in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    ts = [tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()

    for a, t in zip(arrays, ts):
        def f():
            return float(np.sum(fn(*[tensor(b) for b in arrays]).data * w))

        assert_close(t.grad, numeric_grad(f, a), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "fn,shapes",
    [
        (lambda a, b: a + b, [(3, 4), (4,)]),
        (lambda a, b: a - b, [(2, 1, 3), (4, 3)]),
        (lambda a, b: a * b, [(3, 4), (3, 1)]),
        (lambda a, b: a / b, [(3, 4), (4,)]),
        (lambda a, b: a @ b, [(3, 4), (4, 5)]),
        (lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
        (lambda a, b: a @ b, [(4,), (4, 3)]),
        (lambda a, b: a @ b, [(3, 4), (4,)]),
        (lambda a: -a * 2.0 + 1.0, [(5,)]),
        (lambda a: 3.0 - a / 2.0, [(2, 3)]),
        (lambda a: 2.0 / a, [(2, 3)]),
    ],
)
def test_binary_ops(fn, shapes):
    check(fn, *shapes, positive=True)


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a.sum(),
        lambda a: a.sum(dim=1),
        lambda a: a.sum(1, keepdim=True),
        lambda a: a.sum(dim=(0, 2)),
        lambda a: a.mean(),
        lambda a: a.mean(dim=-1, keepdims=True),
        lambda a: a.reshape(6, 4),
        lambda a: a.view(-1),
        lambda a: a.flatten(1),
        lambda a: a.transpose(0, 2),
        lambda a: a.permute(2, 0, 1),
        lambda a: a[1],
        lambda a: a[:, 1:3, ::2],
        lambda a: a[..., -1],
        lambda a: a ** 2,
        lambda a: a.exp(),
        lambda a: (a * a + 1).log(),
        lambda a: a.T,
    ],
)
def test_unary_ops(fn):
    check(fn, (2, 3, 4))


def test_cat_and_stack():
    check(lambda a, b: fastconv.cat([a, b * 2], dim=1), (2, 3, 4), (2, 5, 4))
    check(lambda a, b: fastconv.stack([a, b], dim=0), (3, 2), (3, 2))
    with pytest.raises(ValueError, match="must match except in dimension 1"):
        fastconv.cat([tensor(np.zeros((2, 3))), tensor(np.zeros((3, 3)))], dim=1)


def test_reused_tensor_accumulates():
    a = tensor(rng.standard_normal((3,)), requires_grad=True)
    y = (a * a + a * 3).sum()
    y.backward()
    assert_close(a.grad, 2 * a.data + 3)
    y2 = (a * 2).sum()
    y2.backward()  # leaf gradients accumulate across backward calls
    assert_close(a.grad, 2 * a.data + 5)


def test_diamond_graph():
    a = tensor(rng.standard_normal((4,)), requires_grad=True)
    b = a * 2
    c = b + b * b
    c.sum().backward()
    assert_close(a.grad, 2 + 8 * a.data)


def test_no_grad_records_nothing():
    a = tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = a * 2
    assert not y.requires_grad and y.grad_fn is None

    @no_grad()
    def f(t):
        return t * 3

    assert not f(a).requires_grad
    assert (a * 2).requires_grad


def test_backward_errors():
    a = tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (a * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor(np.ones(1)).backward()
    y = (a * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    y = (a * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(a.grad, np.full(3, 6.0))


def test_explicit_grad_argument():
    a = tensor(rng.standard_normal((2, 3)), requires_grad=True)
    g = rng.standard_normal((2, 3))
    (a * 4).backward(g)
    assert_close(a.grad, 4 * g)


def test_tensor_basics():
    t = tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == np.float32 and t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4
    assert tensor([1, 2]).dtype == np.int64
    assert tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert np.asarray(t) is t.data
    assert t.numpy() is t.data
    assert t.detach().data is t.data and not t.detach().requires_grad
    assert (t + np.ones(2)).shape == (2, 2)
    assert isinstance(np.ones(2) + t, Tensor)
    assert float(t.sum().item()) == 10.0
    with pytest.raises(TypeError, match="floating point"):
        tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="complex"):
        tensor(np.zeros(2, complex))
    assert "grad_fn" in repr(tensor([1.0], requires_grad=True) * 2)


def test_dtype_casts_are_differentiable():
    a = tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    y = a.double() * 2
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32
    assert_close(a.grad, np.full(3, 2.0))


def test_functional_ops_return_tensors_only_for_tensor_inputs():
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert isinstance(F.conv2d(x, w), np.ndarray)
    y = F.conv2d(tensor(x), w)
    assert isinstance(y, Tensor) and not y.requires_grad
    y = F.conv2d(x, tensor(w, requires_grad=True))
    assert y.requires_grad


@pytest.mark.parametrize(
    "name,fn,shapes",
    [
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2), [(2, 4, 7, 8), (6, 2, 3, 2), (6,)]),
        ("conv2d_groups", lambda x, w: F.conv2d(x, w, None, 1, "same", 1, 2), [(1, 4, 5, 5), (4, 2, 2, 3)]),
        ("linear", lambda x, w, b: F.linear(x, w, b), [(3, 2, 5), (4, 5), (4,)]),
        ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 3, 7, 6)]),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), [(2, 3, 7, 6)]),
        ("adaptive_avg", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(2, 3, 7, 5)]),
        ("adaptive_max", lambda x: F.adaptive_max_pool2d(x, 2), [(1, 2, 5, 5)]),
        ("relu", F.relu, [(3, 4)]),
        ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), [(3, 4)]),
        ("sigmoid", F.sigmoid, [(3, 4)]),
        ("tanh", F.tanh, [(3, 4)]),
        ("softmax", lambda x: F.softmax(x, 1), [(3, 4, 2)]),
        ("log_softmax", lambda x: F.log_softmax(x, -1), [(3, 4)]),
        ("mse", lambda a, b: F.mse_loss(a, b), [(3, 4), (4,)]),
        ("flatten", lambda x: F.flatten(x, 1), [(2, 3, 4)]),
        ("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, True), [(4, 3, 2, 2), (3,), (3,)]),
    ],
)
def test_functional_gradients_finite_differences(name, fn, shapes):
    # max-type ops: finite differences need no ties (continuous random data has none)
    check(fn, *shapes)


def test_cross_entropy_gradient_finite_differences():
    target = np.array([0, 3, 1, -100, 2])
    check(lambda x: F.cross_entropy(x, target, label_smoothing=0.1), (5, 4))
    check(lambda x: F.cross_entropy(x, target, reduction="sum"), (5, 4))


def test_max_unpool_gradient():
    x = rng.standard_normal((1, 2, 6, 6))
    y, ind = F.max_pool2d(x, 2, return_indices=True)
    check(lambda t: F.max_unpool2d(t, ind, 2), y.shape)


def test_dropout_mask_is_used_in_backward():
    fastconv.manual_seed(3)
    x = tensor(np.ones((100,)), requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    y.sum().backward()
    assert_close(x.grad, y.data)  # d(x*mask)/dx = mask = y for x = 1
    assert F.dropout(x, 0.5, training=False) is x


def test_pad_modes_gradient():
    from fastconv._functions import Pad

    for mode in ("reflect", "replicate", "circular"):
        check(lambda x: Pad.apply(x, (1, 2, 2, 1), mode), (1, 2, 4, 5))
