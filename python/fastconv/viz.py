"""Pictures of what a CNN learned and sees: filters, feature maps, training curves.

Plotting needs matplotlib, an optional extra (``pip install 'fastconv[viz]'``);
it is imported only inside the functions that draw, so ``import fastconv.viz``
works without it, and so do the array helpers :func:`feature_maps`,
:func:`filter_grid`, :func:`feature_grid`, :func:`sample_image`,
:func:`load_image`, :func:`resize_image` and :func:`adapt_image`.

Figures are plain ``matplotlib.figure.Figure`` objects drawn on an Agg
canvas: no pyplot, no GUI window, no change to the user's backend or to
pyplot's list of open figures. Image grids are drawn pixel-aligned: each
value of the grid array becomes a ``scale`` x ``scale`` block of pixels,
so a saved PNG is exactly ``(rows * scale + title band) x (cols * scale)``.

Example::

    import fastconv, fastconv.viz as viz
    fastconv.manual_seed(0)
    model = fastconv.models.CifarVGG().eval()
    x = viz.sample_image(32)                         # (3, 32, 32) float32 in [0, 1]
    viz.plot_filters(model.features[0], path="filters.png")
    viz.plot_feature_maps(model, x, "features.2", path="maps.png")
    acts = viz.feature_maps(model, x, ["features.0", "features.4"])  # {name: ndarray}
"""

from __future__ import annotations

import math
import os
import re
import struct
import zlib
from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union, cast

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .nn.module import Module

#: A path for ``savefig``/``open``.
PathLike = Union[str, "os.PathLike[str]"]
#: An image size: an int for a square, or (H, W).
Size = Union[int, Tuple[int, int]]
#: A layer of a model: its dotted name from ``named_modules()`` or the submodule itself.
Layer = Union[str, "Module"]
#: A grid title: True for an automatic one, a string, or False/None for none.
Title = Union[str, bool, None]

__all__ = [
    "plot_filters",
    "plot_feature_maps",
    "plot_training_curves",
    "feature_maps",
    "filter_grid",
    "feature_grid",
    "sample_image",
    "load_image",
    "resize_image",
    "adapt_image",
]

INSTALL_HINT = "pip install 'fastconv[viz]'"
TITLE_PX = 30  # height of the title band above a pixel-aligned image grid, in pixels
MIN_SIDE_PX = 400  # image grids are magnified by an integer factor until their longer side reaches this
SAMPLE_PNG = "sample.png"


# ------------------------------------------------------------------------------------------------
# matplotlib, lazily


