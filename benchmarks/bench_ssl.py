"""Speed of lipkit's SSL joint extraction against a per-image reference loop, and its training overhead.

The reference follows the released layer's structure: for each image, for each joint, find the
region's pixels, take the truncated mean column/row, then draw that joint's Gaussian heatmap (numpy
inside the loops, which is the kindest a per-image loop can be). lipkit does the whole batch with two
bincounts and broadcast 1-D Gaussians; on large grids it writes each map only inside its non-zero
window (19 x 19 cells for sigma 1) and leaves the rest of the calloc'd result untouched. Both run on one thread by default; times are medians, reference and lipkit timed alternately.

Part 2 measures what the structure term costs in a CPU training step of the small model
(deeplabv2 resnet18 width 0.25, output stride 8, batch 8, 128 px): the joint computation alone
(nearest-downsampled target + argmax + joint error) against a full forward+loss+backward step.

    .venv/bin/python benchmarks/bench_ssl.py                 # both parts
    .venv/bin/python benchmarks/bench_ssl.py --skip-model    # joints only
    .venv/bin/python benchmarks/bench_ssl.py --large         # + DeepLabV2-ResNet-101 at 321 (batch 1, one step per mode)
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from _common import median_seconds
from lipkit.ssl import (
    LIP_JOINT_GROUPS,
    StructureSensitiveLoss,
    joint_error,
    joint_heatmaps,
    nearest_downsample,
    parsing_to_joints,
)


def reference_joints_heatmaps(labels: np.ndarray, groups, sigma: float = 1.0) -> np.ndarray:
    """Per-image, per-joint loop in the style of the released layer. labels (N, h, w) -> (N, J, h, w)."""
    n, h, w = labels.shape
    peak = 4.0 / (sigma * math.sqrt(2.0 * math.pi))
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, len(groups), h, w), dtype=np.float32)
    for i in range(n):
        for j, ids in enumerate(groups):
            ys, xs = np.nonzero(np.isin(labels[i], ids))
            if len(xs) == 0:
                continue  # absent: joint (0, 0), zero heatmap
            cx, cy = int(xs.sum() / len(xs)), int(ys.sum() / len(ys))
            out[i, j] = peak * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2.0 * sigma * sigma))
    return out


def reference_joint_error(pred: np.ndarray, gt: np.ndarray, groups, sigma: float = 1.0) -> np.ndarray:
    hp = reference_joints_heatmaps(pred, groups, sigma)
    hg = reference_joints_heatmaps(gt, groups, sigma)
    return 0.05 * 0.5 * ((hp - hg) ** 2).sum(axis=(1, 2, 3))


def naive_joints_only(label: np.ndarray, groups) -> list[tuple[int, int]]:
    """The joint part of the reference, for one image."""
    out = []
    for ids in groups:
        ys, xs = np.nonzero(np.isin(label, ids))
        out.append((int(xs.sum() / len(xs)), int(ys.sum() / len(ys))) if len(xs) else (0, 0))
    return out


def lipkit_joints_heatmaps(labels: torch.Tensor, groups, sigma: float = 1.0, out=None) -> torch.Tensor:
    joints, present = parsing_to_joints(labels, groups)
    return joint_heatmaps(joints, present, labels.shape[-2:], sigma, out=out)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    return median_seconds(fn, repeats) * 1e3


def paired_ms(ref: Callable[[], object], ours: Callable[[], object], repeats: int, block: int = 5) -> tuple[float, float]:
    """Medians of ``ref`` and ``ours`` timed in alternating blocks of ``block`` calls.

    Alternating lets load from other processes hit both alike; blocks keep each in its own warm
    state (the first call after the other one, with caches cold, is at most 1 in ``block``).
    """
    ref(), ours()
    t_ref: list[float] = []
    t_ours: list[float] = []
    for _ in range(max(1, repeats // block)):
        for fn, acc in ((ref, t_ref), (ours, t_ours)):
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t0)
    return statistics.median(t_ref) * 1e3, statistics.median(t_ours) * 1e3


def blocky_labels(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Label maps with part-sized regions (random blocks of 1/8 of a side) and a few ignored cells."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 20, (n, 1, 8, 8), generator=gen).float()
    lab = F.interpolate(coarse, size=(h, w), mode="nearest")[:, 0].long()
    lab[torch.rand(lab.shape, generator=gen) < 0.02] = 255
    return lab


def bench_joints(repeats_small: int, repeats_large: int) -> None:
    groups = LIP_JOINT_GROUPS
    rows = []
    for n, size, repeats in ((10, 41, repeats_small), (8, 384, repeats_large)):
        gt = blocky_labels(n, size, size, seed=0)
        pred = blocky_labels(n, size, size, seed=1)
        gt_np, pred_np = gt.numpy(), pred.numpy()
        # Same numbers from both before timing anything.
        np.testing.assert_allclose(lipkit_joints_heatmaps(gt, groups).numpy(), reference_joints_heatmaps(gt_np, groups),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(joint_error(pred, gt, groups).numpy(),
                                   reference_joint_error(pred_np, gt_np, groups), rtol=1e-4)
        cases = (
            ("joints only", lambda: [naive_joints_only(lab, groups) for lab in gt_np],
             lambda: parsing_to_joints(gt, groups)),
            ("joints + heatmaps", lambda: reference_joints_heatmaps(gt_np, groups),
             lambda: lipkit_joints_heatmaps(gt, groups)),
            ("joints + heatmaps into a reused buffer (out=)", lambda: reference_joints_heatmaps(gt_np, groups),
             lambda buf=torch.empty(n, len(groups), size, size): lipkit_joints_heatmaps(gt, groups, out=buf)),
            ("joint error (pred vs gt)", lambda: reference_joint_error(pred_np, gt_np, groups),
             lambda: joint_error(pred, gt, groups)),
        )
        for name, ref_fn, our_fn in cases:
            ref, ours = paired_ms(ref_fn, our_fn, repeats)
            rows.append((f"{name}, batch {n}, {size}x{size}", ref, ours))
    print(f"torch threads: {torch.get_num_threads()}; medians over {repeats_small} (41x41) / {repeats_large} (384x384) repeats\n")
    print("| case | per-image reference loop (ms) | lipkit vectorised (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, ref, ours in rows:
        print(f"| {name} | {ref:.3f} | {ours:.3f} | {ref / ours:.1f}x |")


def bench_overhead(repeats: int, backbone: str = "resnet18", width: float = 0.25, batch: int = 8, size: int = 128,
                   modes: tuple[str, ...] = ("none", "paper", "released", "soft")) -> None:
    try:
        from lipkit.models import build_model
    except ImportError as exc:  # models are optional for this benchmark
        print(f"\n(skipping the training-step overhead: {exc})")
        return
    torch.manual_seed(0)
    model = build_model("deeplabv2", backbone, 20, width=width, output_stride=8).train()
    x = torch.randn(batch, 3, size, size)
    target = blocky_labels(batch, size, size, seed=2)
    with torch.no_grad():
        logits = model(x)["out"].detach()
    grid = tuple(logits.shape[-2:])

    def joints_only() -> None:
        with torch.no_grad():
            joint_error(logits.argmax(1), nearest_downsample(target, grid), LIP_JOINT_GROUPS)

    def step(loss_fn) -> Callable[[], None]:
        def run() -> None:
            out = loss_fn(model(x)["out"], target)
            model.zero_grad(set_to_none=True)
            out.loss.backward()
        return run

    t_joint = median_ms(joints_only, repeats * 10)
    # Modes interleaved step by step, so that load from other processes hits them alike.
    steps = {mode: step(StructureSensitiveLoss(mode, track_joint_error=(mode != "none")))
             for mode in modes}
    samples: dict[str, list[float]] = {mode: [] for mode in steps}
    for fn in steps.values():
        fn()  # warm-up
    for _ in range(repeats):
        for mode, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            samples[mode].append(time.perf_counter() - t0)
    times = {mode: statistics.median(s) * 1e3 for mode, s in samples.items()}
    print(f"\nTraining-step overhead: deeplabv2 {backbone} w{width} os8, batch {batch}, {size}px, logits grid {grid}; "
          f"torch threads {torch.get_num_threads()}; medians over {repeats} steps\n")
    print("| what | ms | share of a 'none' step |")
    print("|---|---:|---:|")
    print(f"| joint computation alone (downsample + argmax + joint error) | {t_joint:.3f} | {100 * t_joint / times['none']:.2f}% |")
    for mode, t in times.items():
        print(f"| full step, mode {mode!r} | {t:.1f} | {100 * t / times['none']:.1f}% |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--repeats-small", type=int, default=50)
    parser.add_argument("--repeats-large", type=int, default=10)
    parser.add_argument("--model-steps", type=int, default=7)
    parser.add_argument("--skip-model", action="store_true", help="skip the training-step overhead part")
    parser.add_argument("--large", action="store_true",
                        help="also DeepLabV2-ResNet-101 at 321 px, batch 1 (one timed step per mode: slow on CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_joints(args.repeats_small, args.repeats_large)
    if not args.skip_model:
        bench_overhead(args.model_steps)
        if args.large:
            bench_overhead(1, backbone="resnet101", width=1.0, batch=1, size=321, modes=("none", "paper"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
