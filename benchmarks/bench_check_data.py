"""check-data scan rate (image headers + tail check, full label decode) on one core, as a markdown table.

    .venv/bin/python benchmarks/bench_check_data.py                     # 2,000 LIP-sized items in a temp dir
    .venv/bin/python benchmarks/bench_check_data.py --root /data/LIP --split train   # a real LIP root

Without ``--root`` it writes LIP-sized items into a temporary folder first (not timed): JPEG
images 100-500 px a side, 8-bit label PNGs of piecewise-constant regions (like real parsing
maps). The process is pinned to one CPU where the OS allows it. One warm-up pass (file cache
warm), then ``--repeat`` timed passes; the median is reported. Full LIP train (30,462 items)
takes about 30462 / rate seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipkit.data.validate import validate_split  # noqa: E402


def make_items(root: Path, n: int, seed: int = 0) -> None:
    """``n`` LIP-sized train items in the flat layout."""
    rng = np.random.default_rng(seed)
    (root / "train_images").mkdir(parents=True)
    (root / "train_segmentations").mkdir()
    ids = []
    for k in range(n):
        h, w = int(rng.integers(150, 501)), int(rng.integers(100, 351))
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 127 // (h + w))], axis=2)
        image = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        coarse = rng.integers(0, 20, (h // 25 + 1, w // 25 + 1)).astype(np.uint8)
        label = np.repeat(np.repeat(coarse, 25, 0), 25, 1)[:h, :w]
        ident = f"{k}_{1000 + k}"
        Image.fromarray(image).save(root / "train_images" / f"{ident}.jpg", quality=90)
        Image.fromarray(np.ascontiguousarray(label), mode="L").save(root / "train_segmentations" / f"{ident}.png")
        ids.append(ident)
    (root / "train_id.txt").write_text("\n".join(ids) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="LIP root; default: generate items in a temp dir")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=2000, help="items to generate")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    pinned = "no"
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"cpu {cpu}"

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "lip"
            t0 = time.perf_counter()
            make_items(root, args.n)
            print(f"generated {args.n} LIP-sized items in {time.perf_counter() - t0:.1f} s\n")
        report = validate_split(root, args.split, progress=False)  # warm-up (file cache)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            validate_split(root, args.split, progress=False)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        n = report.n_items
        print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, pinned: {pinned}")
        print("| benchmark | items | median s | images/s |")
        print("|---|---|---|---|")
        print(f"| check-data scan (headers + labels, 1 core) | {n} | {med:.2f} | {n / med:.0f} |")
        if not report.ok:
            print(f"\n(note: the split has problems: {report.problem_counts()})")


if __name__ == "__main__":
    main()
