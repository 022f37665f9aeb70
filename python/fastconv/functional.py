"""The functional API (``fastconv.functional``, also ``fastconv.nn.functional``).

NumPy arrays in, NumPy arrays out; semantics follow ``torch.nn.functional``.
The ``*_backward`` functions give each op's gradients directly (the autograd
layer is built on them).
"""

from ._conv import conv2d, conv2d_backward, linear, linear_backward

__all__ = [
    "conv2d",
    "conv2d_backward",
    "linear",
    "linear_backward",
]
