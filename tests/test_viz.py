"""fastconv.viz and ``fastconv viz``: filter grids, feature maps, training curves, the sample image.

The array helpers (feature_maps, filter_grid, feature_grid, sample_image, the PNG codec, resizing)
need no matplotlib and are checked exactly against independent computations; the drawing tests
``importorskip("matplotlib")``, read the PNGs back and check their pixel size and the colour of every
grid cell (grids are drawn pixel-aligned, each value a scale x scale block under a 30-pixel title band).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import nn, viz
from fastconv.cli import main

from reference import conv2d_ref

TITLE = viz.TITLE_PX


def _mpl():
    return pytest.importorskip("matplotlib")


def _read_png(path):
    import matplotlib.image as mpimg

    assert os.path.getsize(path) > 0
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] in (3, 4)
    assert img[..., :3].var() > 0  # not blank
    return img[..., :3]


def _scale(grid):
    return max(1, math.ceil(viz.MIN_SIDE_PX / max(grid.shape[:2])))


def _cells(img, grid, scale, top):
    """The centre pixel of every grid cell's scale x scale block."""
    ys = top + scale * np.arange(grid.shape[0]) + scale // 2
    xs = scale * np.arange(grid.shape[1]) + scale // 2
    return img[np.ix_(ys, xs)]


def _model(name, seed=0):
    fastconv.manual_seed(seed)
    return fastconv.models.get_model(name).eval()


# ---------------------------------------------------------------------------------------------
# without matplotlib


