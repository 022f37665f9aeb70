"""nn modules: the module protocol, state_dict interop, and parity with PyTorch."""

import math

import numpy as np
import pytest

import fastconv
import fastconv.nn as nn
from fastconv import models, tensor

from ref_autograd import assert_close, numeric_grad

rng = np.random.default_rng(7)


def test_registration_and_traversal():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.block = nn.Sequential(nn.ReLU(), nn.Linear(4, 3))
            self.extra = None
            self.extra = nn.Identity()  # replacing a plain attribute registers the module
            self.scale = nn.Parameter(np.ones(1, np.float32))
            self.register_buffer("steps", np.zeros((), np.int64))

    n = Net()
    assert [k for k, _ in n.named_parameters()] == ["scale", "conv.weight", "conv.bias", "block.1.weight", "block.1.bias"]
    assert [k for k, _ in n.named_children()] == ["conv", "block", "extra"]
    assert len(list(n.modules())) == 6
    assert list(n.state_dict()) == ["scale", "steps", "conv.weight", "conv.bias", "block.1.weight", "block.1.bias"]
    assert n.num_parameters() == 1 + 18 + 2 + 12 + 3
    assert isinstance(n.block[1], nn.Linear) and isinstance(n.block[-1], nn.Linear)
    assert isinstance(n.block[0:1], nn.Sequential) and len(n.block[0:1]) == 1
    with pytest.raises(IndexError):
        n.block[2]
    n.eval()
    assert not n.training and not n.block[0].training
    n.train()
    assert n.conv.training


def test_shared_parameter_counts_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert seq.num_parameters() == 12
    assert fastconv.summary(seq, (1, 3)).total_params == 12


def test_zero_grad_sets_none():
    lin = nn.Linear(3, 2)
    lin(tensor(np.ones((1, 3), np.float32))).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_default_initialisation_bounds():
    fastconv.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    fan_in = 16 * 9
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) reduces to this
    w = conv.weight.data
    assert w.dtype == np.float32 and w.shape == (32, 16, 3, 3)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(conv.bias.data).max() <= bound
    lin = nn.Linear(100, 10)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.bias.data).max() <= 0.1


def test_load_state_dict_reports_every_problem():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 2))
    sd = dict(m.state_dict())
    bad = {k: v for k, v in sd.items() if k != "0.bias"}
    bad["1.weight"] = np.zeros((3, 2), np.float32)
    bad["2.weight"] = np.zeros(1, np.float32)
    with pytest.raises(ValueError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert "missing keys: 0.bias" in msg and "unexpected keys: 2.weight" in msg
    assert "1.weight: checkpoint shape (3, 2) vs model shape (2, 2)" in msg
    missing, unexpected = m.load_state_dict({k: v for k, v in sd.items() if k != "0.bias"}, strict=False)
    assert missing == ["0.bias"] and unexpected == []


def test_load_state_dict_copies_values_in_place():
    m = nn.Linear(2, 2)
    w_before = m.weight.data
    new = {"weight": np.arange(4, dtype=np.float64).reshape(2, 2), "bias": np.ones(2)}
    m.load_state_dict(new)
    assert m.weight.data is w_before and m.weight.data.dtype == np.float32
    assert_close(m.weight.data, new["weight"])


def test_save_load_roundtrip(tmp_path):
    m = models.CifarVGG(batch_norm=True)
    m.train()
    m(tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32)))  # moves running stats
    path = tmp_path / "vgg.npz"
    fastconv.save(m, path)
    loaded = fastconv.load(path)
    assert list(loaded) == list(m.state_dict())
    m2 = models.CifarVGG(batch_norm=True)
    m2.load_state_dict(loaded)
    for k, v in m.state_dict().items():
        assert np.array_equal(m2.state_dict()[k], v), k
    assert m2.state_dict()["features.1.num_batches_tracked"] == 1
    with open(path, "rb") as f:
        assert f.read(2) == b"PK"  # a zip of .npy arrays
    with pytest.raises(TypeError, match="only numeric arrays"):
        fastconv.save({"a": np.array([object()])}, tmp_path / "bad.npz")


