"""``fastconv.optim``: SGD and Adam, updating exactly as PyTorch's do.

>>> model = nn.Linear(3, 1)
>>> opt = fastconv.optim.Adam(model.parameters(), lr=1e-2)
>>> len(opt.param_groups[0]["params"]), opt.param_groups[0]["lr"]
(2, 0.01)
"""

from .optimizer import SGD, Adam, Optimizer

__all__ = ["Optimizer", "SGD", "Adam"]
