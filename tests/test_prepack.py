"""Module.prepack: weight panels packed once and kept for repeated inference.

The results must be bitwise those of the unpacked module (and match the NumPy
float64 reference), and the kept panels must never outlive the weight values
they were packed from: the weight is read-only while they are kept, replacing
it drops them, and the native pack is ignored for any array other than its own.
"""

import copy
import pickle
import threading

import numpy as np
import pytest

import fastconv
import fastconv.nn as nn
from fastconv import _core, models
from reference import conv2d_ref

# (in, out, kernel, options, input hw): the paths conv2d takes -- direct 3x3,
# strided (phase split), AlexNet-like 11x11/4, grouped, dilated, 'same',
# a deep small-image layer (weight rows read in place: nothing to pack), 1x1
LAYERS = [
    (16, 24, 3, dict(padding=1), 12),
    (8, 20, 3, dict(stride=2, padding=1), 15),
    (3, 16, 11, dict(stride=4, padding=2), 47),
    (12, 18, 3, dict(groups=3, padding=1), 9),
    (6, 10, 3, dict(dilation=2, padding=2), 11),
    (5, 7, 4, dict(padding="same"), 10),
    (256, 256, 3, dict(padding=1), 4),
    (32, 40, 1, {}, 7),
]


def _layer(cin, cout, k, opts, dtype=np.float32, seed=0):
    fastconv.manual_seed(seed)
    return nn.Conv2d(cin, cout, k, dtype=dtype, **opts).eval()


def _x(cin, hw, n=2, dtype=np.float32, seed=1):
    return np.random.default_rng(seed).standard_normal((n, cin, hw, hw)).astype(dtype)