def _mpl() -> Tuple[Any, Any]:
    """Import matplotlib's object-oriented pieces (no pyplot), or explain how to get them."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            f"fastconv.viz: drawing needs matplotlib, which is not installed; install it with {INSTALL_HINT}"
        ) from e
    return Figure, FigureCanvasAgg


def _new_figure(width_px: int, height_px: int, dpi: float, **kw: Any) -> Figure:
    """A Figure of exactly ``width_px`` x ``height_px`` pixels at ``dpi``, on its own Agg canvas."""
    Figure, FigureCanvasAgg = _mpl()

    def inches(px: int) -> float:
        v = px / dpi
        # older matplotlib truncates size*dpi to an int: never let rounding lose the last pixel
        while v * dpi < px:
            v = float(np.nextafter(v, np.inf))
        return v

    fig = Figure(figsize=(inches(width_px), inches(height_px)), dpi=dpi, **kw)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Optional[PathLike]) -> Figure:
    if path is not None:
        path = os.fspath(path)
        d = os.path.dirname(path)
        if d and not os.path.isdir(d):
            raise FileNotFoundError(f"fastconv.viz: directory {d!r} (of path {path!r}) does not exist")
        fig.savefig(path, dpi=fig.dpi)
    return fig


def _image_figure(grid: np.ndarray, *, title: Optional[str], cmap: str, scale: Optional[int], dpi: float,
                  ax: Optional[Axes] = None, fig: Optional[Figure] = None, vmin: float = 0.0,
                  vmax: float = 1.0) -> Figure:
    """Draw ``grid`` ((H, W) values in [vmin, vmax] through ``cmap``, or (H, W, 3) RGB in [0, 1]).

    Without ``ax``/``fig``: a new figure, the grid magnified by the integer ``scale`` and drawn
    pixel-aligned, with a ``TITLE_PX`` band above it when there is a title.
    """
    kw: Dict[str, Any] = dict(interpolation="nearest", resample=False)
    if grid.ndim == 2:
        kw.update(cmap=cmap, vmin=vmin, vmax=vmax)
    else:
        grid = np.clip(grid, 0.0, 1.0)
    if ax is None and fig is not None:
        ax = fig.add_subplot(1, 1, 1)
    if ax is not None:
        ax.imshow(grid, **kw)
        ax.set_axis_off()
        if title:
            ax.set_title(title, fontsize=10)
        return cast("Figure", ax.figure)
    gh, gw = grid.shape[:2]
    if scale is None:
        scale = max(1, math.ceil(MIN_SIDE_PX / max(gh, gw)))
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    band = TITLE_PX if title else 0
    h, w = gh * scale, gw * scale
    fig = _new_figure(w, h + band, dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, h / (h + band)))
    ax.imshow(grid, aspect="auto", **kw)
    ax.set_axis_off()
    if title:
        fig.text(0.5, 1.0 - (band / 2) / (h + band), title, ha="center", va="center", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------------
# grids of tiles


def _minmax(a: np.ndarray, axes: Optional[Tuple[int, ...]], constant: float) -> np.ndarray:
    """Scale ``a`` to [0, 1] over ``axes`` (min -> 0, max -> 1); a constant slice becomes ``constant``."""
    with np.errstate(invalid="ignore"):
        lo = np.nanmin(a, axis=axes, keepdims=True) if a.size else a
        hi = np.nanmax(a, axis=axes, keepdims=True) if a.size else a
        span = hi - lo
        out = np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), constant)
    return out


def _tile(tiles: np.ndarray, ncols: int, pad: int, pad_value: float) -> np.ndarray:
    """Lay out (n, h, w[, 3]) tiles row-major in ``ncols`` columns, ``pad`` pixels between and around.

    Tile ``k`` has its top-left pixel at ``(pad + (k // ncols) * (h + pad), pad + (k % ncols) * (w + pad))``.
    """
    n, h, w = tiles.shape[:3]
    rows = max(1, math.ceil(n / ncols))
    shape = (pad + rows * (h + pad), pad + ncols * (w + pad)) + tiles.shape[3:]
    grid = np.full(shape, pad_value, dtype=np.float64)
    for k in range(n):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = tiles[k]
    return grid


def _check_grid_args(ncols: Any, pad: Any, normalize: Any, fname: str) -> None:
    if ncols is not None and (not isinstance(ncols, (int, np.integer)) or isinstance(ncols, bool) or ncols < 1):
        raise ValueError(f"{fname}: ncols must be a positive integer or None, got {ncols!r}")
    if not isinstance(pad, (int, np.integer)) or isinstance(pad, bool) or pad < 0:
        raise ValueError(f"{fname}: pad must be a non-negative integer, got {pad!r}")
    if normalize not in ("each", "all"):
        raise ValueError(f"{fname}: normalize must be 'each' or 'all', got {normalize!r}")


def _weight_array(conv_or_weight: Any) -> np.ndarray:
    from .nn.module import Module
    from .tensor import Tensor

    w = conv_or_weight
    if isinstance(w, Module):
        if not isinstance(getattr(w, "weight", None), Tensor):
            raise TypeError(f"expected a conv layer with a .weight, got {type(w).__name__}")
        w = w.weight
    if isinstance(w, Tensor):
        w = w.data
    elif not isinstance(w, np.ndarray) and hasattr(w, "numpy"):  # e.g. a torch tensor
        w = w.detach().cpu().numpy() if hasattr(w, "detach") else w.numpy()
    w = np.asarray(w)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"filter weights must be real numbers, got dtype {w.dtype}")
    if w.ndim != 4:
        raise ValueError(f"filter weights must have shape (out_channels, in_channels/groups, kH, kW), got {w.shape}")
    return w.astype(np.float64)


def filter_grid(conv_or_weight: Any, *, channels: Union[str, int] = "auto", normalize: str = "each",
                ncols: Optional[int] = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """The filters of a conv layer laid out as one image: (GH, GW, 3) RGB or (GH, GW) grayscale, in [0, 1].

    Args:
        conv_or_weight: an ``nn.Conv2d`` (or any module with a 4-D ``.weight``), a Parameter/Tensor
            or an array, of shape (OC, IC, KH, KW) (IC = in_channels / groups).
        channels: which input channels make a tile:

            - ``'rgb'``: one RGB tile per filter (needs IC == 3), as the AlexNet/ZFNet first-layer figures;
            - ``'all'``: one grayscale tile per (filter, input channel), a row of IC tiles per filter
              (when IC > 1 and ``ncols`` is not given);
            - ``'first'`` or an int ``c``: one grayscale tile per filter, input channel 0 or ``c``;
            - ``'mean'``: one grayscale tile per filter, the mean over its input channels;
            - ``'auto'`` (default): ``'rgb'`` if IC == 3, else ``'all'``.
        normalize: ``'each'`` scales each filter to [0, 1] on its own (min -> 0, max -> 1, over all of
            its tiles: the 3 colours of an RGB tile, the IC tiles of ``'all'``); ``'all'`` uses one
            min and max over every tile shown, so magnitudes compare across filters. A constant
            filter becomes 0.5.
        ncols: tiles per row (default: ``ceil(sqrt(n))``, or IC for ``'all'``).
        pad: pixels of ``pad_value`` between the tiles and around the grid.

    Returns:
        float64 array; tile ``k`` (filter-major, then input channel) occupies rows
        ``pad + (k // ncols) * (KH + pad)`` to ``+ KH`` and columns ``pad + (k % ncols) * (KW + pad)``
        to ``+ KW``.

    Example::

        >>> conv = fastconv.nn.Conv2d(3, 64, 11, stride=4, padding=2)
        >>> filter_grid(conv).shape      # 8 x 8 RGB tiles of 11 x 11, 1 pixel apart
        (97, 97, 3)
    """
    w = _weight_array(conv_or_weight)
    _check_grid_args(ncols, pad, normalize, "filter_grid")
    oc, ic, kh, kw = w.shape
    mode = channels
    if isinstance(mode, (bool, np.bool_)) or not isinstance(mode, (str, int, np.integer)):
        raise TypeError(f"filter_grid: channels must be 'auto', 'rgb', 'all', 'first', 'mean' or an int, got {channels!r}")
    if mode == "auto":
        mode = "rgb" if ic == 3 else "all"
    if isinstance(mode, str):
        if mode not in ("rgb", "all", "first", "mean"):
            raise ValueError(f"filter_grid: channels must be 'auto', 'rgb', 'all', 'first', 'mean' or an int, "
                             f"got {channels!r}")
        if mode == "rgb" and ic != 3:
            raise ValueError(f"filter_grid: channels='rgb' needs 3 input channels, the weight {w.shape} has {ic}")
    else:
        c = int(mode)
        if not -ic <= c < ic:
            raise ValueError(f"filter_grid: channel {c} out of range for weight {w.shape} with {ic} input channels")
        c %= ic
        mode = "index"
    if mode == "rgb":
        per_filter = w.transpose(0, 2, 3, 1)[:, None]  # (OC, 1, KH, KW, 3)
    elif mode == "all":
        per_filter = w  # (OC, IC, KH, KW)
    elif mode == "first":
        per_filter = w[:, :1]
    elif mode == "mean":
        per_filter = w.mean(axis=1, keepdims=True)
    else:
        per_filter = w[:, c:c + 1]
    axes = tuple(range(1, per_filter.ndim)) if normalize == "each" else None
    scaled = _minmax(per_filter, axes, 0.5)
    tiles = scaled.reshape((-1,) + scaled.shape[2:])
    if ncols is None:
        ncols = ic if (mode == "all" and ic > 1) else max(1, math.ceil(math.sqrt(len(tiles))))
    return _tile(tiles, int(ncols), int(pad), float(pad_value))


def plot_filters(conv_or_weight: Any, *, channels: Union[str, int] = "auto", normalize: str = "each",
                 ncols: Optional[int] = None, pad: int = 1, title: Title = True, cmap: str = "gray",
                 scale: Optional[int] = None, dpi: float = 100, ax: Optional[Axes] = None,
                 fig: Optional[Figure] = None, path: Optional[PathLike] = None) -> Figure:
    """Draw the filters of a conv layer as an image grid (RGB tiles for 3-channel input filters).

    ``conv_or_weight`` is an ``nn.Conv2d`` or a weight of shape (OC, IC, KH, KW); ``channels``,
    ``normalize``, ``ncols`` and ``pad`` are those of :func:`filter_grid`, which builds the image.
    Grayscale tiles go through ``cmap``. ``title``: True for an automatic one, a string, or
    False/None. Without ``ax``/``fig`` a new figure is made: the grid magnified by the integer
    ``scale`` (default: until the longer side is at least 400 pixels), pixel-aligned, with a
    30-pixel title band, at ``dpi``; with ``ax`` (or ``fig``) the grid is drawn there. ``path``
    saves the figure (format from the extension). Returns the Figure. Needs matplotlib.

    Example::

        >>> _ = fastconv.manual_seed(0)
        >>> model = fastconv.models.AlexNet()
        >>> fig = plot_filters(model.features[0], path="conv1.png")   # 64 RGB tiles of 11 x 11
    """
    _mpl()
    grid = filter_grid(conv_or_weight, channels=channels, normalize=normalize, ncols=ncols, pad=pad)
    if title is True:
        w = _weight_array(conv_or_weight)
        oc, ic, kh, kw = w.shape
        shown = "RGB" if grid.ndim == 3 else (f"input channel {channels}" if isinstance(channels, (int, np.integer))
                                              else {"first": "input channel 0", "mean": "mean over input channels"}
                                              .get(channels, "per input channel"))
        title = f"{oc} filters {kh}x{kw}, {ic} input channel{'s' if ic != 1 else ''} ({shown}; normalize={normalize!r})"
    fig = _image_figure(grid, title=title or None, cmap=cmap, scale=scale, dpi=dpi, ax=ax, fig=fig)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# feature maps (activations)


def _resolve_layers(model: Module, layers: Union[Layer, Sequence[Layer]]) -> "OrderedDict[str, Any]":
    from .nn.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"feature_maps: model must be a fastconv.nn.Module, got {type(model).__name__}")
    if isinstance(layers, (str, Module)):
        layers = [layers]
    named = OrderedDict((n, m) for n, m in model.named_modules() if n)
    by_id: Dict[int, str] = {}
    for n, m in named.items():
        by_id.setdefault(id(m), n)
    out: "OrderedDict[str, Any]" = OrderedDict()
    for layer in layers:
        if isinstance(layer, Module):
            if layer is model:
                raise ValueError("feature_maps: the layer is the model itself; choose one of its submodules")
            name = by_id.get(id(layer))
            if name is None:
                raise ValueError(f"feature_maps: the {type(layer).__name__} given is not a submodule of the model")
        elif isinstance(layer, str):
            name = layer
            if name not in named:
                raise ValueError(f"feature_maps: unknown layer {name!r}; the model's layers are: {', '.join(named)}")
        else:
            raise TypeError(f"feature_maps: a layer is a dotted name or a submodule, got {type(layer).__name__}")
        out[name] = named[name]
    if not out:
        raise ValueError("feature_maps: no layers given")
    return out


def _input_array(x: Any, fname: str) -> Tuple[np.ndarray, bool]:
    from .tensor import Tensor

    if isinstance(x, Tensor):
        x = x.data
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: x must be a real array, got dtype {x.dtype}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{fname}: x must be one image (C, H, W) or a batch (N, C, H, W), got shape {x.shape}")
    return (x[None] if x.ndim == 3 else x), x.ndim == 3


def feature_maps(model: Module, x: Any, layers: Union[Layer, Sequence[Layer]]) -> Dict[str, np.ndarray]:
    """Run ``model`` on ``x`` and return the outputs (activations) of ``layers``, without matplotlib.

    Args:
        model: a ``fastconv.nn.Module``. It runs in eval mode under ``no_grad``; every module's
            training flag is restored afterwards.
        x: one image (C, H, W) — run as a batch of 1 — or a batch (N, C, H, W); array or Tensor.
        layers: a dotted name from ``model.named_modules()`` (e.g. ``"features.3"``), a submodule
            object, or a list of them.

    Returns:
        ``{name: ndarray}`` in the order given: each layer's output (the first element if it returns
        a tuple), a fresh array, e.g. (C', H', W') for an unbatched ``x`` (the batch dimension of 1
        removed) or (N, C', H', W') for a batch. A module that runs several times in one forward
        (a ReLU reused inside a residual block) adds ``name_1``, ``name_2``, ... for the later calls,
        as torchvision's feature extractor names them.

    Captured with forward hooks (``register_forward_hook``), removed before returning.

    Example::

        >>> model = fastconv.models.LeNet5()
        >>> acts = feature_maps(model, np.zeros((1, 32, 32), np.float32), ["features.0", "features.5"])
        >>> {k: v.shape for k, v in acts.items()}
        {'features.0': (6, 28, 28), 'features.5': (16, 5, 5)}
    """
    from . import autograd
    from .tensor import Tensor

    targets = _resolve_layers(model, layers)
    xb, unbatched = _input_array(x, "feature_maps")
    captured: Dict[str, List[np.ndarray]] = OrderedDict((n, []) for n in targets)

    def make_hook(name: str) -> Callable[[Any, Any, Any], None]:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            if isinstance(output, (tuple, list)):
                output = output[0]
            arr = output.data if isinstance(output, Tensor) else output
            captured[name].append(np.array(arr, copy=True))

        return hook

    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for name, m in targets.items():
            handles.append(m.register_forward_hook(make_hook(name)))
        model.eval()
        with autograd.no_grad():
            model(xb)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    out: Dict[str, np.ndarray] = OrderedDict()
    for name, arrays in captured.items():
        if not arrays:
            raise ValueError(f"feature_maps: layer {name!r} did not run in the model's forward")
        for i, a in enumerate(arrays):
            if unbatched and a.ndim >= 1 and a.shape[0] == 1:
                a = a[0]
            out[name if i == 0 else f"{name}_{i}"] = a
    return out


def feature_grid(maps: Any, *, max_maps: Optional[int] = 64, ncols: Optional[int] = None, normalize: str = "each",
                 pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Feature maps (C, H, W) laid out as one (GH, GW) image in [0, 1] (the first ``max_maps`` maps).

    ``normalize='each'`` scales each map to [0, 1] on its own; ``'all'`` uses one min/max for all
    maps shown, so their strengths compare. A constant map (e.g. a ReLU that never fires) becomes 0.
    Layout as :func:`filter_grid`; ``ncols`` defaults to ``ceil(sqrt(n))``.

    Example::

        >>> feature_grid(np.random.rand(6, 28, 28)).shape   # 3 x 2 maps, 1 pixel apart
        (59, 88)
    """
    from .tensor import Tensor

    a = maps.data if isinstance(maps, Tensor) else np.asarray(maps)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"feature_grid: expected feature maps (C, H, W) or (1, C, H, W), got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"feature_grid: expected real numbers, got dtype {a.dtype}")
    _check_grid_args(ncols, pad, normalize, "feature_grid")
    if max_maps is not None:
        if isinstance(max_maps, bool) or not isinstance(max_maps, (int, np.integer)) or max_maps < 1:
            raise ValueError(f"feature_grid: max_maps must be a positive integer or None, got {max_maps!r}")
        a = a[:max_maps]
    a = a.astype(np.float64)
    scaled = _minmax(a, (1, 2) if normalize == "each" else None, 0.0)
    if ncols is None:
        ncols = max(1, math.ceil(math.sqrt(len(a))))
    return _tile(scaled, int(ncols), int(pad), float(pad_value))


def plot_feature_maps(model: Module, x: Any, layer: Layer, *, max_maps: Optional[int] = 64,
                      ncols: Optional[int] = None, normalize: str = "each", pad: int = 1, cmap: str = "viridis",
                      title: Title = True, scale: Optional[int] = None, dpi: float = 100,
                      ax: Optional[Axes] = None, fig: Optional[Figure] = None,
                      path: Optional[PathLike] = None) -> Figure:
    """Run ``model`` on one image and draw the feature maps that ``layer`` outputs, as a grid.

    Args:
        model: a ``fastconv.nn.Module`` (run in eval mode under no_grad, see :func:`feature_maps`).
        x: one image (C, H, W) or a batch of one (1, C, H, W).
        layer: a submodule or its dotted name from ``model.named_modules()`` (e.g. ``"features.3"``);
            its output must be maps (C', H', W').
        max_maps, ncols, normalize, pad: as :func:`feature_grid` (which builds the image).
        cmap: matplotlib colormap of the maps; title: True (automatic), a string or False/None;
        scale, dpi, ax, fig, path: as :func:`plot_filters`.

    Returns the Figure. Needs matplotlib.

    Example::

        >>> model = fastconv.models.LeNet5()
        >>> fig = plot_feature_maps(model, sample_image(32).mean(0, keepdims=True), "features.0",
        ...                         path="lenet5_conv1.png")      # 6 maps of 28 x 28
    """
    _mpl()
    xb, _ = _input_array(x, "plot_feature_maps")
    if xb.shape[0] != 1:
        raise ValueError(f"plot_feature_maps: x must be one image (C, H, W) or a batch of one, got shape {xb.shape}")
    name, module = next(iter(_resolve_layers(model, layer).items()))
    a = feature_maps(model, xb, name)[name][0]
    _check_maps(a, name, module, "plot_feature_maps")
    return _draw_maps(a, name, module, max_maps=max_maps, ncols=ncols, normalize=normalize, pad=pad, cmap=cmap,
                      title=title, scale=scale, dpi=dpi, ax=ax, fig=fig, path=path)


def _check_maps(a: np.ndarray, name: str, module: Module, fname: str) -> None:
    if a.ndim != 3:
        raise ValueError(f"{fname}: layer {name!r} ({type(module).__name__}) outputs shape "
                         f"{(1,) + tuple(a.shape)}, not feature maps (1, C, H, W); choose a conv, pooling "
                         f"or activation layer")


def _draw_maps(a: np.ndarray, name: str, module: Module, *, max_maps: Optional[int], ncols: Optional[int],
               normalize: str, pad: int, cmap: str, title: Title, scale: Optional[int], dpi: float,
               ax: Optional[Axes], fig: Optional[Figure], path: Optional[PathLike]) -> Figure:
    grid = feature_grid(a, max_maps=max_maps, ncols=ncols, normalize=normalize, pad=pad)
    if title is True:
        c, h, w = a.shape
        n = c if max_maps is None else min(c, max_maps)
        title = f"{name} ({type(module).__name__}): {c} maps {h}x{w}" + (f", first {n} shown" if n < c else "")
    fig = _image_figure(grid, title=title or None, cmap=cmap, scale=scale, dpi=dpi, ax=ax, fig=fig)
    return _save(fig, path)


def _plot_image(image: np.ndarray, *, title: Optional[str], dpi: float = 100,
                path: Optional[PathLike] = None) -> Figure:
    """Draw one (C, H, W) image (C = 1 gray or 3 RGB), pixel-aligned; values outside [0, 1] are min-max scaled."""
    a = np.asarray(image, dtype=np.float64)
    if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1):
        a = _minmax(a, None, 0.5)
    grid = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    fig = _image_figure(grid, title=title, cmap="gray", scale=None, dpi=dpi)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# training curves

_ACC_RE = re.compile(r"acc|top[-_]?\d|precision|recall|f1|auc|iou|dice", re.I)
_LOSS_RE = re.compile(r"loss|err|mse|mae|rmse|nll|perplexity|ppl", re.I)
_SPLIT_RE = re.compile(r"^(train|training|val|valid|validation|test|eval)[_\- ]", re.I)
_X_KEYS = ("epoch", "epochs", "step", "steps")


def _as_float(v: Any) -> float:
    if v is None:
        return float("nan")
    from .tensor import Tensor

    if isinstance(v, Tensor):
        v = v.data
    a = np.asarray(v)
    if a.size != 1 or a.dtype.kind not in "biuf":
        raise ValueError(f"plot_training_curves: each value must be one number (or None), got {v!r}")
    return float(a.reshape(()))


def _history_columns(history: Any) -> "OrderedDict[str, List[float]]":
    cols: "OrderedDict[str, List[float]]" = OrderedDict()
    if isinstance(history, Mapping):
        for k, vs in history.items():
            if isinstance(vs, (str, bytes)) or not isinstance(vs, Iterable):
                raise TypeError(f"plot_training_curves: history[{k!r}] must be a list of numbers, got {type(vs).__name__}")
            cols[str(k)] = [_as_float(v) for v in vs]
    elif isinstance(history, Sequence) and not isinstance(history, (str, bytes)):
        keys: List[str] = []
        for rec in history:
            if not isinstance(rec, Mapping):
                raise TypeError(f"plot_training_curves: a list history holds one dict per epoch, got {type(rec).__name__}")
            keys += [str(k) for k in rec if str(k) not in keys]
        for k in keys:
            cols[k] = [_as_float(next((v for kk, v in rec.items() if str(kk) == k), None)) for rec in history]
    else:
        raise TypeError(f"plot_training_curves: history must be a dict of lists or a list of dicts, "
                        f"got {type(history).__name__}")
    return cols


def _metric_group(name: str) -> str:
    if _ACC_RE.search(name):
        return "accuracy"
    if _LOSS_RE.search(name):
        return "loss"
    return "other"


def plot_training_curves(history: Union[Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]], *,
                         title: Optional[str] = None, dpi: float = 100, fig: Optional[Figure] = None,
                         path: Optional[PathLike] = None) -> Figure:
    """Plot metrics per epoch: loss-like and accuracy-like metrics on separate axes.

    Args:
        history: a dict of lists, ``{'loss': [...], 'val_loss': [...], 'accuracy': [...]}`` (as
            Keras' ``History.history``), or a list of per-epoch dicts ``[{'loss': .., 'acc': ..}, ...]``.
            ``None`` (or a key missing from an epoch's dict) leaves a gap. An ``'epoch'`` (or
            ``'step'``) entry, if present, gives the x values; otherwise epochs are 1, 2, ....
    Names containing ``acc``, ``top5``, ``precision``, ``recall``, ``f1``, ``auc``, ``iou`` or ``dice``
    go on the accuracy axes; ``loss``, ``err``, ``mse``, ... on the loss axes; anything else (a
    learning rate, say) on a third. A ``train_``/``val_``/``test_`` prefix keeps the colour of
    its metric with a dashed (val) or dotted (test) line. One 5 x 4 inch panel per group, side
    by side, at ``dpi`` (500 x 400 pixels each at the default 100). Needs matplotlib.

    Example::

        >>> fig = plot_training_curves({"loss": [2.1, 1.2, 0.8], "val_loss": [2.0, 1.4, 1.1],
        ...                             "accuracy": [0.4, 0.7, 0.8]}, path="curves.png")
    """
    cols = _history_columns(history)
    xkey = next((k for k in cols if k.lower() in _X_KEYS), None)
    xs_all = cols.pop(xkey) if xkey is not None else None
    if not cols or not any(len(v) for v in cols.values()):
        raise ValueError("plot_training_curves: the history has no metric values")
    groups: "OrderedDict[str, List[str]]" = OrderedDict((g, []) for g in ("loss", "accuracy", "other"))
    for k in cols:
        groups[_metric_group(k)].append(k)
    groups = OrderedDict((g, ks) for g, ks in groups.items() if ks)
    Figure, _ = _mpl()
    if fig is None:
        fig = _new_figure(500 * len(groups), 400, dpi, layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    palette = [f"C{i}" for i in range(10)]
    base_colour: Dict[str, str] = {}
    for ax, (group, keys) in zip(axes, groups.items()):
        for k in keys:
            ys = np.asarray(cols[k], dtype=np.float64)
            if xs_all is not None and len(xs_all) >= len(ys):
                xs = np.asarray(xs_all[:len(ys)], dtype=np.float64)
            else:
                xs = np.arange(1, len(ys) + 1, dtype=np.float64)
            m = _SPLIT_RE.match(k)
            split, base = (m.group(1).lower(), k[m.end():]) if m else ("train", k)
            colour = base_colour.setdefault(base, palette[len(base_colour) % len(palette)])
            style = {"val": "--", "valid": "--", "validation": "--", "eval": "--", "test": ":"}.get(split, "-")
            ax.plot(xs, ys, style, color=colour, label=k, marker="o" if len(ys) <= 30 else None, markersize=3)
        ax.set_xlabel(xkey if xkey else "epoch")
        ax.set_ylabel({"loss": "loss", "accuracy": "accuracy"}.get(group, keys[0] if len(keys) == 1 else "value"))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        if xkey is None:
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# images: a PNG codec in NumPy + zlib (no matplotlib or pillow needed), resizing, the sample


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-row filters (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) of PNG scanlines."""
    if len(raw) < height * (stride + 1):
        raise ValueError(f"PNG: image data too short ({len(raw)} bytes for {height} rows of {stride + 1})")
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        ft = raw[start]
        cur = np.frombuffer(raw, np.uint8, stride, start + 1).copy()
        if ft == 0:
            pass
        elif ft == 1:  # Sub: a running sum (mod 256) over pixels, per byte lane
            n = stride - stride % bpp
            lanes = cur[:n].reshape(-1, bpp)
            cur[:n] = (np.cumsum(lanes, axis=0, dtype=np.uint64) & 0xFF).astype(np.uint8).reshape(-1)
            for i in range(n, stride):  # cannot happen for whole pixels; kept for safety
                cur[i] = (int(cur[i]) + int(cur[i - bpp])) & 0xFF
        elif ft == 2:  # Up
            cur = cur + prev  # uint8 arithmetic wraps mod 256
        elif ft in (3, 4):  # Average / Paeth depend on the reconstructed left byte: a byte loop
            c = bytearray(cur.tobytes())
            p = prev.tobytes()
            if ft == 3:
                for i in range(stride):
                    left = c[i - bpp] if i >= bpp else 0
                    c[i] = (c[i] + ((left + p[i]) >> 1)) & 0xFF
            else:
                for i in range(stride):
                    if i >= bpp:
                        c[i] = (c[i] + _paeth(c[i - bpp], p[i], p[i - bpp])) & 0xFF
                    else:
                        c[i] = (c[i] + p[i]) & 0xFF
            cur = np.frombuffer(bytes(c), np.uint8)
        else:
            raise ValueError(f"PNG: unknown filter type {ft} in row {y}")
        out[y] = cur
        prev = out[y]
    return out


def _decode_png(data: bytes) -> np.ndarray:
    """Decode a non-interlaced PNG to float32 (H, W, C) in [0, 1]: C = 1 gray, 2 gray+alpha, 3 RGB,
    4 RGBA (a palette image gives RGB, or RGBA with a tRNS chunk). Every bit depth; CRCs checked."""
    if data[:8] != _PNG_SIG:
        raise ValueError("not a PNG file (bad signature)")
    pos, ihdr, idat, plte, trns = 8, None, [], None, None
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError("PNG: truncated chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"PNG: CRC mismatch in chunk {ctype!r}")
        pos += 12 + length
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            plte = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif ctype == b"tRNS":
            trns = body
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if ihdr is None or not idat:
        raise ValueError("PNG: missing IHDR or IDAT")
    width, height, depth, ctype_, comp, filt, interlace = ihdr
    if ctype_ not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16) or comp != 0 or filt != 0:
        raise ValueError(f"PNG: unsupported header (colour type {ctype_}, bit depth {depth})")
    if interlace:
        raise ValueError("PNG: interlaced (Adam7) images are not supported by the built-in decoder")
    ch = _PNG_CHANNELS[ctype_]
    bits = ch * depth
    stride = (width * bits + 7) // 8
    rows = _unfilter(zlib.decompress(b"".join(idat)), height, stride, max(1, bits // 8))
    if depth == 16:
        vals = rows.view(">u2").reshape(height, width, ch).astype(np.float32) / 65535.0
        return vals
    if depth == 8:
        samples = rows.reshape(height, -1)[:, :width * ch].reshape(height, width, ch)
    else:  # 1, 2, 4 bits per sample, packed big-end first
        bitsarr = np.unpackbits(rows, axis=1)[:, :width * depth].reshape(height, width, depth)
        weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
        samples = (bitsarr * weights).sum(axis=2, dtype=np.uint8)[..., None]
    if ctype_ == 3:
        if plte is None:
            raise ValueError("PNG: palette image without a PLTE chunk")
        idx = samples[..., 0]
        if idx.max(initial=0) >= len(plte):
            raise ValueError("PNG: palette index out of range")
        rgb = plte[idx].astype(np.float32) / 255.0
        if trns:
            alpha = np.full(len(plte), 255, np.uint8)
            t = np.frombuffer(trns, np.uint8)[:len(plte)]
            alpha[:len(t)] = t
            rgb = np.concatenate([rgb, (alpha[idx].astype(np.float32) / 255.0)[..., None]], axis=2)
        return rgb
    return samples.astype(np.float32) / float((1 << depth) - 1)


def _encode_png(img: np.ndarray, filter_type: Optional[int] = None) -> bytes:
    """Encode uint8 (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA as an 8-bit PNG.

    ``filter_type`` 0-4 filters every row that way; None picks per row the filter with the
    smallest sum of absolute (signed) bytes, the usual heuristic.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"_encode_png: expected uint8, got {img.dtype}")
    if img.ndim == 2:
        img = img[..., None]
    h, w, ch = img.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    rows = img.reshape(h, w * ch).astype(np.int32)
    out = bytearray()
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        cur = rows[y]
        left = np.concatenate([np.zeros(ch, np.int32), cur[:-ch]])
        upleft = np.concatenate([np.zeros(ch, np.int32), prev[:-ch]])
        p = left + prev - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        cands = [cur, cur - left, cur - prev, cur - (left + prev) // 2, cur - paeth]
        cands = [(c & 0xFF).astype(np.uint8) for c in cands]
        if filter_type is None:
            ft = int(np.argmin([np.abs(c.view(np.int8).astype(np.int32)).sum() for c in cands]))
        else:
            ft = int(filter_type)
        out.append(ft)
        out += cands[ft].tobytes()
        prev = cur

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (_PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(out), 9)) + chunk(b"IEND", b""))


def _render_sample(size: int = 96) -> np.ndarray:
    """The bundled sample picture, drawn procedurally: uint8 (size, size, 3).

    A colour gradient; a red disc and a yellow diamond (edges at every angle and at +-45 degrees);
    a dark triangle; patches of vertical, horizontal and diagonal stripes and a checkerboard
    (oriented edges and frequencies for first-layer filters to respond to).
    """
    n = size
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) + 0.5
    u, v = x / n, y / n  # in (0, 1)
    img = np.stack([0.20 + 0.55 * u, 0.30 + 0.45 * v * (1 - u), 0.75 - 0.45 * u * v], axis=-1)

    def paint(mask: np.ndarray, colour: Tuple[float, float, float]) -> None:
        m = np.clip(mask, 0.0, 1.0)[..., None]  # soft (1-pixel antialiased) coverage
        img[:] = img * (1 - m) + np.asarray(colour, np.float64) * m

    s = n / 96.0
    paint((16 * s - np.hypot(x - 27 * s, y - 27 * s)) + 0.5, (0.85, 0.12, 0.10))  # red disc
    paint((15 * s - (np.abs(x - 70 * s) + np.abs(y - 27 * s))) / 1.4 + 0.5, (0.98, 0.85, 0.15))  # yellow diamond
    tri = np.minimum.reduce([y - 44 * s, (x - 48 * s) - 0.5 * (y - 44 * s), (60 * s - x) - 0.5 * (y - 44 * s)])
    paint(np.where(y < 58 * s, tri, -1.0) + 0.5, (0.08, 0.25, 0.12))  # dark green triangle
    patch = lambda x0, y0, w, h: (x >= x0 * s) & (x < (x0 + w) * s) & (y >= y0 * s) & (y < (y0 + h) * s)  # noqa: E731
    stripes_v = (np.floor(x / (3 * s)) % 2).astype(float)
    stripes_h = (np.floor(y / (4 * s)) % 2).astype(float)
    stripes_d = (np.floor((x + y) / (5 * s)) % 2).astype(float)
    checker = ((np.floor(x / (6 * s)) + np.floor(y / (6 * s))) % 2).astype(float)
    for mask, pattern, dark, light in [
        (patch(6, 62, 26, 28), stripes_v, (0.05, 0.05, 0.05), (0.95, 0.95, 0.95)),
        (patch(36, 62, 26, 28), stripes_d, (0.10, 0.15, 0.55), (0.90, 0.92, 1.00)),
        (patch(66, 62, 24, 12), stripes_h, (0.45, 0.05, 0.40), (1.00, 0.85, 0.95)),
        (patch(66, 78, 24, 12), checker, (0.05, 0.05, 0.05), (1.00, 1.00, 1.00)),
    ]:
        colour = np.where(pattern[..., None] > 0, np.asarray(light), np.asarray(dark))
        img[mask] = colour[mask]
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _write_sample_png(path: Optional[PathLike] = None) -> str:
    """Regenerate the bundled ``data/sample.png`` (``python -c "import fastconv.viz as v; v._write_sample_png()"``)."""
    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", SAMPLE_PNG)
    with open(path, "wb") as f:
        f.write(_encode_png(_render_sample(96)))
    return os.fspath(path)


