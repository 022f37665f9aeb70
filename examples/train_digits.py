"""Train a small CNN on scikit-learn's bundled 8x8 handwritten digits.

    python examples/train_digits.py [--epochs 12] [--threads 2] [--seed 0]

No download: the 1,797 digits ship with scikit-learn. The network is two 3x3
convolutions with BatchNorm and ReLU, a max pool, and a linear classifier,
trained with Adam on 80% of the data and evaluated on the rest.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastconv
import fastconv.nn as nn
import fastconv.nn.functional as F


def load_digits_split(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test = len(x) // 5
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return x[train], y[train], x[test], y[test]


class DigitsNet(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(width * 4 * 4, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def accuracy(model, x, y, batch=512):
    model.eval()
    correct = 0
    with fastconv.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i : i + batch]).numpy()
            correct += int((logits.argmax(1) == y[i : i + batch]).sum())
    return correct / len(x)


def train(epochs=12, batch_size=64, lr=3e-3, seed=0, threads=None, log=print):
    """Train and return (model, test accuracy, seconds)."""
    if threads:
        fastconv.set_num_threads(threads)
    fastconv.manual_seed(seed)
    xtr, ytr, xte, yte = load_digits_split(seed)
    model = DigitsNet()
    opt = fastconv.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    steps = (len(xtr) + batch_size - 1) // batch_size
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(xtr))
        total = 0.0
        for s in range(steps):
            idx = order[s * batch_size : (s + 1) * batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
            if log is not None and sys.stderr.isatty():
                done = int(30 * (s + 1) / steps)
                sys.stderr.write(f"\r  epoch {epoch:2d} [{'#' * done}{'.' * (30 - done)}] loss {loss.item():.3f}")
                sys.stderr.flush()
        if log is not None and sys.stderr.isatty():
            sys.stderr.write("\r" + " " * 60 + "\r")
        acc = accuracy(model, xte, yte)
        if log is not None:
            log(f"epoch {epoch:2d}  train loss {total / len(xtr):.4f}  test accuracy {acc:.2%}  "
                f"({time.perf_counter() - t0:.1f} s)")
    return model, accuracy(model, xte, yte), time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    info = fastconv.build_info()
    print(f"fastconv {info['version']} ({info['simd']}, {fastconv.get_num_threads()} threads)")
    _, acc, secs = train(args.epochs, args.batch_size, args.lr, args.seed, args.threads)
    print(f"final test accuracy {acc:.2%} in {secs:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
