#!/usr/bin/env python3
"""The full benchmark suite: every case of fastconv's case list at 1 and 2 threads.

    python benchmarks/run.py [--threads 1,2] [--min-time 0.3] [--out bench-results/NAME]

fastconv against the NumPy baseline (im2col + matmul), PyTorch and onnxruntime
(each optional: skipped when not installed), forward for every case and
forward+backward for the convolutions, whole models (LeNet-5, the CIFAR VGG)
as well as single layers. Each case's libraries are timed in interleaved
rounds (each library a block of samples per round, warm-up first; the median
of all its samples), outputs are cross-checked first, and
the FMA peak of one core is measured by a probe so each case reports its %
of peak. Writes NAME.json (results + environment) and NAME.md (the table).

For steady numbers run it on an otherwise idle machine; these VMs are noisy,
so compare ratios measured in one run rather than absolute times.
"""

import argparse
import os
import sys
import time

from fastconv import _bench
from fastconv.cli import _rounds_arg, _threads_arg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=_threads_arg, default=[1, 2])
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds of timing per measurement")
    ap.add_argument("--rounds", type=_rounds_arg, default=3, help="interleaved timing rounds per case (default 3)")
    ap.add_argument("--cases", help="comma-separated subset of case names")
    ap.add_argument("--out", default=os.path.join("bench-results", time.strftime("%Y%m%d-%H%M%S")))
    args = ap.parse_args(argv)
    cases = _bench.CASES
    if args.cases:
        names = set(args.cases.split(","))
        cases = [c for c in cases if c.name in names]
    results, env = _bench.run(
        cases, args.threads, min_time=args.min_time, progress=_bench.print_progress, rounds=args.rounds
    )
    table = _bench.table(results, markdown=True)
    lines = _bench.summary_lines(results)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        f.write(_bench.to_json(results, env))
    with open(args.out + ".md", "w") as f:
        f.write(table + "\n\n" + "\n".join("- " + s for s in lines) + "\n\n")
        f.write("Environment: " + ", ".join(f"{k}={v}" for k, v in env.items()) + "\n")
    print(_bench.table(results))
    print("\n".join(lines))
    print(f"wrote {args.out}.json and {args.out}.md")
    return 0 if all(r.agree for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
