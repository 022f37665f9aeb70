"""The optional-feature modules load lazily and never at ``import fastconv``."""

import subprocess
import sys

import pytest


def test_import_fastconv_loads_no_optional_dependency():
    code = (
        "import sys, fastconv\n"
        "heavy = [m for m in ('onnx', 'onnxruntime', 'matplotlib', 'dask', 'distributed', 'torch') if m in sys.modules]\n"
        "ours = [m for m in ('fastconv.onnx', 'fastconv.viz', 'fastconv.distributed') if m in sys.modules]\n"
        "print(heavy, ours)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


@pytest.mark.parametrize("name", ["onnx", "viz", "distributed"])
def test_submodule_as_attribute(name):
    import fastconv

    mod = getattr(fastconv, name)
    assert mod.__name__ == f"fastconv.{name}"
    assert sys.modules[f"fastconv.{name}"] is mod


def test_unknown_attribute_is_attribute_error():
    import fastconv

    with pytest.raises(AttributeError, match="no attribute 'not_a_module'"):
        fastconv.not_a_module
