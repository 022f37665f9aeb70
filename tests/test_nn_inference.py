"""Sequential's inference path on plain arrays (nothing to record) gives what the
layers give one by one, and steps aside whenever a layer must run as a module."""

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
import fastconv.nn as nn
from fastconv import models


def _input(name, batch=2, seed=0):
    shape = (1 if name == "alexnet" else batch,) + tuple(models.input_shape(name))
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_zoo_models_equal_the_recorded_path(name):
    fastconv.manual_seed(0)
    m = models.get_model(name).eval()
    x = _input(name)
    with fastconv.no_grad():
        fast = m(x)
    slow = m(fastconv.tensor(x, requires_grad=True))  # records a graph: every layer runs as a module
    assert isinstance(fast, fastconv.Tensor) and not fast.requires_grad
    assert np.array_equal(fast.numpy(), slow.data)


def _layer_by_layer(seq, x):
    for child in seq:
        x = child(x)
    return x


def test_sequential_matches_its_layers_one_by_one_and_keeps_output_types():
    fastconv.manual_seed(1)
    seq = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 4, 3, stride=2),
        nn.LeakyReLU(0.1), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(16, 5), nn.Tanh(),
        nn.Sigmoid(), nn.Identity(), nn.Softmax(dim=1), nn.LogSoftmax(dim=1),
    ).eval()
    seq[1].running_mean[...] = np.linspace(-1, 1, 8)
    seq[1].running_var[...] = np.linspace(0.5, 2, 8)
    x = np.random.default_rng(2).standard_normal((3, 3, 12, 12)).astype(np.float32)
    with fastconv.no_grad():
        fast = seq(x)
        ref = _layer_by_layer(seq, x)
        assert isinstance(fast, fastconv.Tensor) and isinstance(ref, fastconv.Tensor)
        assert np.array_equal(fast.numpy(), ref.numpy())
        # a Tensor in gives a Tensor out
        assert np.array_equal(seq(fastconv.tensor(x)).numpy(), ref.numpy())
        # without parameters, NumPy in gives NumPy out, as the layers do
        plain = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        out = plain(x)
        assert isinstance(out, np.ndarray) and np.array_equal(out, _layer_by_layer(plain, x))


def test_grad_mode_without_trainable_parameters_takes_the_array_path_too():
    seq = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU())
    for p in seq.parameters():
        p.requires_grad = False
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6)).astype(np.float32)
    y = seq(x)  # grad mode on, but nothing requires grad: nothing to record
    assert isinstance(y, fastconv.Tensor) and not y.requires_grad
    assert np.array_equal(y.numpy(), _layer_by_layer(seq, x).numpy())


def test_training_still_records():
    seq = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
    x = np.random.default_rng(4).standard_normal((2, 2, 6, 6)).astype(np.float32)
    loss = seq(x).sum()
    loss.backward()
    assert all(p.grad is not None for p in seq.parameters())


def test_forward_hooks_run():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    seen = []
    seq[1].register_forward_hook(lambda mod, inputs, out: seen.append(np.shape(out)))
    with fastconv.no_grad():
        seq(np.zeros((1, 1, 5, 5), np.float32))
    assert seen == [(1, 2, 3, 3)]


def test_overridden_forward_is_called():
    class Doubling(nn.Conv2d):
        def forward(self, input):
            return super().forward(input) * 2

    fastconv.manual_seed(5)
    seq = nn.Sequential(Doubling(1, 2, 3))
    x = np.random.default_rng(5).standard_normal((1, 1, 5, 5)).astype(np.float32)
    with fastconv.no_grad():
        got = seq(x).numpy()
        want = nn.Conv2d.forward(seq[0], x).numpy() * 2
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    "layer",
    [lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), lambda: nn.MaxPool2d(2, return_indices=True),
     lambda: nn.BatchNorm2d(2)],  # BatchNorm2d in training mode updates its running statistics
    ids=["reflect-padding", "pool-indices", "batchnorm-training"],
)
def test_layers_without_an_array_form_run_as_modules(layer):
    fastconv.manual_seed(6)
    a, b = layer(), layer()
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(6).standard_normal((2, 2, 6, 6)).astype(np.float32)
    with fastconv.no_grad():
        got = nn.Sequential(a)(x)
        want = b(x)
    if isinstance(want, tuple):
        assert all(np.array_equal(np.asarray(g), np.asarray(w)) for g, w in zip(got, want))
    else:
        assert np.array_equal(np.asarray(got), np.asarray(want))
    for k, v in b.state_dict().items():
        assert np.array_equal(a.state_dict()[k], v), k


