"""Models and tensors pickle cleanly (for shipping to workers), and fastconv.distributed runs a
model over a dask.array: on the local schedulers and on a 2-process LocalCluster.

Results are compared bitwise with local inference on the same chunks: fastconv is
deterministic, but it picks its algorithm by batch size, so one 64-sample pass and four
16-sample passes may differ in the last bits (checked to a tolerance instead).
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv
from fastconv import models, nn, optim
from fastconv import distributed as fd

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1234)


def _randomise_running_stats(model, seed=0):
    """Non-default BatchNorm statistics, so eval mode and train mode give different outputs."""
    r = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
            m.running_mean[...] = r.standard_normal(m.running_mean.shape)
            m.running_var[...] = r.uniform(0.5, 2.0, m.running_var.shape)
            m.num_batches_tracked[...] = 7
    return model


def _modes(model):
    return [(name, m.training) for name, m in model.named_modules()]


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k
        assert not np.shares_memory(sa[k], sb[k]), k


def _infer(model, x):
    with fastconv.no_grad():
        return model(fastconv.Tensor(x)).data


# ----------------------------------------------------------------------------------------------
# pickling: no dask needed

ZOO = [
    ("lenet5", lambda: models.LeNet5(), (1, 32, 32)),
    ("alexnet", lambda: models.AlexNet(num_classes=10), (3, 224, 224)),
    ("cifar_vgg", lambda: models.CifarVGG(), (3, 32, 32)),
    ("cifar_vgg_bn", lambda: models.CifarVGG(batch_norm=True), (3, 32, 32)),
    ("resnet_small", lambda: models.SmallResNet(), (3, 32, 32)),
    ("inception_small", lambda: models.SmallInception(), (3, 32, 32)),
    ("densenet_small", lambda: models.SmallDenseNet(), (3, 32, 32)),
    ("allconv", lambda: models.AllConvNet(width=8), (3, 32, 32)),
]


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("name,build,shape", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_model_round_trips(name, build, shape, how):
    fastconv.manual_seed(0)
    m = _randomise_running_stats(build())
    m.train()
    first = next(iter(m.children()))
    first.eval()  # mixed modes survive too
    m2 = pickle.loads(pickle.dumps(m)) if how == "pickle" else copy.deepcopy(m)
    assert type(m2) is type(m)
    assert _modes(m2) == _modes(m)
    _assert_same_state(m, m2)
    x = np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32)
    m.eval()
    m2.eval()
    assert np.array_equal(_infer(m, x), _infer(m2, x))
    # the copy is independent of the original
    p2 = next(m2.parameters())
    p2.data += 1
    assert not np.array_equal(next(m.parameters()).data, p2.data)


def _layer_instances():
    return {
        "Conv2d": nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=1, groups=2, bias=False),
        "Conv2d_reflect_same": nn.Conv2d(2, 3, (3, 2), padding="same", padding_mode="reflect"),
        "MaxPool2d": nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        "AvgPool2d": nn.AvgPool2d(2, count_include_pad=False, divisor_override=3),
        "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d((3, None)),
        "AdaptiveMaxPool2d": nn.AdaptiveMaxPool2d(2),
        "MaxUnpool2d": nn.MaxUnpool2d(2),
        "Linear": nn.Linear(5, 3),
        "Flatten": nn.Flatten(0, 2),
        "ReLU": nn.ReLU(),
        "LeakyReLU": nn.LeakyReLU(0.2),
        "Sigmoid": nn.Sigmoid(),
        "Tanh": nn.Tanh(),
        "Dropout": nn.Dropout(0.25),
        "Softmax": nn.Softmax(dim=1),
        "LogSoftmax": nn.LogSoftmax(dim=-1),
        "BatchNorm2d": _randomise_running_stats(nn.BatchNorm2d(3, eps=1e-3, momentum=None)),
        "BatchNorm2d_plain": nn.BatchNorm2d(3, affine=False, track_running_stats=False),
        "Identity": nn.Identity(),
        "CrossEntropyLoss": nn.CrossEntropyLoss(ignore_index=1, label_smoothing=0.1),
        "MSELoss": nn.MSELoss(reduction="sum"),
        "Sequential": nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()),
        "ModuleList": nn.ModuleList([nn.Linear(2, 2), nn.Tanh()]),
    }


def _plain_attrs(m):
    skip = {"_parameters", "_buffers", "_modules", "_forward_hooks"}
    return {k: v for k, v in vars(m).items() if k not in skip}


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("name", sorted(_layer_instances()))
def test_every_layer_round_trips(name, how):
    m = _layer_instances()[name]
    m.eval() if name.endswith("plain") else m.train()
    m2 = pickle.loads(pickle.dumps(m)) if how == "pickle" else copy.deepcopy(m)
    assert type(m2) is type(m) and repr(m2) == repr(m)
    assert _plain_attrs(m2) == _plain_attrs(m)
    assert _modes(m2) == _modes(m)
    _assert_same_state(m, m2)
    assert [(n, p.requires_grad) for n, p in m2.named_parameters()] == [
        (n, p.requires_grad) for n, p in m.named_parameters()
    ]


def test_layer_list_covers_every_module_class():
    covered = {type(m) for m in _layer_instances().values()}
    exported = {
        getattr(nn, n) for n in dir(nn)
        if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module) and getattr(nn, n) is not nn.Module
    }
    assert exported <= covered, sorted(c.__name__ for c in exported - covered)


def test_shared_parameters_stay_shared_and_frozen_stay_frozen():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight  # weight tying
    a.bias.requires_grad_(False)
    m = nn.Sequential(a, b)
    for m2 in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert m2[0].weight is m2[1].weight
        assert m2[0].weight is not a.weight
        assert m2[0].bias.requires_grad is False and m2.num_parameters() == m.num_parameters()
        assert isinstance(m2[0].weight, nn.Parameter)


def test_pickled_model_trains_like_the_original():
    fastconv.manual_seed(0)
    m = models.LeNet5()
    m2 = pickle.loads(pickle.dumps(m))
    x = rng.standard_normal((4, 1, 32, 32)).astype(np.float32)
    t = np.array([1, 2, 3, 4])
    for model in (m, m2):
        opt = optim.SGD(model.parameters(), lr=0.1)
        loss = nn.CrossEntropyLoss()(model(fastconv.Tensor(x)), t)
        loss.backward()
        opt.step()
    _assert_same_state(m, m2)


def _hook(module, inputs, output):  # module level: picklable by reference
    return output * 2


def test_forward_hooks_pickle_when_picklable():
    m = nn.Linear(3, 2)
    m.register_forward_hook(_hook)
    x = rng.standard_normal((1, 3)).astype(np.float32)
    m2 = pickle.loads(pickle.dumps(m))
    assert np.array_equal(_infer(m2, x), _infer(m, x))
    # a lambda hook cannot be pickled (as with torch); remove it before shipping the model
    handle = m.register_forward_hook(lambda mod, inp, out: out)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(m)
    handle.remove()
    pickle.dumps(m)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_tensor_pickle_keeps_data_and_flag_drops_grad(protocol):
    for data in (np.arange(6, dtype=np.float64).reshape(2, 3), np.float32(2.5), np.arange(3)):
        t = fastconv.Tensor(np.array(data), requires_grad=np.asarray(data).dtype.kind == "f")
        if t.requires_grad:
            (t * 3).sum().backward()
            assert t.grad is not None
        t2 = pickle.loads(pickle.dumps(t, protocol=protocol))
        assert type(t2) is fastconv.Tensor and t2.is_leaf
        assert t2.dtype == t.dtype and t2.shape == t.shape and np.array_equal(t2.data, t.data)
        assert t2.requires_grad == t.requires_grad
        assert t2.grad is None  # as torch: .grad is not pickled
    p = nn.Parameter(np.ones((2, 2), np.float32), requires_grad=False)
    p2 = pickle.loads(pickle.dumps(p, protocol=protocol))
    assert type(p2) is nn.Parameter and p2.requires_grad is False


def test_non_leaf_tensor_pickles_without_its_graph():
    x = fastconv.Tensor(np.ones((500, 500), np.float32), requires_grad=True)
    y = x[:2] * 2  # a non-leaf whose graph holds x (1 MB)
    blob = pickle.dumps(y)
    assert len(blob) < 10_000  # the graph (and x) is not in the pickle
    y2 = pickle.loads(blob)
    assert y2.is_leaf and y2.grad_fn is None and y2.requires_grad
    assert np.array_equal(y2.data, y.data)
    y2.sum().backward()  # a leaf of its own: the gradient lands on it, not on a copy of x
    assert np.array_equal(y2.grad, np.ones_like(y.data))
    assert x.grad is None
    y3 = copy.deepcopy(y)
    assert y3.is_leaf and y3.requires_grad and not np.shares_memory(y3.data, y.data)
    # the original keeps its graph
    y.sum().backward()
    assert x.grad[:2].sum() == 2 * 2 * 500


def test_tensor_deepcopy_keeps_grad_and_identity():
    t = fastconv.Tensor(np.ones(3, np.float32), requires_grad=True)
    (t * t).sum().backward()
    pair = copy.deepcopy([t, t])
    assert pair[0] is pair[1] and pair[0] is not t
    assert np.array_equal(pair[0].grad, t.grad) and not np.shares_memory(pair[0].grad, t.grad)
    pair = pickle.loads(pickle.dumps([t, t]))
    assert pair[0] is pair[1]


class TaggedTensor(fastconv.Tensor):
    """A user subclass with its own attributes."""


def test_tensor_subclass_attributes_survive():
    t = TaggedTensor(np.ones(2, np.float32))
    t.tag = "weights"
    for t2 in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert type(t2) is TaggedTensor and t2.tag == "weights"


def test_stateless_optimizer_pickles_with_its_model():
    m = models.LeNet5()
    opt = optim.Adam(m.parameters(), lr=1e-3)
    m2, opt2 = pickle.loads(pickle.dumps((m, opt)))
    assert all(a is b for a, b in zip(opt2.param_groups[0]["params"], m2.parameters()))
    assert opt2.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.01)],
                         ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_optimizer_state_survives_pickling(make, how):
    rng = np.random.default_rng(0)
    x = fastconv.Tensor(rng.standard_normal((4, 3)).astype(np.float32))

    def train_step(m, opt):
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()

    m = nn.Linear(3, 2)
    opt = make(m.parameters())
    train_step(m, opt)
    m2, opt2 = pickle.loads(pickle.dumps((m, opt))) if how == "pickle" else copy.deepcopy((m, opt))
    assert {id(p) for p in m2.parameters()} == set(opt2.state)
    # the copies keep training exactly as the originals do (momentum / Adam moments carried over)
    for _ in range(3):
        train_step(m, opt)
        train_step(m2, opt2)
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


# ----------------------------------------------------------------------------------------------
# fastconv.distributed without dask, and its thread planning


def test_import_without_dask_and_clear_error():
    code = textwrap.dedent(
        """
        import sys
        for name in ("dask", "dask.array", "distributed"):
            sys.modules[name] = None  # as if not installed
        import fastconv.distributed as fd
        for call in (lambda: fd.predict_dask(None, None), lambda: fd.configure_worker_threads(),
                     lambda: fd.scatter_model(None)):
            try:
                call()
            except ImportError as e:
                assert "pip install 'fastconv[dask]'" in str(e), e
            else:
                raise AssertionError("no ImportError")
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_import_does_not_load_dask():
    code = "import sys, fastconv.distributed; print('dask' in sys.modules, 'distributed' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["False", "False"], r.stderr


