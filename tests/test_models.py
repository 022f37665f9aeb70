"""The model zoo: every model runs forward and backward with the right shapes."""

import numpy as np
import pytest

import fastconv
from fastconv import models, tensor


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_zoo_forward_backward(name):
    fastconv.manual_seed(0)
    m = models.get_model(name)
    shape = (2,) + models.input_shape(name)
    x = tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    m.train()
    for mod in m.modules():
        if isinstance(mod, fastconv.nn.Dropout):
            mod.p = 0.0
    y = m(x)
    n_out = 1000 if name == "alexnet" else 10
    assert y.shape == (2, n_out)
    fastconv.nn.functional.cross_entropy(y, np.array([1, 2])).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, pname
        assert np.all(np.isfinite(p.grad)), pname


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'resnet9000'"):
        models.get_model("resnet9000")