def test_module_pickles_cleanly():
    import pickle

    m = models.LeNet5()
    m2 = pickle.loads(pickle.dumps(m))
    x = rng.standard_normal((1, 1, 32, 32)).astype(np.float32)
    with fastconv.no_grad():
        assert np.array_equal(m(x).data, m2(x).data)


def test_dtype_conversion():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    m.double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64
    m.to(np.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_conv2d_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 6, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="expected 4-D input"):
        nn.BatchNorm2d(3)(np.zeros((2, 3), np.float32))


def test_batchnorm_modes_and_running_stats():
    bn = nn.BatchNorm2d(3, momentum=0.2).double()
    x = rng.standard_normal((8, 3, 4, 4)) * 2 + 1
    y = bn(tensor(x)).data
    m = x.mean(axis=(0, 2, 3))
    v = x.var(axis=(0, 2, 3))
    assert_close(y, (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5), rtol=1e-10)
    n = x.size / 3
    assert_close(bn.running_mean, 0.2 * m)
    assert_close(bn.running_var, 0.8 + 0.2 * v * n / (n - 1))
    assert bn.num_batches_tracked == 1
    bn.eval()
    y = bn(tensor(x)).data
    assert_close(y, (x - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None] + 1e-5))
    cum = nn.BatchNorm2d(3, momentum=None).double()
    cum(tensor(x))
    cum(tensor(x + 1))
    assert_close(cum.running_mean, (m + (m + 1)) / 2)


def test_small_model_gradients_finite_differences():
    """Without PyTorch: every parameter gradient of a small conv net in float64."""
    fastconv.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(3), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 2, groups=1), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(16, 3),
    ).double()
    x = rng.standard_normal((3, 2, 6, 6))
    target = np.array([0, 2, 1])
    loss = nn.CrossEntropyLoss()(net(tensor(x)), target)
    loss.backward()
    for name, p in net.named_parameters():
        analytic = p.grad.copy()

        def f():
            return nn.CrossEntropyLoss()(net(tensor(x)), target).item()

        assert_close(analytic, numeric_grad(f, p.data), rtol=1e-5, atol=1e-7, what=name)


# ---------------------------------------------------------------------------- PyTorch parity


