"""Throughput of ConfusionMatrix.update on one core, and the projected time to score LIP val.

LIP val has 10,000 images of roughly 300 x 200 px. Each case updates one matrix with one image at a
time (as an evaluation loop does) for ``--images`` images, then reports megapixels per second and
the projection to 10,000 images. Inputs: uint8 label PNG contents with uint8 predictions (the common
case), int64 torch predictions straight from ``argmax`` (the evaluation loop's case), and a batch of
16 images in one call. Reference: a plain ``np.bincount`` over masked pixels, without validation.

    .venv/bin/python benchmarks/bench_metrics.py
    .venv/bin/python benchmarks/bench_metrics.py --images 500 --repeats 7
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from lipkit.metrics import ConfusionMatrix

from _common import median_seconds

H, W, K = 300, 200, 20
LIP_VAL_IMAGES = 10_000


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, K, size=(n, H, W), dtype=np.uint8)
    target[:, :10] = 255  # some ignored pixels
    pred = np.where(rng.random((n, H, W)) < 0.8, target % K, rng.integers(0, K, size=(n, H, W))).astype(np.uint8)
    return pred, target


median_s = median_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per timed pass (default 200)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pred, target = make_data(args.images)
    pred_t = torch.from_numpy(pred.astype(np.int64))  # what argmax returns
    target_t = torch.from_numpy(target)
    n, px = args.images, args.images * H * W

    def loop(p, t) -> Callable[[], None]:
        def run() -> None:
            cm = ConfusionMatrix(K)
            for i in range(n):
                cm.update(p[i], t[i])
        return run

    def batched() -> None:
        cm = ConfusionMatrix(K)
        for i in range(0, n, 16):
            cm.update(pred[i : i + 16], target[i : i + 16])

    def plain_bincount() -> None:
        m = np.zeros(K * K, dtype=np.int64)
        for i in range(n):
            valid = target[i] != 255
            m += np.bincount(target[i][valid].astype(np.int64) * K + pred[i][valid], minlength=K * K)

    # The cases agree before they are timed.
    a, b = ConfusionMatrix(K), ConfusionMatrix(K)
    for i in range(n):
        a.update(pred[i], target[i])
        b.update(pred_t[i], target_t[i])
    assert np.array_equal(a.matrix, b.matrix)

    cases = {
        "uint8 numpy, one image per update": loop(pred, target),
        "int64 torch pred + uint8 torch target, one image per update": loop(pred_t, target_t),
        "uint8 numpy, 16 images per update": batched,
        "reference: masked np.bincount, no validation": plain_bincount,
    }
    print(f"{n} images of {H}x{W} px per pass ({px / 1e6:.1f} MPx), {K} classes, 1 thread, "
          f"median of {args.repeats} passes\n")
    print("| case | MPx/s | ms / image | projected LIP val (10,000 images), s |")
    print("|---|---:|---:|---:|")
    for name, fn in cases.items():
        s = median_s(fn, args.repeats)
        print(f"| {name} | {px / s / 1e6:.0f} | {1e3 * s / n:.3f} | {s / n * LIP_VAL_IMAGES:.2f} |")
    cm = ConfusionMatrix(K).update(pred, target)
    t_compute = median_s(lambda: cm.compute("nan"), 50)
    print(f"\ncompute() on the final matrix: {1e3 * t_compute:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