def _facts(host, cpus, nthreads):
    return {"host": host, "cpus": cpus, "ncpu": len(cpus) if cpus else 8, "nthreads": nthreads}


def test_thread_plan():
    c8 = list(range(8))
    # one host, 8 cores, 2 workers x 2 threads: 8 // 4
    assert fd._plan_threads({"a": _facts("h", c8, 2), "b": _facts("h", c8, 2)}) == {"a": 2, "b": 2}
    # more worker threads than cores: at least 1
    assert fd._plan_threads({"a": _facts("h", [0, 1], 4)}) == {"a": 1}
    # workers pinned to disjoint halves each get their own cores
    assert fd._plan_threads({"a": _facts("h", c8[:4], 1), "b": _facts("h", c8[4:], 1)}) == {"a": 4, "b": 4}
    # different hosts do not share
    assert fd._plan_threads({"a": _facts("h1", c8, 1), "b": _facts("h2", c8, 2)}) == {"a": 8, "b": 4}
    # unknown CPU sets count as shared
    assert fd._plan_threads({"a": _facts("h", None, 1), "b": _facts("h", None, 3)}) == {"a": 2, "b": 2}


def test_task_threads_are_scoped_and_restored():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(2)
        with fd._task_threads(1):
            assert fastconv.get_num_threads() == 1
            with fd._task_threads(1):  # a concurrent task of the same process
                pass
            assert fastconv.get_num_threads() == 1  # still inside the first
        assert fastconv.get_num_threads() == 2
    finally:
        fastconv.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# dask: local schedulers