def _sample_bytes() -> bytes:
    try:
        from importlib.resources import files

        return files("fastconv").joinpath("data").joinpath(SAMPLE_PNG).read_bytes()
    except (ImportError, AttributeError, TypeError, FileNotFoundError):  # unusual loaders: fall back to the path
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", SAMPLE_PNG), "rb") as f:
            return f.read()


@lru_cache(maxsize=1)
def _sample_hwc() -> np.ndarray:
    a = _decode_png(_sample_bytes())
    a.setflags(write=False)
    return a


def _size_arg(size: Any, fname: str) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(v) for v in size)
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise ValueError(f"{fname}: size must be a positive int or a pair (H, W) of them, got {size!r}")
    return h, w


def sample_image(size: Optional[Size] = None) -> np.ndarray:
    """The bundled 96 x 96 sample picture as float32 (3, H, W) in [0, 1]; needs neither matplotlib nor pillow.

    Shapes, stripes at several orientations, a checkerboard and colour gradients, drawn so that
    first-layer filters respond visibly. ``size`` (an int or a pair (H, W)) resizes it with
    :func:`resize_image`. Use :func:`adapt_image` for a model's channel count.

    Example::

        >>> sample_image().shape, sample_image(32).shape, sample_image((224, 224)).shape
        ((3, 96, 96), (3, 32, 32), (3, 224, 224))
    """
    img = np.ascontiguousarray(_sample_hwc().transpose(2, 0, 1))
    if size is not None:
        img = resize_image(img, size)
    return np.array(img, dtype=np.float32, copy=True)


