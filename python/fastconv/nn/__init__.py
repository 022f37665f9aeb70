"""``fastconv.nn``: modules with PyTorch's names, arguments and state_dict layout.

>>> net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2))
>>> net(np.zeros((1, 1, 32, 32), np.float32)).shape
(1, 6, 14, 14)
>>> {k: v.shape for k, v in net.state_dict().items()}
{'0.weight': (6, 1, 5, 5), '0.bias': (6,)}
"""

from .. import functional
from . import init
from .layers import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    MaxUnpool2d,
    ModuleList,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import Module, Parameter

__all__ = [
    "functional",
    "init",
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "Identity",
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "MaxUnpool2d",
    "Flatten",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "BatchNorm2d",
    "CrossEntropyLoss",
    "MSELoss",
]