def test_import_and_array_helpers_work_without_matplotlib():
    """matplotlib is not imported by ``import fastconv.viz``; with it unavailable, the array helpers
    work and drawing (and the CLI) fail with the install hint."""
    code = textwrap.dedent("""
        import sys
        import fastconv.viz as viz
        assert "matplotlib" not in sys.modules, "imported at module import"

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "matplotlib" or name.startswith("matplotlib."):
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, Block())

        import fastconv
        fastconv.manual_seed(0)
        m = fastconv.models.LeNet5()
        x = viz.adapt_image(viz.sample_image(), (1, 32, 32))
        assert viz.feature_maps(m, x, "features.0")["features.0"].shape == (6, 28, 28)
        assert viz.filter_grid(m.features[0]).shape == (13, 19)
        for call in (lambda: viz.plot_filters(m.features[0]), lambda: viz.plot_feature_maps(m, x, "features.0"),
                     lambda: viz.plot_training_curves({"loss": [1, 2]})):
            try:
                call()
            except ImportError as e:
                assert "pip install 'fastconv[viz]'" in str(e), e
            else:
                raise AssertionError("no ImportError")
        from fastconv.cli import main
        assert main(["viz", "--out", "never-written"]) == 1
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "OK"
    assert "pip install 'fastconv[viz]'" in r.stderr


# --- sample image, PNG codec, resizing ---


def test_sample_image_is_the_bundled_png():
    img = viz.sample_image()
    assert img.shape == (3, 96, 96) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() <= 1 and img.std() > 0.1
    assert len(np.unique(img.reshape(3, -1), axis=1).T) > 100  # colourful, not a few flat colours
    # the file ships in the package, is small, and is exactly what the generator draws
    path = os.path.join(os.path.dirname(viz.__file__), "data", viz.SAMPLE_PNG)
    assert os.path.getsize(path) < 30_000
    np.testing.assert_array_equal(np.round(img * 255).astype(np.uint8), viz._render_sample(96).transpose(2, 0, 1))
    # edges at several orientations: strong horizontal and vertical gradients both
    gray = img.mean(0)
    assert np.abs(np.diff(gray, axis=0)).max() > 0.5 and np.abs(np.diff(gray, axis=1)).max() > 0.5
    # a fresh copy each call
    img[...] = 0
    assert viz.sample_image().max() > 0


def test_sample_image_sizes():
    full = viz.sample_image().astype(np.float64)
    # 96 -> 32 is a 3x3 block mean; 96 -> 48 a 2x2 block mean
    np.testing.assert_allclose(viz.sample_image(32), full.reshape(3, 32, 3, 32, 3).mean(axis=(2, 4)), atol=1e-6)
    np.testing.assert_allclose(viz.sample_image((48, 32)), full.reshape(3, 48, 2, 32, 3).mean(axis=(2, 4)), atol=1e-6)
    big = viz.sample_image(224)
    assert big.shape == (3, 224, 224) and big.dtype == np.float32 and 0 <= big.min() and big.max() <= 1
    for bad in (0, -3, (32,), (32, 0), 2.5, "32", True):
        with pytest.raises(ValueError, match="size"):
            viz.sample_image(bad)


def _image_for(channels, rng, kind):
    if kind == "random":
        return rng.integers(0, 256, size=(7, 9, channels), dtype=np.uint8)
    y, x = np.mgrid[0:13, 0:17]  # smooth: exercises the predictors the way real images do
    base = np.stack([(x * 11 + y * 5 + 40 * c) % 256 for c in range(channels)], axis=-1)
    return base.astype(np.uint8)


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4, None])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_roundtrip_every_filter_type(filter_type, channels, rng):
    for kind in ("random", "smooth"):
        img = _image_for(channels, rng, kind)
        data = viz._encode_png(img, filter_type)
        raw = zlib.decompress(data[data.index(b"IDAT") + 4:])
        stride = img.shape[1] * channels + 1
        used = {raw[i * stride] for i in range(img.shape[0])}
        if filter_type is not None:
            assert used == {filter_type}
        out = viz._decode_png(data)
        assert out.shape == img.shape and out.dtype == np.float32
        np.testing.assert_array_equal(np.round(out * 255).astype(np.uint8), img)


def test_png_decoder_matches_pillow_on_every_colour_type(tmp_path, rng):
    Image = pytest.importorskip("PIL.Image")
    y, x = np.mgrid[0:21, 0:19]
    rgb = np.stack([x * 13 % 256, y * 12 % 256, (x * y) % 256], -1).astype(np.uint8)
    rgb[5:9, 3:15] = rng.integers(0, 256, size=(4, 12, 3))
    rgba = np.concatenate([rgb, (x * 7 % 256).astype(np.uint8)[..., None]], -1)
    cases = {
        "L": (Image.fromarray(rgb[..., 0]), rgb[..., :1] / 255),
        "LA": (Image.fromarray(rgba[..., [0, 3]], "LA"), rgba[..., [0, 3]] / 255),
        "RGB": (Image.fromarray(rgb), rgb / 255),
        "RGBA": (Image.fromarray(rgba), rgba / 255),
        "1": (Image.fromarray(rgb[..., 0] > 128), (rgb[..., :1] > 128).astype(float)),
        "I;16": (Image.fromarray((rgb[..., 0].astype(np.uint16) * 257 + 3)), (rgb[..., :1] * 257.0 + 3) / 65535),
    }
    pal = Image.fromarray(rgb).quantize(16)
    cases["P"] = (pal, np.asarray(pal.convert("RGB")) / 255)
    p4 = Image.fromarray(rgb).quantize(8)
    cases["P-4bit"] = (p4, np.asarray(p4.convert("RGB")) / 255)
    for name, (im, want) in cases.items():
        path = tmp_path / f"{name}.png"
        im.save(path, bits=4) if name == "P-4bit" else im.save(path)
        got = viz._decode_png(path.read_bytes())
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)
    with open(tmp_path / "P-4bit.png", "rb") as f:
        assert f.read(25)[24] == 4  # really a 4-bit palette file


def test_png_decoder_errors():
    good = viz._encode_png(np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="signature"):
        viz._decode_png(b"GIF89a" + good[6:])
    bad = bytearray(good)
    bad[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    with pytest.raises(ValueError, match="CRC"):
        viz._decode_png(bytes(bad))


def test_resize_image():
    rng = np.random.default_rng(0)
    a = rng.random((2, 6, 9))
    np.testing.assert_array_equal(viz.resize_image(a, (6, 9)), a)
    np.testing.assert_allclose(viz.resize_image(a, (3, 3)), a.reshape(2, 3, 2, 3, 3).mean(axis=(2, 4)), rtol=1e-12)
    # enlarging 1-D by 2: half-pixel centres, edges clamped
    x0, x1 = 1.0, 5.0
    got = viz.resize_image(np.array([[x0, x1]]), (1, 4))[0]
    np.testing.assert_allclose(got, [x0, 0.75 * x0 + 0.25 * x1, 0.25 * x0 + 0.75 * x1, x1], rtol=1e-6)
    # shrinking by a non-integer factor: each output averages the area it covers
    got = viz.resize_image(np.array([[0.0, 3.0, 6.0]]), (1, 2))[0]
    np.testing.assert_allclose(got, [(0 + 0.5 * 3) / 1.5, (0.5 * 3 + 6) / 1.5], rtol=1e-6)
    c = np.full((1, 17, 11), 0.3)
    np.testing.assert_allclose(viz.resize_image(c, (5, 23)), 0.3, rtol=1e-6)
    assert viz.resize_image(a.astype(np.float32), 4).dtype == np.float32
    assert viz.resize_image(a, 4).dtype == np.float64


def test_resize_image_enlarging_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(1).random((3, 7, 5))
    want = torch.nn.functional.interpolate(torch.tensor(a)[None], size=(16, 13), mode="bilinear",
                                           align_corners=False)[0].numpy()
    np.testing.assert_allclose(viz.resize_image(a, (16, 13)), want, rtol=1e-10, atol=1e-12)


def test_adapt_image_and_load_image(tmp_path):
    img = viz.sample_image()
    gray = viz.adapt_image(img, (1, 32, 32))
    small = viz.sample_image(32).astype(np.float64)
    np.testing.assert_allclose(gray[0], 0.299 * small[0] + 0.587 * small[1] + 0.114 * small[2], atol=1e-6)
    rgb = viz.adapt_image(gray, (3, 16, 16))
    assert rgb.shape == (3, 16, 16) and np.array_equal(rgb[0], rgb[2])
    assert viz.adapt_image(img, (3, 224, 224)).shape == (3, 224, 224)
    with pytest.raises(ValueError, match="channels"):
        viz.adapt_image(np.zeros((5, 8, 8)), (3, 8, 8))
    # .npy files in either layout, uint8 scaled; PNG files through the built-in decoder
    u8 = (img * 255).round().astype(np.uint8)
    np.save(tmp_path / "hwc.npy", u8.transpose(1, 2, 0))
    np.save(tmp_path / "chw.npy", img)
    np.testing.assert_allclose(viz.load_image(tmp_path / "hwc.npy"), u8 / 255, atol=1e-7)
    np.testing.assert_array_equal(viz.load_image(tmp_path / "chw.npy"), img)
    rgba = np.concatenate([u8.transpose(1, 2, 0), np.full((96, 96, 1), 7, np.uint8)], -1)
    (tmp_path / "a.png").write_bytes(viz._encode_png(rgba))
    np.testing.assert_allclose(viz.load_image(tmp_path / "a.png"), u8 / 255, atol=1e-7)  # alpha dropped
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 6, 7)))
    with pytest.raises(ValueError, match="shape"):
        viz.load_image(tmp_path / "bad.npy")


# --- filter grids ---


def _tile(grid, k, ncols, kh, kw, pad):
    r, c = divmod(k, ncols)
    y, x = pad + r * (kh + pad), pad + c * (kw + pad)
    return grid[y:y + kh, x:x + kw]


def _pad_mask(shape, n, ncols, kh, kw, pad):
    m = np.ones(shape[:2], bool)
    for k in range(n):
        r, c = divmod(k, ncols)
        m[pad + r * (kh + pad):pad + r * (kh + pad) + kh, pad + c * (kw + pad):pad + c * (kw + pad) + kw] = False
    return m


def test_filter_grid_rgb_each_and_all(rng):
    w = rng.standard_normal((5, 3, 4, 3))
    g = viz.filter_grid(w, ncols=3, pad=2, pad_value=0.25)
    assert g.shape == (2 + 2 * (4 + 2), 2 + 3 * (3 + 2), 3)
    for k in range(5):
        f = w[k].transpose(1, 2, 0)
        np.testing.assert_allclose(_tile(g, k, 3, 4, 3, 2), (f - f.min()) / (f.max() - f.min()), rtol=1e-12)
    assert np.all(g[_pad_mask(g.shape, 5, 3, 4, 3, 2)] == 0.25)  # padding and the empty sixth slot
    g = viz.filter_grid(w, normalize="all", ncols=3, pad=2)
    lo, hi = w.min(), w.max()
    for k in range(5):
        np.testing.assert_allclose(_tile(g, k, 3, 4, 3, 2), (w[k].transpose(1, 2, 0) - lo) / (hi - lo), rtol=1e-12)
    # default layout: ceil(sqrt(5)) = 3 columns, 1 pixel of padding
    assert viz.filter_grid(w).shape == (1 + 2 * 5, 1 + 3 * 4, 3)


def test_filter_grid_grayscale_modes(rng):
    w = rng.standard_normal((3, 4, 2, 5))
    mm = lambda a: (a - a.min()) / (a.max() - a.min())  # noqa: E731
    # 'auto' with 4 input channels: every (filter, channel) tile, one row per filter, normalised per filter
    g = viz.filter_grid(w)
    assert g.shape == (1 + 3 * 3, 1 + 4 * 6)
    for o in range(3):
        for i in range(4):
            np.testing.assert_allclose(_tile(g, o * 4 + i, 4, 2, 5, 1), mm(w[o])[i], rtol=1e-12)
    for channels, pick in [("first", lambda f: f[0]), (2, lambda f: f[2]), (-1, lambda f: f[3]),
                           ("mean", lambda f: f.mean(0))]:
        g = viz.filter_grid(w, channels=channels, ncols=3)
        assert g.shape == (1 + 3, 1 + 3 * 6)
        for o in range(3):
            np.testing.assert_allclose(_tile(g, o, 3, 2, 5, 1), mm(pick(w[o])), rtol=1e-12, err_msg=str(channels))
    g = viz.filter_grid(w, channels=1, normalize="all", ncols=1, pad=0)
    np.testing.assert_allclose(g, ((w[:, 1] - w[:, 1].min()) / np.ptp(w[:, 1])).reshape(6, 5), rtol=1e-12)


def test_filter_grid_inputs_and_constant_filter():
    fastconv.manual_seed(3)
    conv = nn.Conv2d(3, 4, 3)
    w = conv.weight.data.copy()
    w[1] = 0.5  # a constant filter shows as mid-grey
    conv.weight.data[...] = w
    ref = viz.filter_grid(w)
    np.testing.assert_array_equal(viz.filter_grid(conv), ref)
    np.testing.assert_array_equal(viz.filter_grid(conv.weight), ref)
    assert np.all(_tile(ref, 1, 2, 3, 3, 1) == 0.5)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(viz.filter_grid(torch.tensor(w)), ref)


def test_filter_grid_errors():
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match="needs 3 input channels"):
        viz.filter_grid(w, channels="rgb")
    with pytest.raises(ValueError, match=r"channel 2 out of range"):
        viz.filter_grid(w, channels=2)
    with pytest.raises(ValueError, match="channels must be"):
        viz.filter_grid(w, channels="blue")
    with pytest.raises(ValueError, match="normalize"):
        viz.filter_grid(w, normalize="none")
    with pytest.raises(ValueError, match=r"\(4, 2, 3\)"):
        viz.filter_grid(np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match="ncols"):
        viz.filter_grid(w, ncols=0)
    with pytest.raises(TypeError, match="weight"):
        viz.filter_grid(nn.ReLU())


def test_feature_grid(rng):
    a = rng.standard_normal((7, 4, 6))
    a[2] = 0.0  # a dead map is dark
    g = viz.feature_grid(a, max_maps=5, ncols=2)
    assert g.shape == (1 + 3 * 5, 1 + 2 * 7)
    for k in range(5):
        want = np.zeros((4, 6)) if k == 2 else (a[k] - a[k].min()) / np.ptp(a[k])
        np.testing.assert_allclose(_tile(g, k, 2, 4, 6, 1), want, rtol=1e-12)
    assert np.all(g[_pad_mask(g.shape, 5, 2, 4, 6, 1)] == 1.0)
    g = viz.feature_grid(a[None], normalize="all", max_maps=None)
    assert g.shape == (1 + 3 * 5, 1 + 3 * 7)
    np.testing.assert_allclose(_tile(g, 6, 3, 4, 6, 1), (a[6] - a.min()) / np.ptp(a), rtol=1e-12)
    with pytest.raises(ValueError, match="max_maps"):
        viz.feature_grid(a, max_maps=0)


# --- feature maps ---


def test_feature_maps_lenet5_equal_a_manual_forward():
    model = _model("lenet5")
    x = viz.adapt_image(viz.sample_image(), (1, 32, 32))
    layers = ["features.0", "features.2", "features.5", "classifier.1"]
    acts = viz.feature_maps(model, x, layers)
    assert list(acts) == layers
    c1, c2 = model.features[0], model.features[3]
    y0 = conv2d_ref(x[None].astype(np.float64), c1.weight.data, c1.bias.data)[0]  # the float64 reference
    np.testing.assert_allclose(acts["features.0"], y0, rtol=1e-4, atol=1e-5)
    p1 = F.max_pool2d(F.relu(F.conv2d(x, c1.weight.data, c1.bias.data)), 2)
    np.testing.assert_allclose(acts["features.2"], p1, rtol=1e-5, atol=1e-6)
    p2 = F.max_pool2d(F.relu(F.conv2d(p1, c2.weight.data, c2.bias.data)), 2)
    np.testing.assert_allclose(acts["features.5"], p2, rtol=1e-5, atol=1e-6)
    fc = model.classifier[1]
    np.testing.assert_allclose(acts["classifier.1"], p2.reshape(-1) @ fc.weight.data.T + fc.bias.data,
                               rtol=1e-4, atol=1e-5)
    assert acts["features.0"].shape == (6, 28, 28) and acts["features.5"].shape == (16, 5, 5)


def test_feature_maps_cifar_vgg_batch_and_module_objects():
    model = _model("cifar_vgg")
    x = np.stack([viz.sample_image(32), viz.sample_image(32)[:, ::-1]])
    acts = viz.feature_maps(model, x, [model.features[4], "features.7"])
    assert list(acts) == ["features.4", "features.7"]
    with fastconv.no_grad():
        want4 = model.features[:5](x)
        want7 = model.features[5:8](want4)
    np.testing.assert_array_equal(acts["features.4"], np.asarray(want4.data))
    np.testing.assert_array_equal(acts["features.7"], np.asarray(want7.data))
    assert acts["features.4"].shape == (2, 64, 16, 16)
    # a batch of one stays batched; one image (C, H, W) loses the batch dimension
    one = viz.feature_maps(model, x[1], "features.4")["features.4"]
    np.testing.assert_array_equal(one, acts["features.4"][1])
    assert viz.feature_maps(model, x[1:], "features.4")["features.4"].shape == (1, 64, 16, 16)


def test_feature_maps_leaves_the_model_as_it_was():
    model = _model("cifar_vgg_bn")
    model.train()
    model.features[1].eval()  # a mixed state must come back as it was
    user = []
    model.features[0].register_forward_hook(lambda m, i, o: user.append(1))
    state = {k: v.copy() for k, v in model.state_dict().items()}
    viz.feature_maps(model, viz.sample_image(32), ["features.0", "features.2"])
    assert [m.training for m in model.modules()] == [m is not model.features[1] for m in model.modules()]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)  # eval mode: running stats untouched
    assert len(model.features[0]._forward_hooks) == 1 and user == [1]
    assert not model.features[2]._forward_hooks


def test_feature_maps_of_a_module_called_twice():
    model = _model("resnet_small")
    x = viz.sample_image(32)
    acts = viz.feature_maps(model, x, "layer1.0.relu")
    assert list(acts) == ["layer1.0.relu", "layer1.0.relu_1"]  # torchvision's names for repeated calls
    block = model.layer1[0]
    with fastconv.no_grad():
        stem = model.relu(model.bn1(model.conv1(x[None])))
        first = block.relu(block.bn1(block.conv1(stem)))
        out = block(stem)
    np.testing.assert_array_equal(acts["layer1.0.relu"], np.asarray(first.data)[0])
    np.testing.assert_array_equal(acts["layer1.0.relu_1"], np.asarray(out.data)[0])


def test_feature_maps_errors():
    model = _model("lenet5")
    x = np.zeros((1, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"unknown layer 'features\.9'.*features\.0.*classifier\.5"):
        viz.feature_maps(model, x, "features.9")
    with pytest.raises(ValueError, match="not a submodule"):
        viz.feature_maps(model, x, nn.ReLU())
    with pytest.raises(ValueError, match=r"\(32, 32\)"):
        viz.feature_maps(model, x[0], "features.0")
    with pytest.raises(TypeError, match="Module"):
        viz.feature_maps(lambda t: t, x, "features.0")


# ---------------------------------------------------------------------------------------------
# drawing (matplotlib)


def test_plot_filters_png_rgb(tmp_path):
    _mpl()
    fastconv.manual_seed(0)
    conv = nn.Conv2d(3, 64, 11, stride=4, padding=2)  # AlexNet's first layer
    path = tmp_path / "f.png"
    fig = viz.plot_filters(conv, path=path)
    grid = viz.filter_grid(conv)
    assert grid.shape == (97, 97, 3)  # 8 x 8 tiles of 11 x 11, 1 pixel apart
    s = _scale(grid)
    img = _read_png(path)
    assert img.shape == (97 * s + TITLE, 97 * s, 3)
    assert tuple(np.round(fig.get_size_inches() * fig.dpi).astype(int)) == (97 * s, 97 * s + TITLE)
    # every cell of the grid, so all 64 tiles sit where filter_grid put them
    np.testing.assert_allclose(_cells(img, grid, s, TITLE), grid, atol=1.01 / 255)
    assert img[:TITLE].min() < 0.5 and img[:TITLE].max() == 1.0  # dark title text on white


def test_plot_filters_png_grayscale_no_title_and_scale(tmp_path):
    _mpl()
    model = _model("lenet5")
    path = tmp_path / "g.png"
    viz.plot_filters(model.features[3], channels="mean", ncols=4, title=False, scale=7, path=path)
    grid = viz.filter_grid(model.features[3], channels="mean", ncols=4)
    assert grid.shape == (1 + 4 * 6, 1 + 4 * 6)
    img = _read_png(path)
    assert img.shape == (grid.shape[0] * 7, grid.shape[1] * 7, 3)
    np.testing.assert_allclose(_cells(img, grid, 7, 0), np.repeat(grid[..., None], 3, -1), atol=2.01 / 255)


def test_plot_filters_into_given_axes():
    _mpl()
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert viz.plot_filters(np.ones((2, 3, 3, 3)), ax=ax) is fig
    assert len(ax.images) == 1 and ax.images[0].get_array().shape == (5, 9, 3)


def test_plot_feature_maps_png(tmp_path):
    matplotlib = _mpl()
    model = _model("lenet5")
    x = viz.adapt_image(viz.sample_image(), (1, 32, 32))
    path = tmp_path / "m.png"
    viz.plot_feature_maps(model, x, "features.0", path=path)
    grid = viz.feature_grid(viz.feature_maps(model, x, "features.0")["features.0"])
    assert grid.shape == (1 + 2 * 29, 1 + 3 * 29)  # 6 maps of 28 x 28 in 3 columns
    s = _scale(grid)
    img = _read_png(path)
    assert img.shape == (grid.shape[0] * s + TITLE, grid.shape[1] * s, 3)
    want = matplotlib.colormaps["viridis"](grid)[..., :3]
    np.testing.assert_allclose(_cells(img, grid, s, TITLE), want, atol=1.01 / 255)
    # max_maps: 64 maps of a CIFAR VGG conv, first 10 drawn in 4 columns
    vgg = _model("cifar_vgg")
    fig = viz.plot_feature_maps(vgg, viz.sample_image(32)[None], vgg.features[2], max_maps=10, title=False, scale=2)
    assert tuple(np.round(fig.get_size_inches() * fig.dpi).astype(int)) == (2 * (1 + 4 * 33), 2 * (1 + 3 * 33))


def test_plot_feature_maps_errors():
    _mpl()
    model = _model("lenet5")
    with pytest.raises(ValueError, match=r"classifier\.1.*Linear.*\(1, 120\)"):
        viz.plot_feature_maps(model, np.zeros((1, 32, 32)), "classifier.1")
    with pytest.raises(ValueError, match="batch of one"):
        viz.plot_feature_maps(model, np.zeros((2, 1, 32, 32)), "features.0")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viz.plot_feature_maps(model, np.zeros((1, 32, 32)), "features.0", path="/nonexistent-dir/x.png")


def test_plot_training_curves(tmp_path):
    _mpl()
    hist = {"loss": [2.0, 1.2, 0.9, 0.7], "val_loss": [2.1, 1.5, 1.2, None], "accuracy": [0.3, 0.6, 0.7, 0.8],
            "val_accuracy": [0.25, 0.5, 0.6, 0.65]}
    path = tmp_path / "c.png"
    fig = viz.plot_training_curves(hist, path=path)
    img = _read_png(path)
    assert img.shape == (400, 1000, 3)
    loss_ax, acc_ax = fig.axes
    assert [ln.get_label() for ln in loss_ax.lines] == ["loss", "val_loss"]
    assert [ln.get_label() for ln in acc_ax.lines] == ["accuracy", "val_accuracy"]
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [2.1, 1.5, 1.2, np.nan])
    assert loss_ax.lines[0].get_color() == loss_ax.lines[1].get_color()  # train and val of a metric share a colour
    assert loss_ax.lines[1].get_linestyle() == "--"
    assert acc_ax.get_ylabel() == "accuracy" and loss_ax.get_xlabel() == "epoch"
    # a list of per-epoch dicts gives the same curves; 'epoch' gives the x values; a third group for the rest
    records = [{"epoch": 0, "loss": 2.0, "acc": 0.3, "lr": 0.1}, {"epoch": 1, "loss": 1.0, "lr": 0.01}]
    fig = viz.plot_training_curves(records)
    assert len(fig.axes) == 3
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_xdata(), [0, 1])
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), [0.3, np.nan])
    assert fig.axes[2].get_ylabel() == "lr"
    with pytest.raises(ValueError, match="no metric"):
        viz.plot_training_curves({})
    with pytest.raises(ValueError, match="one number"):
        viz.plot_training_curves({"loss": [1.0, "x"]})
    with pytest.raises(TypeError, match="dict of lists"):
        viz.plot_training_curves(3)


def test_drawing_leaves_pyplot_and_the_backend_alone(tmp_path):
    _mpl()
    code = textwrap.dedent(f"""
        import sys, matplotlib
        matplotlib.use("svg")  # the user's choice
        import fastconv, fastconv.viz as viz
        m = fastconv.models.LeNet5()
        viz.plot_filters(m.features[0], path={str(tmp_path / "a.png")!r})
        viz.plot_feature_maps(m, viz.sample_image(32)[:1], "features.0", path={str(tmp_path / "b.png")!r})
        viz.plot_training_curves({{"loss": [1, 0.5]}}, path={str(tmp_path / "c.png")!r})
        assert "matplotlib.pyplot" not in sys.modules
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stdout + r.stderr
    for name in "abc":
        _read_png(tmp_path / f"{name}.png")


# ---------------------------------------------------------------------------------------------
# the command line


@pytest.mark.parametrize("model,shape,maps", [
    ("lenet5", (1, 32, 32), ["features.0", "features.3"]),
    ("cifar_vgg", (3, 32, 32), ["features.0", "features.2", "features.5", "features.7", "features.10"]),
])
def test_cli_viz_writes_pngs(model, shape, maps, tmp_path, capsys):
    _mpl()
    out = tmp_path / "pics"
    assert main(["viz", "--model", model, "--out", str(out)]) == 0
    cap = capsys.readouterr()
    want = [str(out / f"{model}_input.png"), str(out / f"{model}_filters_features.0.png")]
    want += [str(out / f"{model}_maps_{n}.png") for n in maps]
    assert cap.out.split("\n")[:-1] == want
    assert "random initialisation (seed 0)" in cap.err and "--weights" in cap.err
    assert f"fed as {'x'.join(map(str, shape))}" in cap.err
    for p in want:
        _read_png(p)
    # the filters picture is the first conv layer's grid; the input picture is the adapted sample image
    fastconv.manual_seed(0)
    conv = fastconv.models.get_model(model).features[0]
    grid = viz.filter_grid(conv)
    img = _read_png(want[1])
    cells = _cells(img, grid, _scale(grid), TITLE)
    np.testing.assert_allclose(cells if grid.ndim == 3 else cells[..., 0], grid, atol=2.01 / 255)
    x = viz.adapt_image(viz.sample_image(), shape)
    x = x[0] if shape[0] == 1 else x.transpose(1, 2, 0)
    img = _read_png(want[0])
    assert img.shape[:2] == (32 * 13 + TITLE, 32 * 13)
    np.testing.assert_allclose(_cells(img, x, 13, TITLE)[..., 0], x if x.ndim == 2 else x[..., 0], atol=2.01 / 255)


def test_cli_viz_layers_weights_image_seed(tmp_path, capsys):
    _mpl()
    # weights from a file: the filters drawn are the loaded ones
    fastconv.manual_seed(7)
    src = fastconv.models.LeNet5()
    fastconv.save(src, tmp_path / "w.npz")
    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((40, 40)).astype(np.float32))
    out = tmp_path / "o"
    assert main(["viz", "--weights", str(tmp_path / "w.npz"), "--image", str(tmp_path / "img.npy"), "--layer",
                 "features.1", "--layer", "features.5", "--max-maps", "4", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "loaded from" in cap.err and "random" not in cap.err and "img.npy" in cap.err
    assert [os.path.basename(p) for p in cap.out.split()] == [
        "lenet5_input.png", "lenet5_filters_features.0.png", "lenet5_maps_features.1.png", "lenet5_maps_features.5.png"]
    grid = viz.filter_grid(src.features[0])
    img = _read_png(out / "lenet5_filters_features.0.png")
    np.testing.assert_allclose(_cells(img, grid, _scale(grid), TITLE)[..., 0], grid, atol=2.01 / 255)
    # --max-maps 4: 2 x 2 maps of 5 x 5 for features.5
    g = viz.feature_grid(np.zeros((4, 5, 5)))
    assert g.shape == (13, 13)
    assert _read_png(out / "lenet5_maps_features.5.png").shape[:2] == (13 * _scale(g) + TITLE, 13 * _scale(g))
    # another seed, other random filters
    assert main(["viz", "--seed", "1", "--out", str(tmp_path / "s1"), "--layer", "features.0"]) == 0
    assert main(["viz", "--seed", "2", "--out", str(tmp_path / "s2"), "--layer", "features.0"]) == 0
    capsys.readouterr()
    a, b = (_read_png(tmp_path / d / "lenet5_filters_features.0.png") for d in ("s1", "s2"))
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_cli_viz_errors(tmp_path, capsys):
    out = str(tmp_path / "never")
    assert main(["viz", "--model", "nosuchnet", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "nosuchnet" in err and "lenet5" in err and "cifar_vgg" in err
    _mpl()
    assert main(["viz", "--layer", "features.0", "features.42", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "unknown layer 'features.42'" in err and "features.3" in err and "classifier.5" in err
    assert main(["viz", "--layer", "classifier.1", "--out", out]) == 2
    assert "classifier.1 (Linear" in capsys.readouterr().err
    fastconv.save(fastconv.models.CifarVGG(), tmp_path / "vgg.npz")
    assert main(["viz", "--weights", str(tmp_path / "vgg.npz"), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "cannot load --weights" in err and "shape mismatch" in err
    assert main(["viz", "--image", str(tmp_path / "missing.png"), "--out", out]) == 2
    assert "cannot read --image" in capsys.readouterr().err
    assert not os.path.exists(out)  # nothing written on an error
    assert main(["viz", "--model", "resnet_small", "--list-layers"]) == 0
    assert "layer1.0.conv1" in capsys.readouterr().out


def test_cli_viz_help_and_top_level_help(capsys):
    r = subprocess.run([sys.executable, "-m", "fastconv", "viz", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for opt in ("--model", "--weights", "--image", "--layer", "--out", "--seed", "randomly initialised",
                "pip install 'fastconv[viz]'"):
        assert opt in text, opt
    assert main([]) == 2
    assert "viz" in capsys.readouterr().out