def load_image(path: PathLike) -> np.ndarray:
    """Read an image file as float32 (C, H, W), C = 1 (gray) or 3 (RGB); alpha is dropped.

    ``.npy``: an (H, W), (C, H, W) or (H, W, C) array with C in {1, 3, 4} (channels-first when
    ambiguous); uint8 is scaled by 1/255, floats are kept as they are. PNG: decoded by the built-in
    decoder (every colour type and bit depth, not interlaced), values in [0, 1]; other formats (and
    interlaced PNGs) through ``matplotlib.image.imread`` if matplotlib is installed.
    """
    path = os.fspath(path)
    if path.lower().endswith(".npy"):
        a = np.load(path, allow_pickle=False)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"load_image: {path!r} holds dtype {a.dtype}, expected numbers")
        a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
        if a.ndim == 2:
            a = a[None]
        elif a.ndim == 3 and a.shape[0] in (1, 3, 4):
            pass
        elif a.ndim == 3 and a.shape[-1] in (1, 3, 4):
            a = a.transpose(2, 0, 1)
        else:
            raise ValueError(f"load_image: {path!r} has shape {a.shape}; expected (H, W), (C, H, W) or (H, W, C) "
                             f"with C in 1, 3, 4")
        chw = a
    else:
        with open(path, "rb") as f:
            data = f.read()
        hwc = None
        if data[:8] == _PNG_SIG:
            try:
                hwc = _decode_png(data)
            except ValueError as e:
                if "interlaced" not in str(e):
                    raise ValueError(f"load_image: {path!r}: {e}") from None
        if hwc is None:
            try:
                import matplotlib.image as mpimg
            except ImportError:
                raise ValueError(f"load_image: cannot read {path!r} without matplotlib: the built-in reader "
                                 f"takes non-interlaced PNG and .npy ({INSTALL_HINT} for more)") from None
            hwc = np.asarray(mpimg.imread(path))
            if hwc.dtype == np.uint8:
                hwc = hwc.astype(np.float32) / 255.0
            if hwc.ndim == 2:
                hwc = hwc[..., None]
        chw = np.asarray(hwc, dtype=np.float32).transpose(2, 0, 1)
    if chw.shape[0] in (2, 4):  # drop alpha
        chw = chw[:-1]
    return np.ascontiguousarray(chw, dtype=np.float32)


