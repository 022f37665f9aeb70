"""The command line: fastconv info / summary / bench, and the NumPy baseline it measures against."""

import json
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import _baseline as base
from fastconv import _bench
from fastconv.cli import main

from reference import conv2d_ref


def run_cli(*args):
    """Run ``python -m fastconv`` in a subprocess (a crash is a failure, not a lost run)."""
    return subprocess.run([sys.executable, "-m", "fastconv", *args], capture_output=True, text=True, timeout=300)


def test_info_prints_build_info():
    r = run_cli("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["version"] == fastconv.__version__
    assert info["simd"] in info["simd_available"]


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for cmd in ("bench", "summary", "info"):
        assert cmd in out


def test_summary_lenet5_worked_numbers(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    # the numbers people learn: 6x28x28 after the 5x5 conv, 6x14x14 after pooling, 16x10x10, 61,706 parameters
    for text in ("(1, 6, 28, 28)", "(1, 6, 14, 14)", "(1, 16, 10, 10)", "61,706"):
        assert text in out


def test_summary_alexnet_parameter_count(capsys):
    assert main(["summary", "alexnet"]) == 0
    assert "61,100,840" in capsys.readouterr().out


def test_summary_unknown_model(capsys):
    assert main(["summary", "nosuchnet"]) == 2
    err = capsys.readouterr().err
    assert "nosuchnet" in err and "lenet5" in err


def test_bench_list(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in _bench.CASES)


def test_bench_unknown_case(capsys):
    assert main(["bench", "--cases", "lenet_c1_b1,bogus", "--no-torch"]) == 2
    assert "bogus" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "a", "1,-2", ""])
def test_bench_bad_threads(bad):
    r = run_cli("bench", "--threads", bad)
    assert r.returncode == 2
    assert "thread" in r.stderr


@pytest.mark.parametrize("bad", ["0", "x", "-1"])
def test_bench_bad_rounds(bad):
    r = run_cli("bench", "--rounds", bad)
    assert r.returncode == 2
    assert "rounds" in r.stderr or "positive integer" in r.stderr


def test_measure_rounds_interleaves(monkeypatch):
    # every entry is timed in every round, in blocks that alternate between the
    # entries (order rotated each round), each block inside its own context
    monkeypatch.setattr(_bench, "_pause", lambda seconds=0.0: pauses.append(seconds))
    pauses = []
    log = []

    def fn(key):
        def f():
            log.append(key)
        return f

    entered = []

    class Ctx:
        def __enter__(self):
            entered.append("numpy")

        def __exit__(self, *exc):
            entered.append("/numpy")

    times = _bench.measure_rounds(
        [("fastconv", fn("f"), None), ("numpy", fn("n"), Ctx), ("torch", fn("t"), None)], min_time=0.0, rounds=3,
        settle={"numpy": 0.25},
    )
    assert set(times) == {"fastconv", "numpy", "torch"} and all(v > 0 for v in times.values())
    blocks = [k for i, k in enumerate(log) if i == 0 or log[i - 1] != k]  # consecutive runs of one key
    assert blocks == ["f", "n", "t", "n", "t", "f", "t", "f", "n"]
    assert entered == ["numpy", "/numpy"] * 3
    # a pause after every block; the longer one after the BLAS-threaded entry's
    assert pauses == [0.25 if k == "n" else 0.0 for k in blocks]


def test_bench_runs_and_writes_json(tmp_path):
    # a short real run in a subprocess: table, speed-up lines, agreement, JSON
    js = tmp_path / "r.json"
    md = tmp_path / "r.md"
    r = run_cli(
        "bench", "--cases", "lenet_c1_b1,lenet_pool1_b64,lenet_fc1_b64,lenet5_b1,dw_3x3_c64_b8",
        "--threads", "1", "--min-time", "0.01", "--no-torch", "--json", str(js), "--markdown", str(md),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[ 5/5]" in r.stderr  # progress
    assert "vs NumPy" in r.stdout and "outputs agree on every case" in r.stdout
    data = json.loads(js.read_text())
    assert [x["case"] for x in data["results"]] == [
        "lenet_c1_b1", "lenet_pool1_b64", "lenet_fc1_b64", "lenet5_b1", "dw_3x3_c64_b8"
    ]
    for x in data["results"]:
        assert x["agree"] and x["fastconv_ms"] > 0 and x["numpy_ms"] > 0
        assert x["max_rel_diff_numpy"] <= _bench.AGREE_TOL
    assert data["environment"]["numpy"] == np.__version__
    assert md.read_text().startswith("| case |")


def test_bench_detects_disagreement(monkeypatch):
    # the agreement check can fail: a wrong fastconv result is reported and the exit status is 1
    real = _bench._fastconv_fn

    def wrong(case, arrays, model=None):
        f = real(case, arrays, model)
        return lambda: f() * 1.01

    monkeypatch.setattr(_bench, "_fastconv_fn", wrong)
    assert main(["bench", "--cases", "lenet_c1_b1", "--threads", "1", "--min-time", "0.001", "--no-torch",
                 "--no-backward", "-q"]) == 1


def test_case_flops():
    c = {c.name: c for c in _bench.CASES}
    # 64x64 3x3 conv on 32x32 with padding 1 at batch 32: 2 * 32 * 64 * 32 * 32 * 64 * 9
    assert c["cifar_c64_64_b32"].flops() == 2.0 * 32 * 64 * 32 * 32 * 64 * 9
    assert c["alex_c1_k11s4_b1"].flops() == 2.0 * 64 * 55 * 55 * 3 * 11 * 11
    assert c["dw_3x3_c64_b8"].flops() == 2.0 * 8 * 64 * 56 * 56 * 9
    assert c["alex_fc_b64"].flops() == 2.0 * 64 * 9216 * 4096


# --- the NumPy baseline against the float64 reference (the benchmark's yardstick must be right) ---


@pytest.mark.parametrize(
    "shape,oc,k,s,p,g",
    [((2, 3, 9, 9), 4, 3, 1, 1, 1), ((1, 4, 11, 11), 6, 5, 2, 2, 2), ((2, 6, 8, 8), 6, 3, 1, 1, 6), ((1, 2, 7, 7), 3, 1, 1, 0, 1)],
)
def test_baseline_conv2d(shape, oc, k, s, p, g):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((oc, shape[1] // g, k, k))
    b = rng.standard_normal(oc)
    np.testing.assert_allclose(base.conv2d(x, w, b, s, p, g), conv2d_ref(x, w, b, s, p, 1, g), rtol=1e-10, atol=1e-10)


def test_baseline_pooling_and_linear():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7))
    # max pool k3 s2 by explicit loops
    want = np.array([[[[x[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(3)] for i in range(3)]
                      for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(base.max_pool2d(x, 3, 2), want)
    want = np.array([[[[x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(3)] for i in range(3)]
                      for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(base.avg_pool2d(x, 2, 2), want, rtol=1e-12)
    np.testing.assert_allclose(base.adaptive_avg_pool2d(x, 1)[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)
    # 7 -> 3 does not divide: PyTorch's windows [floor(i*7/3), ceil((i+1)*7/3))
    a = base.adaptive_avg_pool2d(x, 3)
    np.testing.assert_allclose(a[:, :, 1, 2], x[:, :, 2:5, 4:7].mean(axis=(2, 3)), rtol=1e-12)
    w = rng.standard_normal((5, 7))
    np.testing.assert_allclose(base.linear(x[0, 0], w, np.ones(5)), x[0, 0] @ w.T + 1, rtol=1e-12)
