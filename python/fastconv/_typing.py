"""Type aliases used in fastconv's annotations.

They are defined once here and read the same in the API reference:

- ``TensorLike``: what every functional op accepts, a :class:`fastconv.Tensor`
  or anything :func:`numpy.asarray` takes (``numpy.typing.ArrayLike``).
- ``IntPair``: an int, or a ``(height, width)`` pair (``kernel_size``,
  ``stride``, ``dilation``, pooling ``padding``), as PyTorch's ``_size_2_t``.
- ``Padding``: conv2d padding, an ``IntPair`` or ``'valid'`` / ``'same'``.
- ``OutputSize``: adaptive pooling output size, an int or an ``(H, W)`` pair
  whose entries may be ``None`` (keep that input size).
- ``Shape``: a sequence of ints (``input_shape`` arguments).
- ``GradFlags``: ``needs_input_grad``, one bool per differentiable input.

The aliases are runtime objects built with :mod:`typing` (``Union``, not
``X | Y``), so the annotations resolve on Python 3.9 too.

>>> import typing
>>> from fastconv._typing import IntPair
>>> typing.get_args(IntPair)[0], len(typing.get_args(IntPair))
(<class 'int'>, 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "ArrayLike",
    "DTypeLike",
    "TensorLike",
    "IntPair",
    "Padding",
    "OutputSize",
    "Shape",
    "GradFlags",
    "ArrayT",
]

#: A fastconv Tensor or anything ``np.asarray`` accepts.
TensorLike = Union["Tensor", ArrayLike]

#: An int (used for both dimensions) or a ``(height, width)`` pair.
IntPair = Union[int, Tuple[int, int], List[int]]

#: conv2d padding: an int, a ``(pad_h, pad_w)`` pair, ``'valid'`` or ``'same'``.
Padding = Union[int, Tuple[int, int], List[int], str]

#: Adaptive pooling output size: an int, or ``(H, W)`` with ``None`` keeping that input size.
OutputSize = Union[int, None, Tuple[Optional[int], Optional[int]], List[Optional[int]]]

#: A shape argument: a sequence of ints, e.g. ``(N, C, H, W)``.
Shape = Sequence[int]

#: ``needs_input_grad``: one flag per differentiable input.
GradFlags = Sequence[bool]

#: An array or a Tensor; an op annotated ``(ArrayT) -> ArrayT`` returns the kind it was given.
ArrayT = TypeVar("ArrayT", "Tensor", np.ndarray)
