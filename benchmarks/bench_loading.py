"""Data loading: LIP-format decode + training transforms, images per second per worker.

One worker is one process with one torch thread, which is what a DataLoader worker is. The cases:

- decode: ``LIPDataset[i]`` (JPEG photo + 8-bit id PNG, size check);
- transforms only: ``train_transform`` (random scale 0.6-1.4, crop with padding, flip with id swap,
  normalise, tensors) on samples decoded beforehand;
- decode + transforms at 321 px (the paper's crop) and at 128 px (the cpu profile's crop);
- the training input path itself (``lipkit.training.TrainItems`` + ``EpochBatchSampler`` + DataLoader
  collate, batch 10, 321 px) with 0 and 2 worker processes: img/s in total and per worker.

Without ``--root`` it writes SynthLIP (LIP-sized images, 100-500 px a side) to a temporary folder
first (not timed). One warm-up pass (file cache warm), then ``--repeat`` timed passes over all
images; medians are reported.

    .venv/bin/python benchmarks/bench_loading.py
    .venv/bin/python benchmarks/bench_loading.py --root /data/LIP --n 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipkit.data import LIPDataset  # noqa: E402
from lipkit.data.transforms import train_transform  # noqa: E402
from lipkit.labels import LIP  # noqa: E402
from _common import median_seconds, synthlip_in  # noqa: E402


median_s = median_seconds


def loader_rate(dataset: LIPDataset, crop: int, workers: int, batch: int, repeats: int) -> float:
    """img/s of the training input path (TrainItems + EpochBatchSampler + DataLoader)."""
    from lipkit.training import EpochBatchSampler, TrainItems

    items = TrainItems(dataset, train_transform(LIP, crop_size=crop), seed=0)
    epoch = [0]

    def run() -> None:
        sampler = EpochBatchSampler(len(dataset), batch, seed=0, epoch=epoch[0])
        epoch[0] += 1
        loader = torch.utils.data.DataLoader(items, batch_sampler=sampler, num_workers=workers,
                                             persistent_workers=False)
        for b in loader:
            assert b["image"].shape == (batch, 3, crop, crop)

    n = (len(dataset) // batch) * batch
    return n / median_s(run, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="LIP root; default: SynthLIP in a temp dir")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=200, help="images per pass (generated, or the first N of --root)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts for the training input path")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = synthlip_in(tmp, args.n)
        dataset = LIPDataset(root, args.split)
        n = min(args.n, len(dataset))
        if n < len(dataset):
            dataset.ids = dataset.ids[:n]
        decoded = [dataset[i] for i in range(n)]
        sizes = np.array([d["image"].shape[:2] for d in decoded])
        rows: list[tuple[str, int, float]] = []

        def decode() -> None:
            for i in range(n):
                dataset[i]

        rows.append(("decode (JPEG + id PNG)", 1, n / median_s(decode, args.repeat)))
        for crop in (321, 128):
            tf = train_transform(LIP, crop_size=crop, seed=0)

            def transforms_only() -> None:
                for d in decoded:
                    tf(d)

            def both() -> None:
                for i in range(n):
                    tf(dataset[i])

            rows.append((f"train transforms only, {crop} px", 1, n / median_s(transforms_only, args.repeat)))
            rows.append((f"decode + train transforms, {crop} px", 1, n / median_s(both, args.repeat)))
        for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            rate = loader_rate(dataset, 321, workers, 10, args.repeat)
            rows.append((f"training input path (TrainItems + DataLoader, batch 10, 321 px), {workers} workers",
                         max(1, workers), rate))

    print(f"data: {'SynthLIP' if args.root is None else args.root}, {n} images, median size "
          f"{int(np.median(sizes[:, 0]))}x{int(np.median(sizes[:, 1]))} (h x w); 1 torch thread per process; "
          f"{os.cpu_count()} CPUs; medians of {args.repeat} passes\n")
    print("| case | processes | images/s | images/s per worker | ms / image per worker |")
    print("|---|---:|---:|---:|---:|")
    for name, procs, rate in rows:
        print(f"| {name} | {procs} | {rate:.0f} | {rate / procs:.0f} | {1e3 * procs / rate:.2f} |")
    print("\n(0 workers = the main process loads; with 2 workers on a 2-core machine shared with the main "
          "process, per-worker figures are a lower bound.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
