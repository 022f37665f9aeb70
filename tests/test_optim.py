"""Optimisers against independent reimplementations of the update rules, and against PyTorch."""

import math

import numpy as np
import pytest

import fastconv
import fastconv.nn as nn
from fastconv import optim, tensor

from ref_autograd import assert_close

rng = np.random.default_rng(11)


def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p = p.copy()
    buf = None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def ref_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        d = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * d
        v = betas[1] * v + (1 - betas[1]) * d * d
        mhat = m / (1 - betas[0] ** t)
        vhat = v / (1 - betas[1] ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def run(opt_cls, kwargs, grads, p0):
    p = nn.Parameter(p0.copy())
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.data


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.1),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3),
        dict(lr=0.05, momentum=0.9, nesterov=True),
        dict(lr=0.01, momentum=0.5, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.01),
    ],
)
def test_sgd_matches_reference(kw):
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(6)]
    assert_close(run(optim.SGD, kw, grads, p0), ref_sgd(p0, grads, **kw), rtol=1e-12)


@pytest.mark.parametrize(
    "kw",
    [dict(lr=1e-2), dict(lr=3e-3, betas=(0.8, 0.99)), dict(lr=1e-2, eps=1e-3, weight_decay=0.05)],
)
def test_adam_matches_reference(kw):
    p0 = rng.standard_normal((5,))
    grads = [rng.standard_normal((5,)) for _ in range(8)]
    # the bias corrections are algebraically rearranged the way PyTorch does; equal to ~1 ulp
    assert_close(run(optim.Adam, kw, grads, p0), ref_adam(p0, grads, **kw), rtol=1e-12)


def test_parameters_without_grad_are_skipped_and_zero_grad():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = np.ones(2)
    opt.step()
    assert_close(a.data, np.zeros(2))
    assert_close(b.data, np.ones(2))
    opt.zero_grad()
    assert a.grad is None


def test_param_groups():
    a, b = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad = np.ones(1)
    b.grad = np.ones(1)
    opt.step()
    assert_close(a.data, [0.9])
    assert_close(b.data, [0.5])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: optim.SGD(p, lr=-1), "learning rate"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "beta parameter at index 0"),
        (lambda p: optim.Adam(p, eps=-1.0), "epsilon"),
        (lambda p: optim.Adam([], lr=0.1), "empty parameter list"),
    ],
)
def test_optimizer_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make([nn.Parameter(np.ones(1))])


def test_state_dict_roundtrip():
    p = nn.Parameter(rng.standard_normal(3))
    opt = optim.Adam([p], lr=0.1)
    for _ in range(3):
        p.grad = rng.standard_normal(3)
        opt.step()
    sd = opt.state_dict()
    q = nn.Parameter(p.data.copy())
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(sd)
    g = rng.standard_normal(3)
    p.grad, q.grad = g, g.copy()
    opt.step()
    opt2.step()
    assert np.array_equal(p.data, q.data)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", dict(lr=0.1)),
        ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=1e-3)),
        ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1)),
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
        ("Adam", dict(lr=1e-2)),
        ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_steps_match_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    def build(lib):
        return lib.Sequential(lib.Conv2d(1, 4, 3), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(), lib.Linear(36, 5))

    tm, fm = build(torch.nn), build(nn)
    fm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    if dtype == np.float64:
        tm.double()
        fm.double()
    to = getattr(torch.optim, name)(tm.parameters(), **kw)
    fo = getattr(optim, name)(fm.parameters(), **kw)
    data = np.random.default_rng(0)
    for _ in range(15):
        x = data.standard_normal((8, 1, 8, 8)).astype(dtype)
        y = data.integers(0, 5, 8)
        to.zero_grad()
        fo.zero_grad()
        torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        nn.functional.cross_entropy(fm(tensor(x)), y).backward()
        to.step()
        fo.step()
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for k, v in tm.state_dict().items():
        assert_close(fm.state_dict()[k], v.numpy(), rtol=tol, atol=tol, what=k)