def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: bilinear with half-pixel centres when enlarging (PyTorch's
    ``align_corners=False``, edges clamped); the area average of the covered interval when shrinking."""
    m = np.zeros((n_out, n_in))
    if n_out == n_in:
        np.fill_diagonal(m, 1.0)
    elif n_out > n_in:
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        f = src - i0
        np.add.at(m, (np.arange(n_out), i0), 1.0 - f)
        np.add.at(m, (np.arange(n_out), i1), f)
    else:
        s = n_in / n_out
        for o in range(n_out):
            lo, hi = o * s, (o + 1) * s
            for i in range(int(math.floor(lo)), min(n_in, int(math.ceil(hi)))):
                m[o, i] = (min(hi, i + 1) - max(lo, i)) / s
    return m


def resize_image(image: Any, size: Size) -> np.ndarray:
    """Resize (C, H, W) or (H, W) to ``size`` (an int for a square, or (H, W)).

    Separable per axis: enlarging is bilinear (as ``torch.nn.functional.interpolate(mode='bilinear',
    align_corners=False)``), shrinking averages the area each output pixel covers (a box filter, so
    no aliasing; a whole-number factor is a block mean). Returns float32 (float64 stays float64).

    Example::

        >>> resize_image(np.ones((3, 96, 96)), 32).shape
        (3, 32, 32)
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ValueError(f"resize_image: expected (C, H, W) or (H, W), got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"resize_image: expected real numbers, got dtype {a.dtype}")
    h, w = _size_arg(size, "resize_image")
    dt = np.float64 if a.dtype == np.float64 else np.float32
    mh, mw = _resample_matrix(a.shape[-2], h), _resample_matrix(a.shape[-1], w)
    out = np.einsum("ij,...jk,lk->...il", mh, a.astype(np.float64), mw, optimize=True)
    return out.astype(dt)


def adapt_image(image: Any, shape: Sequence[int]) -> np.ndarray:
    """Fit an image to a model's input ``shape`` (C, H, W): resize, then match the channels.

    3 -> 1 channel: luminance ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, as PIL's ``'L'``);
    1 -> 3: the gray channel repeated; an alpha channel (2 or 4 channels) is dropped first.
    Returns float32 (C, H, W).

    Example::

        >>> adapt_image(sample_image(), (1, 32, 32)).shape      # LeNet-5's input
        (1, 32, 32)
    """
    a = np.asarray(image.data if hasattr(image, "data") and not isinstance(image, np.ndarray) else image)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"adapt_image: expected an image (C, H, W) or (H, W), got shape {a.shape}")
    if len(shape) != 3:
        raise ValueError(f"adapt_image: shape must be (C, H, W), got {tuple(shape)}")
    c, h, w = (int(v) for v in shape)
    if a.shape[0] in (2, 4):
        a = a[:-1]
    a = resize_image(a, (h, w)) if a.shape[-2:] != (h, w) else a.astype(np.float32)
    if a.shape[0] == c:
        return np.ascontiguousarray(a, dtype=np.float32)
    if a.shape[0] == 3 and c == 1:
        return np.tensordot(np.array([0.299, 0.587, 0.114]), a, axes=1)[None].astype(np.float32)
    if a.shape[0] == 1:
        return np.repeat(a, c, axis=0).astype(np.float32)
    raise ValueError(f"adapt_image: cannot turn a {a.shape[0]}-channel image into {c} channels")