def _run(m, x):
    with fastconv.no_grad():
        y = m(x)
    return np.asarray(y.data if isinstance(y, fastconv.Tensor) else y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cin,cout,k,opts,hw", LAYERS)
def test_prepacked_layer_equals_unpacked_and_reference(isa, cin, cout, k, opts, hw, dtype):
    conv = _layer(cin, cout, k, opts, dtype)
    x = _x(cin, hw, dtype=dtype)
    plain = _run(conv, x)
    conv.prepack()
    assert not conv.weight.data.flags.writeable
    for _ in range(2):  # the second call uses the panels the first one built
        assert np.array_equal(_run(conv, x), plain)
        # the Sequential array path and a Tensor input under no_grad both use them
        assert np.array_equal(_run(nn.Sequential(conv), x), plain)
        assert np.array_equal(_run(conv, fastconv.tensor(x)), plain)
    ref = conv2d_ref(x, conv.weight.data, conv.bias.data, groups=conv.groups, stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(plain, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_prepack_keeps_panels_and_only_where_packed():
    m = models.get_model("cifar_vgg").eval().prepack()
    x = _x(3, 32, n=1)
    _run(m, x)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    packs = [c._pack for c in convs]
    assert all(p is not None for p in packs)
    built = [p.entries for p in packs]
    assert sum(built) >= 3 and all(b in (0, 1) for b in built)  # each path packs at most once
    for p in packs:
        assert p.nbytes >= (p.weight.size * p.weight.itemsize if p.entries else 0)
    _run(m, x)
    assert [p.entries for p in packs] == built  # reused, not rebuilt


def test_weight_is_read_only_while_packed_and_unpack_restores():
    conv = _layer(4, 6, 3, dict(padding=1))
    w = conv.weight.data
    conv.prepack()
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0, 0, 0] = 1.0
    opt = fastconv.optim.SGD(conv.parameters(), lr=0.1)
    conv.weight.grad = np.ones_like(w)
    with pytest.raises(ValueError, match="read-only"):
        opt.step()  # training a prepacked model is refused, not silently stale
    conv.unpack()
    assert w.flags.writeable and "_pack" not in conv.__dict__
    w[0, 0, 0, 0] = 1.0  # allowed again


def test_train_mode_unpacks():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval().prepack()
    assert not m[0].weight.data.flags.writeable
    m.train()
    assert m[0].weight.data.flags.writeable and "_pack" not in m[0].__dict__
    m.eval()  # eval alone does not pack
    assert m[0].weight.data.flags.writeable


def test_read_only_weights_stay_read_only_after_unpack():
    conv = _layer(3, 5, 3, {})
    conv.weight.data.flags.writeable = False  # the user's choice, not prepack's
    conv.prepack().unpack()
    assert not conv.weight.data.flags.writeable


def test_new_weights_are_used_not_stale_panels():
    conv = _layer(8, 12, 3, dict(padding=1))
    x = _x(8, 10)
    old = _run(conv.prepack(), x)
    other = _layer(8, 12, 3, dict(padding=1), seed=5)
    conv.load_state_dict(other.state_dict())  # read-only weight: replaced, not written in place
    new = _run(conv, x)
    assert np.array_equal(new, _run(other, x))
    assert not np.allclose(new, old)
    assert "_pack" not in conv.__dict__  # the stale pack was dropped


def test_user_made_writeable_weight_bypasses_the_pack():
    conv = _layer(8, 12, 3, dict(padding=1)).prepack()
    x = _x(8, 10)
    _run(conv, x)
    w = conv.weight.data
    w.flags.writeable = True  # circumventing prepack: the pack is no longer trusted
    w *= 2.0
    want = conv2d_ref(x, w, conv.bias.data, padding=1)
    np.testing.assert_allclose(_run(conv, x), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_native_pack_is_ignored_for_another_array():
    # the binding uses a pack only with the very array it was made from
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    a.flags.writeable = False
    b.flags.writeable = False
    pack = _core.ConvWeightPack(a, 1)
    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    with_a = _core.conv2d_fast_packed(x, a, None, 1, 1, 1, 1, pack)
    assert pack.entries == 1
    with_b = _core.conv2d_fast_packed(x, b, None, 1, 1, 1, 1, pack)
    assert np.array_equal(with_b, _core.conv2d_fast(x, b.copy(), None, 1, 1, 1, 1))
    assert np.array_equal(with_a, _core.conv2d_fast(x, a.copy(), None, 1, 1, 1, 1))
    assert not np.allclose(with_a, with_b)


@pytest.mark.parametrize(
    "weight,groups,match",
    [
        (np.zeros((4, 2, 3, 3), np.float32), 1, "read-only"),
        (np.zeros((4, 2, 3), np.float32), 1, "4-D"),
        (np.zeros((4, 2, 3, 3), np.float32), 3, "divisible by groups"),
        (np.zeros((4, 2, 3, 3), np.float32), 0, "groups must be positive"),
    ],
)
def test_native_pack_rejects_bad_input(weight, groups, match):
    if match != "read-only":
        weight.flags.writeable = False
    with pytest.raises(ValueError, match=match):
        _core.ConvWeightPack(weight, groups)


def test_native_pack_rejects_other_dtypes():
    w = np.zeros((4, 2, 3, 3), np.int32)
    w.flags.writeable = False
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.ConvWeightPack(w, 1)


def test_isa_switch_gets_its_own_panels():
    others = [i for i in _core.available_isas() if i != _core.active_isa()]
    conv = _layer(16, 24, 3, dict(padding=1)).prepack()
    # enough output tiles (2 x 40 x 40) that every ISA reads packed panels
    # (a few tiles on an exact tiling read the weight rows in place instead)
    x = _x(16, 40)
    default = _run(conv, x)
    old = _core.active_isa()
    try:
        for isa_name in others:
            _core.set_isa(isa_name)
            np.testing.assert_allclose(_run(conv, x), default, rtol=1e-4, atol=1e-4)
    finally:
        _core.set_isa(old)
    assert conv._pack.entries == 1 + len(others)
    assert np.array_equal(_run(conv, x), default)


def test_copies_are_unpacked_and_independent():
    m = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3)).eval().prepack()
    x = _x(3, 8)
    y = _run(m, x)
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert np.array_equal(_run(c, x), y)
        assert "_pack" not in c[0].__dict__ and c[0].weight.data.flags.writeable
        c[0].weight.data[...] = 0  # the copy's weights are its own
    assert np.array_equal(_run(m, x), y)


def test_gradients_unaffected_by_prepack():
    conv = _layer(4, 5, 3, dict(padding=1)).prepack()
    x = fastconv.tensor(_x(4, 6), requires_grad=True)
    conv(x).sum().backward()  # recorded: the autograd path (weights only read)
    plain = _layer(4, 5, 3, dict(padding=1))
    x2 = fastconv.tensor(x.data.copy(), requires_grad=True)
    plain(x2).sum().backward()
    assert np.array_equal(x.grad, x2.grad) and np.array_equal(conv.weight.grad, plain.weight.grad)


def test_threads_share_a_prepacked_model():
    m = models.get_model("cifar_vgg").eval().prepack()
    x = _x(3, 32, n=1)
    want = _run(copy.deepcopy(m), x)
    out, errors = [None] * 6, []

    def work(i):
        try:
            out[i] = _run(m, x)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert all(np.array_equal(o, want) for o in out)
