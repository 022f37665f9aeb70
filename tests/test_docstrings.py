"""The examples in the docstrings run, and docs/api.md is what docs/gen_api.py writes.

Every public module's doctests run with the names the API reference assumes
(``np``, ``fastconv``, ``F`` = fastconv.functional, ``nn`` = fastconv.nn), fixed
NumPy print options, and ELLIPSIS / NORMALIZE_WHITESPACE.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import sys

import numpy as np
import pytest

import fastconv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GEN_API = os.path.join(ROOT, "docs", "gen_api.py")
API_MD = os.path.join(ROOT, "docs", "api.md")

MODULES = [
    "fastconv",
    "fastconv._typing",
    "fastconv._runtime",
    "fastconv.functional",
    "fastconv._conv",
    "fastconv._pool",
    "fastconv._elementwise",
    "fastconv._losses",
    "fastconv._norm",
    "fastconv.tensor",
    "fastconv.autograd",
    "fastconv.nn",
    "fastconv.nn.module",
    "fastconv.nn.layers",
    "fastconv.nn.init",
    "fastconv.optim",
    "fastconv.optim.optimizer",
    "fastconv.serialization",
    "fastconv.summary",
    "fastconv.models",
]
# public modules that need optional dependencies: run when they import
OPTIONAL_MODULES = ["fastconv.onnx", "fastconv.distributed", "fastconv.viz"]

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _print_options() -> dict:
    opts: dict = dict(precision=4, suppress=True, linewidth=75, threshold=1000)
    if int(np.__version__.split(".")[0]) >= 2:
        opts["legacy"] = "1.25"  # scalars print as 1.0, not np.float64(1.0)
    return opts


def _globs() -> dict:
    import fastconv.functional as F
    from fastconv import nn

    return {"np": np, "fastconv": fastconv, "F": F, "nn": nn}


def _run_doctests(name: str) -> tuple[int, int, str]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    grad_mode, threads = fastconv.is_grad_enabled(), fastconv.get_num_threads()
    with np.printoptions(**_print_options()):
        for test in finder.find(module, name, extraglobs=_globs()):
            runner.run(test, out=report.append)
    assert fastconv.is_grad_enabled() == grad_mode and fastconv.get_num_threads() == threads, (
        f"{name}: a docstring example leaked global state"
    )
    results = runner.summarize(verbose=False)
    return results.failed, results.attempted, "".join(report)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    failed, attempted, report = _run_doctests(name)
    assert failed == 0, f"{failed} of {attempted} docstring examples of {name} failed:\n{report}"


@pytest.mark.parametrize("name", OPTIONAL_MODULES)
def test_doctests_optional_modules(name: str, tmp_path, monkeypatch) -> None:
    try:
        importlib.import_module(name)
    except ImportError as e:
        pytest.skip(f"{name} does not import here: {e}")
    monkeypatch.chdir(tmp_path)
    failed, attempted, report = _run_doctests(name)
    assert failed == 0, f"{failed} of {attempted} docstring examples of {name} failed:\n{report}"


def test_public_names_have_examples() -> None:
    """Every public module, functional op (and gradient), layer, init function,
    optimiser, model and top-level function documents an example."""
    import inspect

    import fastconv.functional as F
    from fastconv import models, nn, optim

    objects: list = [importlib.import_module(n) for n in MODULES if not n.rsplit(".", 1)[-1].startswith("_")]
    objects += [getattr(F, n) for n in F.__all__]
    objects += [getattr(nn, n) for n in nn.__all__ if n not in ("functional", "init")]
    objects += [
        v for k, v in vars(nn.init).items()
        if inspect.isfunction(v) and v.__module__ == nn.init.__name__ and not k.startswith("_")
    ]
    objects += [getattr(optim, n) for n in optim.__all__ if n != "Optimizer"]
    objects += [v for v in vars(models).values() if inspect.isclass(v) and v.__module__ == models.__name__]
    objects += [models.get_model, models.input_shape]
    objects += [getattr(fastconv, n) for n in fastconv.__all__ if callable(getattr(fastconv, n))]
    missing = sorted({getattr(o, "__qualname__", getattr(o, "__name__", repr(o))) for o in objects
                      if ">>>" not in (o.__doc__ or "")})
    assert not missing, f"public names without a docstring example: {missing}"


def _load_generator():
    spec = importlib.util.spec_from_file_location("fastconv_gen_api", GEN_API)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(spec.name, None)
    return mod


def test_api_reference_is_up_to_date() -> None:
    gen = _load_generator()
    missing = sorted(set(gen.OPTIONAL_MODULES) - {m.__name__ for m in gen._optional_modules()})
    if missing:  # the reference documents them; without them here the text would differ
        pytest.skip(f"cannot regenerate docs/api.md here: {', '.join(missing)} do not import")
    expected = gen.generate()
    assert expected == gen.generate(), "docs/gen_api.py output is not deterministic"
    with open(API_MD, encoding="utf-8") as f:
        actual = f.read()
    if actual != expected:
        import difflib

        diff = "".join(
            list(
                difflib.unified_diff(
                    actual.splitlines(True), expected.splitlines(True), "docs/api.md", "generated", n=1
                )
            )[:80]
        )
        pytest.fail(f"docs/api.md is stale: run `python docs/gen_api.py` and commit the result\n{diff}")
