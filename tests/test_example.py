"""The digits example learns (a shortened run)."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"


def test_train_digits_learns():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, acc, _ = mod.train(epochs=2, seed=0, log=None)
    # ten classes: chance is 10%; two epochs already separate them well
    assert acc > 0.85, acc
