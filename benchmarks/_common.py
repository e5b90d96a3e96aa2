"""Helpers the benchmark scripts share (each script runs as `python benchmarks/<name>.py`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def synthlip_in(tmp: str | Path, n_train: int) -> Path:
    """Generate a SynthLIP train split of ``n_train`` images under ``tmp`` and say how long it took."""
    from lipkit.data.synth import make_synthlip

    root = Path(tmp) / "synthlip"
    t0 = time.perf_counter()
    make_synthlip(root, n_train=n_train, n_val=0, seed=0, progress=False)
    print(f"generated SynthLIP ({n_train} train images) in {time.perf_counter() - t0:.1f} s\n")
    return root