def test_dropout_in_training_mode_draws_the_same_masks():
    seq = nn.Sequential(nn.Dropout(0.5))
    x = np.ones((4, 16), np.float32)
    with fastconv.no_grad():
        fastconv.manual_seed(7)
        got = seq(x)
        fastconv.manual_seed(7)
        want = nn.Dropout(0.5)(x)
    assert np.array_equal(np.asarray(got), np.asarray(want))


# The array forms of ReLU, MaxPool2d, Linear, Flatten and Dropout call the
# compiled fast path directly and hand anything it declines to the functional
# op: both routes must give what the layer gives as a module.
@pytest.mark.parametrize(
    "make_x",
    [
        lambda r: r.standard_normal((2, 3, 8, 8)).astype(np.float32),
        lambda r: r.standard_normal((2, 3, 8, 8)),  # float64
        lambda r: r.standard_normal((2, 3, 8, 16)).astype(np.float32)[..., ::2],  # not contiguous
        lambda r: r.integers(-3, 4, (2, 3, 8, 8)),  # integers: converted to float32 by the general path
        lambda r: r.standard_normal((2, 3, 8, 8)).astype(np.float32).tolist(),  # a list
    ],
    ids=["f32", "f64", "strided", "int", "list"],
)
def test_lean_array_forms_match_the_modules(make_x):
    fastconv.manual_seed(8)
    layers = [nn.ReLU(), nn.MaxPool2d((2, 2), stride=2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(48, 5)]
    seq = nn.Sequential(*layers).eval()
    x = make_x(np.random.default_rng(8))
    with fastconv.no_grad():
        got = seq(x).numpy()
        want = _layer_by_layer(seq, x).numpy()
    assert got.dtype == want.dtype and np.array_equal(got, want)
    # each array form on its own, against the module (same values, dtype and type)
    for layer in layers[:4]:
        with fastconv.no_grad():
            a, b = layer._array_forward(x), layer(x)
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        x = b


def test_lean_array_forms_keep_the_modules_errors_and_settings():
    x = np.random.default_rng(9).standard_normal((2, 3, 4, 4)).astype(np.float32)
    with fastconv.no_grad():
        with pytest.raises(ValueError, match="linear"):
            nn.Sequential(nn.Flatten(), nn.Linear(47, 2))(x)  # 48 features in
        flat = nn.Flatten(start_dim=2)  # not the default dims: the general op
        assert nn.Sequential(flat)(x).shape == (2, 3, 16)
        drop = nn.Dropout(0.5).eval()
        assert nn.Sequential(drop)(x) is x  # eval mode: the input itself, as F.dropout
        drop.p = 1.5  # changed after construction: the functional op's check still applies
        with pytest.raises(ValueError):
            nn.Sequential(drop)(x)
        pool = nn.MaxPool2d(2, ceil_mode=True)
        assert nn.Sequential(pool)(x[..., :3, :3]).shape == (2, 3, 2, 2)
        # an empty batch flattens as F.flatten does (a -1 in the reshape could not be inferred)
        empty = np.zeros((0, 3, 4, 4), np.float32)
        assert nn.Sequential(nn.Flatten())(empty).shape == F.flatten(empty).shape == (0, 48)
