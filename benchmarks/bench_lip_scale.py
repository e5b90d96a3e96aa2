"""The parts of the paper path that are cheap on a CPU, at LIP's full scale (issue "The paper path, rehearsed").

On a LIP root (real LIP, or ``python -m lipkit synth ROOT --train 30462 --val 10000 --test 10000
--layout official``): ``check-data`` on all three splits, ``stats`` over the whole train split, one
epoch of the training data loader (decode + the paper's transforms at 321, batch 10, the paper
config's worker count), each with its wall time, rate and the peak resident memory of the process
(and of its largest worker). Prints a markdown table for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_lip_scale.py data/synthlip-lip-scale
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lipkit.data import LIPDataset  # noqa: E402
from lipkit.data.transforms import train_transform  # noqa: E402
from lipkit.data.validate import validate_split  # noqa: E402
from lipkit.labels import LIP  # noqa: E402
from lipkit.recipe import profile_recipe  # noqa: E402
from lipkit.stats import compute_stats  # noqa: E402
from lipkit.training import EpochBatchSampler, TrainItems  # noqa: E402


def peak_mb() -> tuple[float, float]:
    """(this process, its largest finished child) peak resident memory so far, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def loader_epoch(root: Path, workers: int, crop: int, batch: int, limit: int | None) -> tuple[int, float]:
    """Images through one epoch of fit's training input path (TrainItems + EpochBatchSampler + DataLoader)."""
    dataset = LIPDataset(root, "train")
    items = TrainItems(dataset, train_transform(LIP, crop_size=crop, scale_range=(0.6, 1.4)), seed=0)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    sampler = EpochBatchSampler(n, batch, seed=0, epoch=0)
    loader = torch.utils.data.DataLoader(items, batch_sampler=sampler, num_workers=workers, persistent_workers=False)
    t0, seen = time.perf_counter(), 0
    for b in loader:
        seen += b["image"].shape[0]
    return seen, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a LIP root at full scale (flat or official layout)")
    parser.add_argument("--loader-images", type=int, default=None, help="cap the loader epoch (default: the whole split)")
    args = parser.parse_args()
    paper = profile_recipe("paper")
    rows = []
    for split in ("train", "val", "test"):
        report, s = timed(lambda: validate_split(args.root, split, None, progress=False))
        rows.append((f"check-data {split} ({report.layout} layout)", report.n_items, s,
                     f"{len(report.problems)} problems", *peak_mb()))
    stats, s = timed(lambda: compute_stats(args.root, "train", progress=False, num_workers=2))
    rows.append(("stats, whole train split (2 label threads)", stats.num_images, s, "", *peak_mb()))
    seen, s = loader_epoch(args.root, paper.workers, paper.crop_size, paper.batch_size, args.loader_images)
    rows.append((f"train loader epoch @ {paper.crop_size}, batch {paper.batch_size}, {paper.workers} workers", seen, s,
                 "", *peak_mb()))
    print(f"root: {args.root}; torch threads {torch.get_num_threads()}\n")
    print("| step | images | seconds | images/s | notes | peak RSS MB (process / largest worker) |")
    print("|---|---:|---:|---:|---|---|")
    for name, n, s, note, own, child in rows:
        print(f"| {name} | {n:,} | {s:.1f} | {n / s:,.0f} | {note} | {own:,.0f} / {child:,.0f} |")


if __name__ == "__main__":
    main()