class ThreadProbe(nn.Module):
    """Outputs, for every sample, the fastconv thread count in effect while it runs."""

    def forward(self, x):
        return fastconv.Tensor(np.full((x.shape[0], 1), fastconv.get_num_threads(), np.float32))


def _cifar(n=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def _chunked_reference(model, x, chunk):
    model = copy.deepcopy(model).eval()
    return np.concatenate([_infer(model, x[i : i + chunk]) for i in range(0, len(x), chunk)])


@pytest.fixture(scope="module")
def da():
    pytest.importorskip("dask.array")
    import dask.array

    return dask.array


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_local_schedulers_match_local_inference(da, scheduler):
    x = _cifar()
    model = models.CifarVGG().eval()
    y = fd.predict_dask(model, da.from_array(x, chunks=(16, 3, 32, 32)))
    assert y.shape == (64, 10) and y.dtype == np.float32 and y.chunks == ((16,) * 4, (10,))
    out = y.compute(scheduler=scheduler)
    assert np.array_equal(out, _chunked_reference(model, x, 16))
    full = _infer(model, x)  # one 64-sample pass: another algorithm, same numbers to rounding
    np.testing.assert_allclose(out, full, rtol=1e-5, atol=1e-6)


def test_rechunking_and_output_shapes(da):
    x = _cifar(30)
    feats = models.CifarVGG().features.eval()
    # channels split over chunks; batch rechunked to 8; 4-D output
    y = fd.predict_dask(feats, da.from_array(x, chunks=(10, 1, 16, 32)), batch_size=8)
    assert y.shape == (30, 256, 4, 4) and y.chunks == ((8, 8, 8, 6), (256,), (4,), (4,))
    assert np.array_equal(y.compute(scheduler="sync"), _chunked_reference(feats, x, 8))
    # a NumPy input, integer pixels (fastconv makes them float32), an input_dtype cast to float64
    pix = np.random.default_rng(0).integers(0, 256, (5, 1, 32, 32)).astype(np.uint8)
    lenet = models.LeNet5().eval()
    y = fd.predict_dask(lenet, pix, batch_size=2)
    assert y.dtype == np.float32 and np.array_equal(y.compute(scheduler="sync"), _chunked_reference(lenet, pix, 2))
    y = fd.predict_dask(lenet, pix, batch_size=2, input_dtype=np.float64)
    assert y.dtype == np.float64 and y.compute(scheduler="sync").shape == (5, 10)
    # an empty batch
    assert fd.predict_dask(lenet, np.zeros((0, 1, 32, 32), np.float32)).compute(scheduler="sync").shape == (0, 10)


def test_bad_arguments(da):
    lenet = models.LeNet5()
    x = np.zeros((4, 1, 32, 32), np.float32)
    with pytest.raises(TypeError, match="fastconv.nn.Module"):
        fd.predict_dask(lambda t: t, x)
    with pytest.raises(ValueError, match="batch_size"):
        fd.predict_dask(lenet, x, batch_size=0)
    with pytest.raises(TypeError, match="threads_per_task"):
        fd.predict_dask(lenet, x, threads_per_task=1.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fd.predict_dask(lenet, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="one array"):
        fd.predict_dask(nn.MaxPool2d(2, return_indices=True), x)
    with pytest.raises(ValueError, match="batch dimension"):
        fd.predict_dask(nn.Flatten(0), x)


def test_shipped_model_reports_its_size_to_dask(da):
    from dask.sizeof import sizeof

    model = models.CifarVGG(batch_norm=True)
    nbytes = sum(v.nbytes for v in model.state_dict().values())
    assert sizeof(model) < 10_000  # what Dask would see for a bare module
    assert nbytes <= sizeof(fd._ModelBox(model)) < nbytes + 10_000


def test_training_mode_model_is_evaluated_in_eval_mode_and_left_alone(da):
    x = _cifar(32)
    model = _randomise_running_stats(models.CifarVGG(batch_norm=True))
    assert model.training
    before = copy.deepcopy(model.state_dict())
    y = fd.predict_dask(model, da.from_array(x, chunks=(8, 3, 32, 32)))
    out = y.compute(scheduler="threads")
    assert np.array_equal(out, _chunked_reference(model, x, 8))  # the reference runs in eval mode
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():  # running stats and num_batches_tracked untouched
        assert np.array_equal(v, before[k]), k
    with fastconv.no_grad():
        train_out = model(fastconv.Tensor(x[:8])).data  # batch statistics: different numbers
    assert not np.allclose(train_out, out[:8], atol=1e-3)


def test_threads_per_task_local(da):
    before = fastconv.get_num_threads()
    cores = fd._usable_cpus()
    probe = ThreadProbe().eval()
    x = np.zeros((8, 1), np.float32)
    y = fd.predict_dask(probe, x, batch_size=2)
    assert set(y.compute(scheduler="sync").ravel()) == {cores}  # one task at a time: all cores
    # the threaded pool: the cores shared among the tasks running at the moment
    assert set(y.compute(scheduler="threads").ravel()) <= set(range(1, cores + 1))
    out = fd.predict_dask(probe, x, batch_size=2, threads_per_task=1).compute(scheduler="sync")
    assert set(out.ravel()) == {1}
    assert fastconv.get_num_threads() == before  # restored after the tasks


def test_dynamic_task_threads_share_the_cores():
    before = fastconv.get_num_threads()
    cores = fd._usable_cpus()
    with fd._task_threads(None):
        assert fastconv.get_num_threads() == cores
        with fd._task_threads(None):  # a second task of this process starts
            assert fastconv.get_num_threads() == max(1, cores // 2)
        assert fastconv.get_num_threads() == cores  # back to one
    assert fastconv.get_num_threads() == before


# ----------------------------------------------------------------------------------------------
# dask.distributed: a 2-process LocalCluster


@pytest.fixture(scope="module")
def client(da):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, worker_dashboard_address=None
    ) as cluster, distributed.Client(cluster, set_as_default=False, timeout="60s") as c:
        # this module defines ThreadProbe: make it importable on the workers whatever pytest's import mode
        for path in (HERE, os.path.dirname(HERE)):
            c.run(_add_sys_path, path)
        assert all(c.run(_can_import, __name__).values())
        yield c


def _add_sys_path(path):
    if path not in sys.path:
        sys.path.insert(0, path)


def _can_import(name):
    import importlib

    importlib.import_module(name)
    return True


def _omp_env():  # (os.environ.get would pickle this process's environ along with it)
    return os.environ.get("OMP_NUM_THREADS")


def _reset_worker_threads():
    fd._configured_threads = None
    fastconv.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.mark.parametrize("name", ["lenet5", "cifar_vgg", "cifar_vgg_bn"])
def test_cluster_matches_local_inference(client, da, name):
    x = _cifar()
    model = {
        "lenet5": lambda: models.LeNet5(in_channels=3),
        "cifar_vgg": lambda: models.CifarVGG(),
        "cifar_vgg_bn": lambda: _randomise_running_stats(models.CifarVGG(batch_norm=True)),  # in training mode
    }[name]()
    y = fd.predict_dask(model, da.from_array(x, chunks=(16, 3, 32, 32)), client=client)
    out = client.compute(y).result(timeout=60)
    assert out.shape == (64, 10) and out.dtype == np.float32
    assert np.array_equal(out, _chunked_reference(model, x, 16))


def test_cluster_scattered_model(client, da):
    x = _cifar(48)
    model = _randomise_running_stats(models.CifarVGG(batch_norm=True))  # training mode: a copy goes out in eval
    future = fd.scatter_model(model, client=client)
    assert model.training
    y = fd.predict_dask(future, da.from_array(x, chunks=(12, 3, 32, 32)), batch_size=16)
    assert y.chunks == ((16,) * 3, (10,))
    out = client.compute(y).result(timeout=60)
    assert np.array_equal(out, _chunked_reference(model, x, 16))
    # a module scattered by hand must already be in eval mode
    raw = client.scatter(models.LeNet5(in_channels=3), hash=False)
    with pytest.raises(ValueError, match="eval mode"):
        fd.predict_dask(raw, x, client=client)


def test_cluster_model_is_shipped_once_not_per_chunk(client, da, monkeypatch):
    """The model is pickled a fixed number of times per compute, however many chunks there are.

    LocalCluster's scheduler runs in this process: it unpickles the graph and pickles what it
    sends to the workers, so copies are counted too (by a marker attribute that pickling keeps).
    As one key the model is pickled twice per compute; embedded in every task, 5 times for
    4 chunks and 17 for 16.
    """
    model = models.LeNet5(in_channels=3).eval()
    model._pickle_probe = True
    calls = []
    original = nn.Module.__getstate__

    def counting(self):
        if self.__dict__.get("_pickle_probe"):
            calls.append(1)
        return original(self)

    monkeypatch.setattr(nn.Module, "__getstate__", counting)
    x = _cifar(64)
    counts = []
    for chunk in (16, 4):  # 4 chunks, then 16
        y = fd.predict_dask(model, da.from_array(x, chunks=(chunk, 3, 32, 32)), client=client)
        calls.clear()
        out = client.compute(y).result(timeout=60)
        counts.append(len(calls))
        assert np.array_equal(out, _chunked_reference(model, x, chunk))
    assert counts[0] == counts[1] and 1 <= counts[0] <= 4, counts


def test_cluster_threads(client, da):
    probe = ThreadProbe().eval()
    x = np.zeros((16, 1), np.float32)
    facts = client.run(fd._worker_facts)
    plan = fd._plan_threads(facts)
    before = client.run(fastconv.get_num_threads)
    # default: each worker's share of its host's cores (2 workers x 1 thread here)
    out = client.compute(fd.predict_dask(probe, x, batch_size=4, client=client)).result(timeout=60)
    assert set(out.ravel()) <= set(plan.values())
    # explicit
    out = client.compute(fd.predict_dask(probe, x, batch_size=4, threads_per_task=2, client=client)).result(timeout=60)
    assert set(out.ravel()) == {2}
    assert client.run(fastconv.get_num_threads) == before  # restored after the tasks
    # configured on the workers: persistent, and predict_dask's default uses it
    try:
        assert fd.configure_worker_threads(2, client=client) == {a: 2 for a in facts}
        assert set(client.run(fastconv.get_num_threads).values()) == {2}
        assert set(client.run(_omp_env).values()) == {"2"}
        out = client.compute(fd.predict_dask(probe, x, batch_size=4, client=client)).result(timeout=60)
        assert set(out.ravel()) == {2}
        assert fd.configure_worker_threads(client=client) == plan
        assert client.run(fastconv.get_num_threads) == plan
    finally:
        client.run(_reset_worker_threads)
