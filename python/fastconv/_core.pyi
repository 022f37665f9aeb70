"""Type stub of the compiled module ``fastconv._core`` (csrc/bindings/*.cpp).

Private: the package calls these; users call :mod:`fastconv.functional`.
Arrays passed to the non-``*_fast`` kernels are C-contiguous float32/float64
(indices int64) of one dtype; ``Pair`` / ``Quad`` arguments are sequences of
2 / 4 ints. The ``*_fast`` entry points take anything and return ``None`` when
the general Python path must handle the call.
"""

from typing import Any, Optional, Sequence, Tuple

import numpy as np

_Pair = Sequence[int]
_Quad = Sequence[int]
_Array = np.ndarray
_Grads = Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]

# runtime.cpp
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def set_isa(isa: str) -> None: ...
def active_isa() -> str: ...
def available_isas() -> list[str]: ...
def fma_peak(seconds: float = 0.2) -> float: ...
def ukernel_gflops(kc: int = 256, panels: int = 24, seconds: float = 0.2, offsets: bool = False) -> float: ...
def check_result(shape: Sequence[int], itemsize: int, what: str) -> None: ...
def build_info() -> dict[str, Any]: ...

# conv.cpp
def set_conv_algorithm(name: str) -> None: ...
def get_conv_algorithm() -> str: ...
class ConvWeightPack:
    def __init__(self, weight: np.ndarray, groups: int = 1) -> None: ...
    @property
    def weight(self) -> np.ndarray: ...
    @property
    def groups(self) -> int: ...
    @property
    def entries(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def conv2d_fast(
    x: object, w: object, b: object, stride: object, padding: object, dilation: object, groups: object, /
) -> Optional[np.ndarray]: ...
def conv2d_fast_out(
    x: object, w: object, b: object, stride: object, padding: object, dilation: object, groups: object, out: object, /
) -> Optional[np.ndarray]: ...
def conv2d_fast_packed(
    x: object,
    w: object,
    b: object,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
    pack: Optional[ConvWeightPack],
    /,
) -> Optional[np.ndarray]: ...
def conv2d_check(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_len: int,
    stride: _Pair,
    padding: _Quad,
    dilation: _Pair,
    groups: int,
) -> Tuple[int, int, int, int]: ...
def conv2d_forward(
    x: _Array,
    weight: _Array,
    bias: Optional[_Array],
    stride: _Pair,
    padding: _Quad,
    dilation: _Pair,
    groups: int,
    out: Optional[_Array] = None,
) -> np.ndarray: ...
def conv2d_backward(
    grad_output: _Array,
    x: _Array,
    weight: _Array,
    stride: _Pair,
    padding: _Quad,
    dilation: _Pair,
    groups: int,
    need_input: bool = True,
    need_weight: bool = True,
    need_bias: bool = True,
) -> _Grads: ...

# linear.cpp
def linear_fast(x: object, w: object, b: object, /) -> Optional[np.ndarray]: ...
def linear_fast_out(x: object, w: object, b: object, out: object, /) -> Optional[np.ndarray]: ...
def linear_check(input_shape: Sequence[int], weight_shape: Sequence[int], bias_len: int) -> list[int]: ...
def linear_forward(x: _Array, weight: _Array, bias: Optional[_Array], out: Optional[_Array] = None) -> np.ndarray: ...
def linear_backward(
    grad_output: _Array,
    x: _Array,
    weight: _Array,
    need_input: bool = True,
    need_weight: bool = True,
    need_bias: bool = True,
) -> _Grads: ...

# pool.cpp
def relu_fast(x: object, /) -> Optional[np.ndarray]: ...
def max_pool2d_fast(
    x: object, kernel: object, stride: object, padding: object, dilation: object, ceil_mode: object, /
) -> Optional[np.ndarray]: ...
def max_pool2d_fast_out(
    x: object,
    kernel: object,
    stride: object,
    padding: object,
    dilation: object,
    ceil_mode: object,
    out: object,
    /,
) -> Optional[np.ndarray]: ...
def max_pool2d_forward(
    x: _Array,
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    ceil_mode: bool,
    need_indices: bool = True,
    out: Optional[_Array] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...
def avg_pool2d_forward(
    x: _Array,
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int,
    out: Optional[_Array] = None,
) -> np.ndarray: ...
def avg_pool2d_backward(
    grad_output: _Array,
    input_shape: Sequence[int],
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int,
) -> np.ndarray: ...
def adaptive_avg_pool2d_forward(x: _Array, output_size: _Pair, out: Optional[_Array] = None) -> np.ndarray: ...
def adaptive_avg_pool2d_backward(grad_output: _Array, input_shape: Sequence[int]) -> np.ndarray: ...
def adaptive_max_pool2d_forward(x: _Array, output_size: _Pair) -> Tuple[np.ndarray, np.ndarray]: ...
def max_pool_backward(grad_output: _Array, indices: _Array, input_shape: Sequence[int]) -> np.ndarray: ...
def max_unpool2d_forward(x: _Array, indices: _Array, output_size: _Pair) -> np.ndarray: ...
def max_unpool2d_backward(grad_output: _Array, indices: _Array) -> np.ndarray: ...