def _torch_models(torch):
    tnn = torch.nn

    class TBasicBlock(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride=stride, bias=False), tnn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))

    class TInception(tnn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
            super().__init__()
            self.branch1 = tnn.Sequential(tnn.Conv2d(cin, c1, 1), tnn.ReLU())
            self.branch2 = tnn.Sequential(tnn.Conv2d(cin, c3r, 1), tnn.ReLU(), tnn.Conv2d(c3r, c3, 3, padding=1), tnn.ReLU())
            self.branch3 = tnn.Sequential(tnn.Conv2d(cin, c5r, 1), tnn.ReLU(), tnn.Conv2d(c5r, c5, 5, padding=2), tnn.ReLU())
            self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, stride=1, padding=1), tnn.Conv2d(cin, pp, 1), tnn.ReLU())

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    def lenet():
        m = tnn.Module()
        m.features = tnn.Sequential(
            tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2)
        )
        m.classifier = tnn.Sequential(
            tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10)
        )
        m.forward = lambda x: m.classifier(m.features(x))
        return m

    def alexnet():
        features = tnn.Sequential(
            tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2), tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(),
            tnn.MaxPool2d(3, 2), tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1),
            tnn.ReLU(), tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2),
        )
        classifier = tnn.Sequential(
            tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(), tnn.Linear(4096, 4096), tnn.ReLU(),
            tnn.Linear(4096, 1000),
        )
        m = tnn.Module()
        m.features, m.avgpool, m.classifier = features, tnn.AdaptiveAvgPool2d((6, 6)), classifier
        m.forward = lambda x: m.classifier(torch.flatten(m.avgpool(m.features(x)), 1))
        return m

    def vgg_bn():
        layers, c = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, "M"):
            if v == "M":
                layers.append(tnn.MaxPool2d(2))
            else:
                layers += [tnn.Conv2d(c, v, 3, padding=1, bias=False), tnn.BatchNorm2d(v), tnn.ReLU()]
                c = v
        m = tnn.Module()
        m.features, m.classifier = tnn.Sequential(*layers), tnn.Linear(4096, 10)
        m.forward = lambda x: m.classifier(torch.flatten(m.features(x), 1))
        return m

    return {
        "lenet5": (lenet, lambda: models.LeNet5(), (4, 1, 32, 32)),
        "alexnet": (alexnet, lambda: models.AlexNet(), (1, 3, 224, 224)),
        "residual_block": (lambda: TBasicBlock(8, 16, 2), lambda: models.BasicBlock(8, 16, 2), (2, 8, 12, 12)),
        "inception_block": (
            lambda: TInception(8, 4, 4, 6, 2, 3, 3), lambda: models.InceptionBlock(8, 4, 4, 6, 2, 3, 3), (2, 8, 9, 9),
        ),
        "vgg_bn": (vgg_bn, lambda: models.CifarVGG(batch_norm=True), (2, 3, 32, 32)),
    }


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "residual_block", "inception_block", "vgg_bn"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_torch_parity_models(name, mode):
    torch = pytest.importorskip("torch")
    tbuild, fbuild, shape = _torch_models(torch)[name]
    torch.manual_seed(0)
    tm, fm = tbuild(), fbuild()
    sd = tm.state_dict()
    assert list(fm.state_dict()) == list(sd), "state_dict keys differ from PyTorch's"
    assert all(fm.state_dict()[k].shape == tuple(v.shape) for k, v in sd.items())
    fm.load_state_dict({k: v.numpy() for k, v in sd.items()})
    getattr(tm, mode)()
    getattr(fm, mode)()
    for m in list(tm.modules()) + list(fm.modules()):  # dropout masks differ between libraries
        if type(m).__name__ == "Dropout":
            m.p = 0.0
    x = rng.standard_normal(shape).astype(np.float32)
    ty = tm(torch.from_numpy(x))
    fy = fm(tensor(x))
    g = rng.standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    fy.backward(g)
    scale = float(np.abs(ty.detach().numpy()).max())
    assert_close(fy.data, ty.detach().numpy(), rtol=2e-4, atol=1e-6 * scale, what="output")
    for (n, p), (tn, tp) in zip(fm.named_parameters(), tm.named_parameters()):
        assert n == tn
        assert_close(p.grad, tp.grad.numpy(), rtol=2e-3, atol=1e-5, what=f"grad {n}")
    for k, v in tm.state_dict().items():  # running statistics after a training step
        assert_close(fm.state_dict()[k], v.numpy(), rtol=1e-4, atol=1e-6, what=k)


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=1, padding_mode="circular"),
        lambda nn: nn.Conv2d(4, 8, 3, padding="same", groups=4, padding_mode="replicate"),
        lambda nn: nn.Conv2d(4, 4, 4, padding="same", bias=False, padding_mode="reflect"),
        lambda nn: nn.Conv2d(4, 4, 3, padding="valid"),
        lambda nn: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda nn: nn.MaxPool2d(3, 2, 1, dilation=2),
        lambda nn: nn.AdaptiveMaxPool2d((2, 3)),
        lambda nn: nn.Softmax(dim=1),
        lambda nn: nn.LogSoftmax(dim=1),
        lambda nn: nn.Sigmoid(),
        lambda nn: nn.Flatten(2),
    ],
)
def test_torch_parity_layers(make):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    tl = make(torch.nn).double()
    fl = make(nn).double()
    fl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    x = rng.standard_normal((2, fl.in_channels if isinstance(fl, nn.Conv2d) else 4, 9, 10))
    tx = torch.from_numpy(x).requires_grad_()
    fx = tensor(x, requires_grad=True)
    ty, fy = tl(tx), fl(fx)
    g = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(g))
    fy.backward(g)
    assert_close(fy.data, ty.detach().numpy(), rtol=1e-10)
    assert_close(fx.grad, tx.grad.numpy(), rtol=1e-10)
    for (n, p), (_, tp) in zip(fl.named_parameters(), tl.named_parameters()):
        assert_close(p.grad, tp.grad.numpy(), rtol=1e-10, what=n)
