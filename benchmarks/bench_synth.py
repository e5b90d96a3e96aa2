"""Generation rate of SynthLIP: 2,000 train + 500 val images (the cpu profile's size) on 2 workers.

Reports wall time, images per second, and the CPU seconds spent per image (parent + workers), which
stays meaningful when other processes share the cores; the target is under 30 s wall on 2 free cores.
Also prints the share of images in which each LIP class appears (train split).

    .venv/bin/python benchmarks/bench_synth.py                       # 2000 + 500, 2 workers
    .venv/bin/python benchmarks/bench_synth.py --train 500 --val 100 --workers 1
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lipkit.data.synth import make_synthlip
from lipkit.labels import LIP


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def class_image_share(root: Path, split: str = "train") -> np.ndarray:
    """Fraction of the split's images in which each LIP class appears."""
    ids = (root / f"{split}_id.txt").read_text().split()
    present = np.zeros(LIP.num_classes, np.int64)
    for ident in ids:
        lab = np.asarray(Image.open(root / f"{split}_segmentations" / f"{ident}.png"))
        present += np.bincount(lab.ravel(), minlength=LIP.num_classes)[: LIP.num_classes] > 0
    return present / max(1, len(ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--no-stats", action="store_true", help="skip the class-frequency table")
    args = parser.parse_args()
    n = args.train + args.val
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "synthlip"
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        make_synthlip(root, args.train, args.val, seed=args.seed, workers=args.workers, progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"SynthLIP {args.train} train + {args.val} val, {args.workers} workers: {wall:.1f} s wall, "
              f"{n / wall:.0f} img/s, {1000 * cpu / n:.1f} ms CPU per image "
              f"(ideal wall on {args.workers} free cores: {cpu / args.workers:.1f} s; load average {load:.1f})")
        if not args.no_stats:
            share = class_image_share(root)
            print(f"\nimages containing each class (train, n={args.train}):")
            for k in np.argsort(-share):
                print(f"  {k:2d} {LIP.classes[k]:<14s} {100 * share[k]:5.1f}%")


if __name__ == "__main__":
    main()
