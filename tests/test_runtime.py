"""Runtime: build_info, thread count, kernel-path selection (set_isa, FASTCONV_ISA, OMP_NUM_THREADS)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _core
from reference import assert_close, conv2d_ref, conv2d_scales

KNOWN_ISAS = {"avx512", "avx2", "neon", "scalar"}


# ---------------------------------------------------------------------------
# build_info


def test_build_info_keys_and_types():
    info = fastconv.build_info()
    assert isinstance(info, dict)
    assert isinstance(info["version"], str) and info["version"] == fastconv.__version__
    assert info["version"].count(".") >= 2
    assert isinstance(info["compiler"], str) and info["compiler"].strip()
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["simd"], str) and info["simd"] in KNOWN_ISAS
    avail = info["simd_available"]
    assert isinstance(avail, list) and all(isinstance(s, str) for s in avail)
    assert set(avail) <= KNOWN_ISAS and "scalar" in avail and len(set(avail)) == len(avail)
    assert info["simd"] in avail
    assert avail == list(_core.available_isas())
    assert isinstance(info["threads"], int) and not isinstance(info["threads"], bool)
    assert info["threads"] == fastconv.get_num_threads() >= 1


def test_build_info_is_a_fresh_dict():
    a = fastconv.build_info()
    a["simd"] = "bogus"
    assert fastconv.build_info()["simd"] != "bogus"


def test_default_isa_is_the_best_available():
    # unless FASTCONV_ISA narrowed it for this run
    # (every fixture that switches paths restores the default afterwards)
    env = os.environ.get("FASTCONV_ISA")
    avail = _core.available_isas()
    choice = fastconv.build_info()["simd_choice"]
    if env in avail:
        assert _core.active_isa() == env and choice.startswith(f"FASTCONV_ISA={env}"), choice
    else:
        # AVX-512 ahead of AVX2 whatever the width of its FMA units
        assert avail.index("scalar") == len(avail) - 1
        assert _core.active_isa() == avail[0] and choice.startswith("best available"), choice
    if "avx512" in avail and "avx2" in avail:
        # the probe's ratio is reported for the record: ~1x (Zen 4) to ~2x (full-width units)
        ratio = float(re.search(r"avx512 throughput ([0-9.]+)x avx2", choice).group(1))
        assert 0.5 < ratio < 3.0, choice


# ---------------------------------------------------------------------------
# threads


def test_num_threads_round_trip(restore_runtime):
    for n in (1, 2, 3, 1, 8):
        fastconv.set_num_threads(n)
        assert fastconv.get_num_threads() == n
        assert fastconv.build_info()["threads"] == n
    fastconv.set_num_threads(np.int64(2))
    assert fastconv.get_num_threads() == 2
    assert type(fastconv.get_num_threads()) is int


@pytest.mark.parametrize("bad", [0, -1, -(2**40)], ids=str)
def test_set_num_threads_rejects_non_positive(bad, restore_runtime):
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=r"set_num_threads: n must be"):
        fastconv.set_num_threads(bad)
    assert fastconv.get_num_threads() == before


@pytest.mark.parametrize("bad", [1.5, 2.0, True, False, "2", None, np.float64(2.0), np.bool_(True)], ids=repr)
def test_set_num_threads_rejects_non_integers(bad, restore_runtime):
    before = fastconv.get_num_threads()
    with pytest.raises(TypeError, match=r"set_num_threads: n must be an int"):
        fastconv.set_num_threads(bad)
    assert fastconv.get_num_threads() == before


@pytest.mark.parametrize("big", [2**31, 2**40], ids=str)
def test_set_num_threads_rejects_absurd_counts_as_value_error(big, restore_runtime):
    # an int that cannot be a thread count is a bad value (ValueError naming n), not a type error
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=r"set_num_threads"):
        fastconv.set_num_threads(big)
    assert fastconv.get_num_threads() == before


def test_more_threads_than_cores_gives_the_same_bits(restore_runtime, rng):
    x = rng.standard_normal((4, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((4, 24, 16, 16)).astype(np.float32)
    out = {}
    for n in (1, 3, 7):
        fastconv.set_num_threads(n)
        out[n] = (F.conv2d(x, w, padding=1),) + F.conv2d_backward(dy, x, w, padding=1)
    for n in (3, 7):
        for a, b in zip(out[1], out[n]):
            assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# kernel paths


@pytest.mark.parametrize("name", _core.available_isas())
def test_set_isa_each_available_path(name, restore_runtime, rng):
    _core.set_isa(name)
    assert _core.active_isa() == name
    info = fastconv.build_info()
    assert info["simd"] == name
    assert name in info["sgemm_kernel"] and name in info["dgemm_kernel"]
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((5, 3, 3, 3))
    assert_close(F.conv2d(x, w, padding=1), conv2d_ref(x, w, padding=1), conv2d_scales(x, w, padding=1))


@pytest.mark.parametrize("bogus", ["sse9", "", "AVX2", " avx2", "avx2 "] + sorted(KNOWN_ISAS - set(_core.available_isas())))
def test_set_isa_unknown_or_unavailable(bogus, restore_runtime):
    before = _core.active_isa()
    with pytest.raises(ValueError, match=r"set_isa: isa .* is not available.*available: " + ", ".join(_core.available_isas())):
        _core.set_isa(bogus)
    assert _core.active_isa() == before


def test_isa_fixture_covers_every_path(isa):
    assert fastconv.build_info()["simd"] == isa


# ---------------------------------------------------------------------------
# environment variables, read once at start-up (fresh interpreters)

_PROBE = r"""
import json, numpy as np, fastconv, fastconv.functional as F
x = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6) % 7 - 3
w = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) % 5 - 2
y = F.conv2d(x, w, padding=1)
info = fastconv.build_info()
print(json.dumps({"simd": info["simd"], "choice": info["simd_choice"], "threads": fastconv.get_num_threads(),
                  "y": y.tolist()}))
