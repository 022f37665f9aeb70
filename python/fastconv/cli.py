"""The ``fastconv`` command line (also ``python -m fastconv``).

Commands: ``bench`` (the main job: time small-CNN layers and whole models
against the NumPy baseline and PyTorch), ``summary MODEL``, ``info``,
``viz`` (PNGs of a built-in model's filters and feature maps; needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _threads_arg(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of thread counts, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be positive integers, got {text!r}")
    return values


def _rounds_arg(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"rounds must be a positive integer, got {text!r}")
    return n


def _default_threads():
    from ._runtime import get_num_threads

    n = get_num_threads()
    return [1, n] if n > 1 else [1]


def cmd_bench(args) -> int:
    from . import _bench

    cases = _bench.CASES if args.full else [c for c in _bench.CASES if c.quick]
    if args.cases:
        wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
        known = {c.name: c for c in _bench.CASES}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            print(f"fastconv bench: unknown case(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
            return 2
        cases = [known[w] for w in wanted]
    threads = args.threads or _default_threads()
    progress = None if args.quiet else _bench.print_progress
    if not args.quiet:
        print(
            f"fastconv bench: {len(cases)} cases x threads {','.join(map(str, threads))}; "
            f"peers: NumPy baseline{'' if args.no_torch else ', PyTorch'}{'' if args.no_ort else ', onnxruntime'} "
            "(the optional ones if installed)",
            file=sys.stderr,
        )
    results, env = _bench.run(
        cases, threads, min_time=args.min_time, use_torch=not args.no_torch, backward=not args.no_backward,
        progress=progress, use_ort=not args.no_ort, rounds=args.rounds,
    )
    print(_bench.table(results))
    print()
    for line in _bench.summary_lines(results):
        print(line)
    print(
        f"\n{env['cpu']}, {env['cores']} cores; fastconv {env['fastconv']} ({env['simd']}), NumPy {env['numpy']} "
        f"(BLAS threads: {env['numpy_threads']}), PyTorch {env['torch'] or 'not installed'}, "
        f"onnxruntime {env['onnxruntime'] or 'not installed'}; FMA peak {env['fma_peak_gflops_per_core']} GFLOP/s per core; "
        f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']}; {env['date']}"
    )
    print("times: median per call after warm-up; speed-up = peer time / fastconv time, measured in this run")
    if args.json:
        with open(args.json, "w") as f:
            f.write(_bench.to_json(results, env))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(_bench.table(results, markdown=True) + "\n\n" + "\n".join(_bench.summary_lines(results)) + "\n")
    return 0 if all(r.agree for r in results) else 1


def cmd_summary(args) -> int:
    from . import models
    from .summary import summary

    if args.model not in models.MODELS:
        print(f"fastconv summary: unknown model {args.model!r}; available: {', '.join(models.MODELS)}", file=sys.stderr)
        return 2
    model = models.get_model(args.model)
    shape = (args.batch,) + tuple(models.input_shape(args.model))
    print(summary(model, shape))
    return 0


def cmd_info(args) -> int:
    from ._runtime import build_info

    info = build_info()
    info["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    info["FASTCONV_ISA"] = os.environ.get("FASTCONV_ISA")
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        width = max(map(len, info))
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return 0


VIZ_DEFAULT_LAYERS = 6  # without --layer, the feature maps of the first this-many conv layers


def cmd_viz(args: argparse.Namespace) -> int:
    from . import models, nn, viz
    from ._elementwise import manual_seed
    from .serialization import load

    def fail(msg: str, code: int = 2) -> int:
        print(f"fastconv viz: {msg}", file=sys.stderr)
        return code

    if args.model not in models.MODELS:
        return fail(f"unknown model {args.model!r}; available: {', '.join(models.MODELS)}")
    if args.max_maps < 1:
        return fail(f"--max-maps must be >= 1, got {args.max_maps}")
    manual_seed(args.seed)
    model = models.get_model(args.model)
    model.eval()
    named = [(n, m) for n, m in model.named_modules() if n]
    if args.list_layers:
        for n, m in named:
            print(f"{n:<28} {type(m).__name__}")
        return 0
    try:
        viz._mpl()
    except ImportError as e:
        return fail(str(e).replace("fastconv.viz: ", ""), 1)
    if args.weights:
        try:
            model.load_state_dict(load(args.weights))
        except Exception as e:  # missing file, not an .npz, wrong keys or shapes: all the user's to fix
            return fail(f"cannot load --weights {args.weights!r} into {args.model}: {e}")
        weights_note = f"weights loaded from {args.weights}"
    else:
        weights_note = (f"random initialisation (seed {args.seed}): no trained weights, so the filters are noise; "
                        f"pass --weights STATE_DICT.npz to see trained ones")
    shape = tuple(models.input_shape(args.model))
    try:
        image = viz.load_image(args.image) if args.image else viz.sample_image()
    except (OSError, ValueError) as e:
        return fail(f"cannot read --image {args.image!r}: {e}")
    try:
        x = viz.adapt_image(image, shape)
    except ValueError as e:
        return fail(str(e))
    names = dict(named)
    convs = [n for n, m in named if isinstance(m, nn.Conv2d)]
    if not convs:
        return fail(f"{args.model} has no Conv2d layer")
    if args.layers:
        layers = list(dict.fromkeys(args.layers))
        unknown = [n for n in layers if n not in names]
        if unknown:
            return fail(f"unknown layer{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
                        f"{args.model}; its layers are: {', '.join(names)}")
    else:
        layers = convs[:VIZ_DEFAULT_LAYERS]
    acts = viz.feature_maps(model, x, layers)
    bad = [f"{n} ({type(names[n]).__name__}, output shape {(1,) + acts[n].shape})" for n in layers if acts[n].ndim != 3]
    if bad:
        return fail(f"not feature maps (1, C, H, W): {'; '.join(bad)}; choose conv, pooling or activation layers "
                    f"(fastconv viz --model {args.model} --list-layers)")

    src = args.image if args.image else "the bundled sample image"
    print(f"fastconv viz: {args.model}, {weights_note}", file=sys.stderr)
    print(f"fastconv viz: input {src}, fed as {'x'.join(map(str, shape))} in [0, 1]", file=sys.stderr)
    if not args.layers and len(convs) > len(layers):
        print(f"fastconv viz: feature maps of the first {len(layers)} of {len(convs)} conv layers "
              f"(choose others with --layer)", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    prefix = os.path.join(args.out, args.model)
    written = []
    path = f"{prefix}_input.png"
    viz._plot_image(x, title=f"input: {os.path.basename(src) if args.image else 'sample image'} as "
                             f"{'x'.join(map(str, shape))}", path=path)
    written.append(path)
    first = convs[0]
    path = f"{prefix}_filters_{first}.png"
    rnd = "" if args.weights else ", random init"
    w = names[first].weight.data
    viz.plot_filters(names[first], path=path,
                     title=f"{args.model} {first}: {w.shape[0]} filters {w.shape[2]}x{w.shape[3]}x{w.shape[1]}{rnd}")
    written.append(path)
    for n in layers:
        path = f"{prefix}_maps_{n}.png"
        viz._draw_maps(acts[n], n, names[n], max_maps=args.max_maps, ncols=None, normalize="each", pad=1,
                       cmap="viridis", title=True, scale=None, dpi=100, ax=None, fig=None, path=path)
        written.append(path)
    for path in written:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastconv", description="fastconv: fast CPU convolutional networks for Python."
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser(
        "bench",
        help="time small-CNN layers and whole models against NumPy (and PyTorch if installed)",
        description="Time LeNet-5, CIFAR VGG and other small-CNN layers and whole models with fastconv, the NumPy "
        "im2col+matmul baseline and PyTorch (if installed); check the outputs agree; print ms, GFLOP/s and "
        "speed-ups. Exit status 1 if any outputs disagree.",
    )
    b.add_argument("--full", action="store_true", help="every case of the suite, not the quick subset")
    b.add_argument("--cases", help="comma-separated case names to run (see --list)")
    b.add_argument("--list", action="store_true", help="list the cases and exit")
    b.add_argument("--threads", type=_threads_arg, help="comma-separated thread counts (default: 1 and all cores)")
    b.add_argument("--min-time", type=float, default=0.15, help="seconds of timing per measurement (default 0.15)")
    b.add_argument("--rounds", type=_rounds_arg, default=2, help="interleaved timing rounds per case (default 2)")
    b.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch even if installed")
    b.add_argument("--no-ort", action="store_true", help="do not compare with onnxruntime even if installed")
    b.add_argument("--no-backward", action="store_true", help="skip the conv forward+backward timings")
    b.add_argument("--json", metavar="PATH", help="also write the results and environment as JSON")
    b.add_argument("--markdown", metavar="PATH", help="also write the table as markdown")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    b.set_defaults(func=cmd_bench)

    s = sub.add_parser("summary", help="per-layer summary table of a built-in model",
                       description="Per layer: output shape, parameters, multiply-adds, receptive field; totals.")
    s.add_argument("model", help="lenet5, alexnet, cifar_vgg, ... (see fastconv.models.MODELS)")
    s.add_argument("--batch", type=int, default=1, help="batch size of the traced input (default 1)")
    s.set_defaults(func=cmd_summary)

    v = sub.add_parser(
        "viz",
        help="PNG pictures of a built-in model: first-layer filters and feature maps (needs matplotlib)",
        description="Write PNGs for a built-in model: the input image, the filters of its first conv layer (RGB "
        "tiles for 3-channel input, as the AlexNet figures) and the feature maps each chosen layer outputs for "
        "the image. The model is randomly initialised (fixed --seed) unless --weights gives a state dict, so "
        "without --weights the filters are noise. The image (default: a bundled 96x96 sample picture) is "
        "resized and converted to the model's input (1x32x32 gray for lenet5, 3x32x32 for cifar_vgg, "
        "3x224x224 for alexnet) and fed in [0, 1]. Prints the paths written. Needs matplotlib: "
        "pip install 'fastconv[viz]'.",
        epilog="examples:\n"
        "  fastconv viz                                   # lenet5 on the sample image, into ./fastconv-viz\n"
        "  fastconv viz --model alexnet --layer features.0 features.3 --out pics\n"
        "  fastconv viz --model cifar_vgg --weights vgg.npz --image cat.png\n"
        "  fastconv viz --model resnet_small --list-layers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("--model", default="lenet5", help="lenet5 (default), alexnet, cifar_vgg, ... (see "
                   "fastconv.models.MODELS)")
    v.add_argument("--weights", metavar="STATE_DICT.npz", help="load these weights (written by fastconv.save, "
                   "e.g. from a PyTorch state_dict) instead of the random initialisation")
    v.add_argument("--image", metavar="PATH", help="a .png (or .npy array (H,W), (C,H,W) or (H,W,C)) to feed "
                   "instead of the bundled sample image")
    v.add_argument("--layer", dest="layers", action="extend", nargs="+", metavar="NAME",
                   help="dotted layer names from named_modules() whose feature maps to draw, e.g. features.0 "
                   f"features.3 (default: the first {VIZ_DEFAULT_LAYERS} conv layers; see --list-layers)")
    v.add_argument("--out", default="fastconv-viz", metavar="DIR", help="directory for the PNGs (created; "
                   "default ./fastconv-viz)")
    v.add_argument("--seed", type=int, default=0, help="seed of the random initialisation (default 0)")
    v.add_argument("--max-maps", type=int, default=64, help="at most this many maps per layer (default 64)")
    v.add_argument("--list-layers", action="store_true", help="list the model's layer names and types, and exit")
    v.set_defaults(func=cmd_viz)

    i = sub.add_parser("info", help="build information: version, compiler, OpenMP, SIMD path, threads")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "bench" and args.list:
        from . import _bench

        for c in _bench.CASES:
            print(f"{c.name:<22} {'quick' if c.quick else 'full ':<6} {c.describe()}")
        return 0
    if args.command == "summary" and args.batch < 1:
        parser.error("--batch must be >= 1")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
