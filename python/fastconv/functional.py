"""The functional API (``fastconv.functional``, also ``fastconv.nn.functional``).

NumPy arrays in, NumPy arrays out; semantics follow ``torch.nn.functional``.
The ``*_backward`` functions give each op's gradients directly (the autograd
layer is built on them).
"""

from ._conv import conv2d, conv2d_backward, linear, linear_backward
from ._elementwise import (
    batch_norm,
    batch_norm_backward,
    batch_norm_forward,
    cross_entropy,
    cross_entropy_backward,
    cross_entropy_forward,
    dropout,
    dropout_backward,
    dropout_forward,
    flatten,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    mse_loss,
    mse_loss_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)

__all__ = [
    "conv2d",
    "conv2d_backward",
    "linear",
    "linear_backward",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "log_softmax_backward",
    "cross_entropy",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "mse_loss",
    "mse_loss_backward",
    "flatten",
    "dropout",
    "dropout_forward",
    "dropout_backward",
    "batch_norm",
    "batch_norm_forward",
    "batch_norm_backward",
]
