"""``fastconv.optim``: SGD and Adam, updating exactly as PyTorch's do."""

from .optimizer import SGD, Adam, Optimizer

__all__ = ["Optimizer", "SGD", "Adam"]