"""


def _run(env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTCONV_ISA", "OMP_NUM_THREADS")}
    env.update(env_changes)
    r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _probe_ref():
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6) % 7 - 3
    w = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) % 5 - 2
    return conv2d_ref(x, w, padding=1)


@pytest.mark.parametrize("name", _core.available_isas())
def test_fastconv_isa_env_selects_the_path(name):
    out = _run({"FASTCONV_ISA": name})
    assert out["simd"] == name
    assert np.array_equal(np.array(out["y"]), _probe_ref())  # small integers: exact on every path


def test_fastconv_isa_env_unavailable_falls_back_to_a_working_path():
    # a path this machine cannot run (or a typo) must not break the import
    for value in ["nosuchisa"] + sorted(KNOWN_ISAS - set(_core.available_isas())):
        out = _run({"FASTCONV_ISA": value})
        assert out["simd"] in _core.available_isas()
        assert np.array_equal(np.array(out["y"]), _probe_ref())


def test_no_env_uses_the_best_path():
    out = _run({})
    avail = _core.available_isas()
    assert out["simd"] == avail[0] and out["choice"].startswith("best available"), out["choice"]
    assert np.array_equal(np.array(out["y"]), _probe_ref())


@pytest.mark.parametrize("value,want", [("1", 1), ("3", 3), ("2,1", 2)])
def test_omp_num_threads_sets_the_default(value, want):
    out = _run({"OMP_NUM_THREADS": value})
    assert out["threads"] == want
    assert np.array_equal(np.array(out["y"]), _probe_ref())


def test_default_threads_without_omp_num_threads():
    out = _run({})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert out["threads"] == cores


@pytest.mark.parametrize("value", ["0", "-2", "abc", ""])
def test_invalid_omp_num_threads_is_ignored(value):
    out = _run({"OMP_NUM_THREADS": value})
    assert out["threads"] >= 1


def test_ukernel_gflops_diagnostic():
    from fastconv import _core

    for offsets in (False, True):
        g = _core.ukernel_gflops(kc=64, panels=2, seconds=0.01, offsets=offsets)
        assert 0 < g < 1e5
    for bad in (dict(kc=0), dict(panels=0), dict(seconds=0), dict(kc=5000)):
        with pytest.raises(ValueError, match="ukernel_gflops"):
            _core.ukernel_gflops(**bad)
