"""Float64 finite differences for the autograd / nn tests (independent of fastconv's gradients)."""

from __future__ import annotations

import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to the array x (modified in place and restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        a = float(f())
        flat[i] = old - eps
        b = float(f())
        flat[i] = old
        gflat[i] = (a - b) / (2 * eps)
    return g


def assert_close(actual, expected, rtol=1e-6, atol=1e-8, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= atol + rtol * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"
