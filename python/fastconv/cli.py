"""The ``fastconv`` command line (also ``python -m fastconv``).

Commands: ``bench`` (the main job: time small-CNN layers and whole models
against the NumPy baseline and PyTorch), ``summary MODEL``, ``info``.
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
        progress=progress, use_ort=not args.no_ort,
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
