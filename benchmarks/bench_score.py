"""Scoring rate of ``python -m lipkit score``: 10,000 LIP-val-sized predictions, PNG decoding included.

    .venv/bin/python benchmarks/bench_score.py                 # 10,000 pairs, 100-500 px a side
    .venv/bin/python benchmarks/bench_score.py --n 2000        # a quicker look

Ground truth: SynthLIP val label maps (``make_synthlip``, 100-500 px a side like LIP val), ``--base``
distinct people, each used mirrored (left/right swapped) and shifted to make ``--n`` distinct maps,
written as mode-L id PNGs (as LIP ships them) under a LIP-layout root (the scorer reads no image).
Predictions: each ground truth shifted by 1-4 px with some left/right swaps, written as the predict
command writes them (``write_label_png``: palette PNG whose indices are ids); a second folder holds
the first ``--n-colour`` of them as RGB colour PNGs. Generation is not timed. Each case times
``lipkit.score.score_folder`` (listing, decoding both PNGs of every pair on the thread pool, the
confusion matrix, the joint error, the summary) ``--repeat`` times after one warm-up and reports
the median; files are in the page cache by then (as after a first pass).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipkit.data import read_label, write_label_png  # noqa: E402
from lipkit.data.synth import make_synthlip  # noqa: E402
from lipkit.labels import LIP  # noqa: E402
from lipkit.score import default_workers, score_folder  # noqa: E402


def _variant(base: np.ndarray, v: int) -> np.ndarray:
    """A distinct ground truth from a base map: mirrored (left/right swapped) on odd v, shifted by v // 2 px."""
    label = LIP.flip_lut[base[:, ::-1]] if v % 2 else base
    return np.roll(label, (v // 2) % 7, axis=1)


def _prediction(gt: np.ndarray, i: int) -> np.ndarray:
    pred = np.roll(gt, 1 + i % 4, axis=0)
    pred = np.where(pred == 255, 0, pred).astype(np.uint8)
    return LIP.flip_lut[pred] if i % 10 == 0 else pred  # every 10th prediction swaps left and right


def generate(tmp: Path, n: int, n_base: int, n_colour: int, workers: int) -> tuple[Path, Path, Path]:
    """A LIP root with ``n`` val labels, a folder of id-PNG predictions and one of colour-PNG predictions."""
    t0 = time.perf_counter()
    base_root = make_synthlip(tmp / "base", n_train=0, n_val=n_base, seed=0, size_range=(100, 500), workers=workers,
                              progress=False)
    bases = [read_label(p) for p in sorted((base_root / "val_segmentations").glob("*.png"))]
    root, pred, colour = tmp / "lip", tmp / "pred", tmp / "pred_colour"
    for d in (root / "val_images", root / "val_segmentations", pred, colour):
        d.mkdir(parents=True)
    ids = [f"{i:06d}" for i in range(n)]
    (root / "val_id.txt").write_text("".join(i + "\n" for i in ids))

    def write(i: int) -> tuple[int, int]:
        gt = _variant(bases[i % len(bases)], i // len(bases))
        Image.fromarray(gt, mode="L").save(root / "val_segmentations" / f"{ids[i]}.png")
        p = _prediction(gt, i)
        write_label_png(pred / f"{ids[i]}.png", p, LIP)
        if i < n_colour:
            Image.fromarray(LIP.palette_array[p]).save(colour / f"{ids[i]}.png")
        return gt.shape

    with ThreadPoolExecutor(workers) as pool:
        shapes = np.array(list(pool.map(write, range(n))))
    print(f"generated {n:,} ground truths and predictions ({n_colour:,} also as colour PNGs) from {len(bases)} SynthLIP "
          f"people in {time.perf_counter() - t0:.1f} s; median size {int(np.median(shapes[:, 1]))}x"
          f"{int(np.median(shapes[:, 0]))} (WxH), sides {shapes.min()}-{shapes.max()} px\n")
    return root, pred, colour


def time_case(pred: Path, root: Path, repeat: int, **options) -> tuple[float, dict]:
    score_folder(pred, root, "val", progress=False, **options)  # warm-up: page cache, thread pool, imports
    times, report = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = score_folder(pred, root, "val", progress=False, **options)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), report.scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="pairs to score (LIP val has 10,000)")
    parser.add_argument("--base", type=int, default=300, help="distinct SynthLIP people the ground truths come from")
    parser.add_argument("--n-colour", type=int, default=2000, help="predictions also written as colour PNGs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        root, pred, colour = generate(Path(tmp), args.n, args.base, args.n_colour, workers=cores)
        cases = [("id PNGs (palette, as predict writes), default threads", pred, args.n, {}),
                 ("id PNGs (palette, as predict writes), a decoding thread per core", pred, args.n, {"workers": cores}),
                 ("colour PNGs (RGB in the LIP palette), default threads", colour, args.n_colour,
                  {"max_images": args.n_colour})]
        rows = []
        for name, folder, n, options in cases:
            seconds, scores = time_case(folder, root, args.repeat, **options)
            rows.append((name, n, seconds, scores))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} usable cores, python "
          f"{platform.python_version()}; lipkit.score.score_folder, median of {args.repeat} runs after a warm-up; "
          f"default threads: {default_workers()} PNG-decoding thread(s) beside the scoring thread\n")
    print("| case | images | median s | images/s | projected 10,000 images, s | mIoU % (check) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, seconds, scores in rows:
        print(f"| {name} | {n:,} | {seconds:.2f} | {n / seconds:.0f} | {10000 * seconds / n:.1f} | "
              f"{100 * scores['mean_iou']:.2f} |")


if __name__ == "__main__":
    main()
