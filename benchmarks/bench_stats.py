"""Statistics rate: label maps per second of ``lipkit.stats.compute_stats``, as a markdown table.

    .venv/bin/python benchmarks/bench_stats.py                 # SynthLIP, 2,000 train images
    .venv/bin/python benchmarks/bench_stats.py --root /data/LIP --split train   # real LIP

Without ``--root`` it generates SynthLIP into a temporary folder first (not timed). Each setting
runs ``--repeat`` times after one warm-up pass (file cache warm) and reports the best.
Full LIP train (30,462 labels) takes about 30462 / rate seconds.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipkit.stats import compute_stats  # noqa: E402
from _common import synthlip_in  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="LIP root; default: generate SynthLIP")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=2000, help="SynthLIP train images to generate")
    parser.add_argument("--workers", default="0,2", help="comma-separated thread counts to compare")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = synthlip_in(tmp, args.n)
        compute_stats(root, args.split, progress=False)  # warm the file cache
        rows = []
        for workers in [int(w) for w in args.workers.split(",")]:
            runs = [compute_stats(root, args.split, progress=False, num_workers=workers) for _ in range(args.repeat)]
            best = min(r.seconds for r in runs)
            n = runs[0].num_images
            rows.append((workers, n, best, n / best))
        sizes = compute_stats(root, args.split, progress=False).sizes
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}; "
          f"data: {'SynthLIP' if args.root is None else args.root.name} {args.split}, "
          f"median size {int(np.median(sizes[:, 0]))}x{int(np.median(sizes[:, 1]))}\n")
    print("| label threads | images | seconds | images/s | full LIP train (30,462) |")
    print("|---|---|---|---|---|")
    for workers, n, sec, rate in rows:
        print(f"| {workers} | {n} | {sec:.2f} | {rate:.0f} | {30462 / rate:.0f} s |")


if __name__ == "__main__":
    main()
