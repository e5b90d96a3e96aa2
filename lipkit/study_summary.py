"""The SSL study's summary: every arm against its control, paired by seed, with intervals.

Reads what ``lipkit.study`` shipped (``results/ssl_study/<arm>_s<seed>/scores.json`` and
``images.npz``), pairs each arm's run with the control of the same network and seed (same base
weights, same batches), and reports per metric the paired difference over seeds: mean, a t interval
at the Holm-corrected level across the arms of that network, the smallest effect the design could
detect at 80 % power, and a bootstrap interval over the val images (seeds held fixed). Everything
is recomputed from the per-run files, so a test can check the table against them.

A study on PASCAL-Person-Part's labels (``results/ssl_study_pascal``) reads the same way: each metric takes
the label set from the size of the run's confusion matrix, and the left/right metrics, which PASCAL's
labels do not have, are NaN there and their rows say "not applicable".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lipkit.labels import LIP, PASCAL_PERSON_PART, LabelSet
from lipkit.metrics import left_right_confusion, left_right_coverage, mean_left_right_confusion
from lipkit.study import ARMS, control_of, run_name, study_dir
from lipkit.study_stats import (holm_intervals, miou_of, paired_t_interval, pooled_paired_bootstrap, smallest_detectable,
                                verdict)


STUDY_LABEL_SETS: dict[int, LabelSet] = {ls.num_classes: ls for ls in (LIP, PASCAL_PERSON_PART)}  # by class count
NOT_APPLICABLE = "not applicable: no finite value (e.g. left/right metrics on a label set without left/right)"
LOWER_IS_BETTER = {"mIoU": False, "L/R confusion": True, "L/R coverage": False, "joint error": True}


def label_set_of_matrix(matrix: np.ndarray) -> LabelSet:
    """The study's label set with as many classes as ``matrix`` (LIP's 20 or PASCAL-Person-Part's 7)."""
    k = len(matrix)
    if k not in STUDY_LABEL_SETS:
        raise ValueError(f"a {k} x {k} confusion matrix: the study's label sets have "
                         f"{', '.join(f'{n} ({ls.name})' for n, ls in STUDY_LABEL_SETS.items())} classes")
    return STUDY_LABEL_SETS[k]


def lr_confusion_of(matrix: np.ndarray) -> float:
    """Mean left/right confusion of a confusion matrix, in points (the study's second headline metric; NaN without
    left/right classes)."""
    m = np.asarray(matrix)
    return 100 * mean_left_right_confusion(left_right_confusion(m, label_set_of_matrix(m)))


def lr_coverage_of(scores: dict) -> float:
    """L/R coverage of one run's scores, in points (NaN without left/right classes)."""
    m = np.asarray(scores["confusion_matrix"])
    return 100 * left_right_coverage(m, label_set_of_matrix(m))


# metric -> (value of one run's scores.json, metric of a summed confusion matrix for the bootstrap, or None)
METRICS: dict[str, tuple[Callable[[dict], float], Callable[[np.ndarray], float] | None]] = {
    "mIoU": (lambda s: 100 * s["mean_iou"], miou_of),
    "L/R confusion": (lambda s: 100 * mean_left_right_confusion(s["left_right_confusion"]), lr_confusion_of),
    "L/R coverage": (lr_coverage_of, None),
    "joint error": (lambda s: float(s["joint_error"]), None),
}


def load_runs(root: Path | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """``(arm, seed) -> scores.json`` of every finished run under ``root`` (default the shipped study): each folder
    ``<arm>_s<seed>`` of an arm of :data:`ARMS`, in that order, seeds ascending (as many as were run: a study's
    seeds may follow its own plan)."""
    root = root or study_dir()
    runs = {}
    for arm in ARMS:
        found = {}
        for path in root.glob(f"{arm}_s*/scores.json"):
            seed = path.parent.name[len(arm) + 2:]
            if seed.isdigit() and path.parent.name == run_name(arm, int(seed)):
                found[int(seed)] = path
        for seed in sorted(found):
            runs[(arm, seed)] = json.loads(found[seed].read_text())
    return runs


def paired_differences(runs: dict[tuple[str, int], dict], metric: str, view: str | None = None) -> dict[str, list]:
    """arm -> [(seed, arm minus control)] over the seeds where both finished; ``view`` scores one view only."""
    value = METRICS[metric][0]
    out: dict[str, list] = {}
    for (arm, seed), scores in sorted(runs.items()):
        control = runs.get((control_of(arm), seed))
        if arm == control_of(arm) or control is None:
            continue
        a, c = (scores, control) if view is None else (scores["by_view"][view], control["by_view"][view])
        out.setdefault(arm, []).append((seed, value(a) - value(c)))
    return out


def _images(root: Path, arm: str, seed: int) -> np.ndarray:
    with np.load(root / run_name(arm, seed) / "images.npz") as data:
        return data["confusions"].astype(np.int64)


def summary_table(metric: str = "mIoU", root: Path | None = None, bootstrap: int = 1000,
                  alpha: float = 0.05) -> pd.DataFrame:
    """One row per arm: seeds, mean paired difference, Holm-level t interval, smallest detectable, bootstrap, verdict.

    Holm runs across the arms of one network (those with at least 2 seeds); an arm with one seed
    gets its difference and no interval; one whose differences are not finite (a left/right metric on
    PASCAL's labels) gets NaN and the verdict :data:`NOT_APPLICABLE`.
    """
    root = root or study_dir()
    diffs = paired_differences(load_runs(root), metric)
    rows = []
    for arch in dict.fromkeys(ARMS[a].arch for a in diffs):
        arms = {a: [d for _, d in v] for a, v in diffs.items() if ARMS[a].arch == arch and len(v) >= 2 and _finite(v)}
        held = holm_intervals(arms, alpha) if arms else {}
        for arm, pairs in ((a, v) for a, v in diffs.items() if ARMS[a].arch == arch):
            rows.append(_row(root, metric, arm, pairs, held.get(arm), bootstrap))
    return pd.DataFrame(rows).set_index("arm") if rows else pd.DataFrame()


def _finite(pairs: list) -> bool:
    return bool(np.isfinite([d for _, d in pairs]).all())


def _row(root: Path, metric: str, arm: str, pairs: list, held: Any, bootstrap: int) -> dict[str, Any]:
    values = [d for _, d in pairs]
    row: dict[str, Any] = {"arm": arm, "seeds": len(values), "mean diff": float(np.mean(values))}
    if not _finite(pairs):
        row.update({"level": math.nan, "lower": math.nan, "upper": math.nan, "p (Holm)": math.nan,
                    "detectable": math.nan, "verdict": NOT_APPLICABLE})
        return row
    if held is None:
        row.update({"level": math.nan, "lower": math.nan, "upper": math.nan, "p (Holm)": math.nan,
                    "detectable": math.nan, "verdict": f"{row['mean diff']:+.2f} points on one seed: no interval"})
        return row
    iv = held.interval
    detect = smallest_detectable(iv.sd, iv.n, alpha=1 - iv.level) if iv.n >= 2 else math.nan
    row.update({"level": iv.level, "lower": iv.lower, "upper": iv.upper, "p (Holm)": held.holm.adjusted,
                "detectable": detect, "verdict": verdict(iv, detect)})
    metric_of = METRICS[metric][1]
    if metric_of is not None and bootstrap:
        control = control_of(arm)
        boot = pooled_paired_bootstrap([(_images(root, arm, s), _images(root, control, s)) for s, _ in pairs],
                                       metric_of, repeats=bootstrap, level=iv.level)
        row.update({"images lower": boot.lower, "images upper": boot.upper})
    return row


def view_table(runs: dict[tuple[str, int], dict], metric: str, arms: list[str] | None = None,
               level: float = 0.95) -> pd.DataFrame:
    """Per arm and view (front / back / profile): the paired difference over seeds with its t interval.

    Secondary analysis: the intervals are at ``level`` each, not corrected across views or arms.
    """
    views = sorted({v for s in runs.values() for v in s.get("by_view", {})})
    rows = []
    for view in views:
        for arm, pairs in paired_differences(runs, metric, view).items():
            if arms is not None and arm not in arms or len(pairs) < 2 or not _finite(pairs):
                continue
            iv = paired_t_interval([d for _, d in pairs], level)
            rows.append({"arm": arm, "view": view, "seeds": iv.n, "images": runs[(arm, pairs[0][0])]["by_view"][view]["num_images"],
                         "mean diff": iv.mean, "lower": iv.lower, "upper": iv.upper})
    return pd.DataFrame(rows)


def class_differences(runs: dict[tuple[str, int], dict], arm: str, level: float = 0.95) -> pd.DataFrame:
    """Per class (of the runs' label set): mean IoU of the control and of ``arm`` over the paired seeds, and the paired
    difference's t interval (points; each class at ``level``, not corrected across the classes)."""
    control = control_of(arm)
    seeds = [s for (a, s) in sorted(runs) if a == arm and (control, s) in runs]
    if len(seeds) < 2:
        raise ValueError(f"{arm}: needs at least 2 seeds paired with {control}, found {len(seeds)}")
    rows = []
    for name in runs[(control, seeds[0])]["iou"]:  # the label set's classes, in order
        a, c = (np.array([np.nan if runs[(r, s)]["iou"][name] is None else 100 * runs[(r, s)]["iou"][name]
                          for s in seeds], dtype=float) for r in (arm, control))
        if np.isnan(a).any() or np.isnan(c).any():  # absent from the val images' ground truth and predictions
            rows.append({"class": name, control: np.nan, arm: np.nan, "mean diff": np.nan, "lower": np.nan, "upper": np.nan})
            continue
        iv = paired_t_interval(list(a - c), level)
        rows.append({"class": name, control: c.mean(), arm: a.mean(), "mean diff": iv.mean,
                     "lower": iv.lower, "upper": iv.upper})
    return pd.DataFrame(rows).set_index("class")


def describe(row: pd.Series, metric: str, digits: int = 2) -> str:
    """One row of :func:`summary_table` in words: ``metric``'s mean arm - control, its t interval at its (Holm) level
    and seeds, and the verdict: higher / lower and better / worse for the metric, or no difference with the smallest
    detectable one. The one phrasing of an arm's effect in the README's findings and notebook 04's RQ4."""
    seeds, mean, f = int(row["seeds"]), row["mean diff"], f"+.{digits}f"
    if math.isnan(row["lower"]):
        return f"{metric} {mean:{f}} on {seeds} seed(s), no interval"
    text = (f"{metric} {mean:{f}} (t interval {row['lower']:{f}} to {row['upper']:{f}} at the Holm level "
            f"{100 * row['level']:.1f} %, {seeds} seeds)")
    if row["lower"] <= 0 <= row["upper"]:
        return f"{text}: no difference detected (smallest detectable {row['detectable']:.{digits}f})"
    higher = row["lower"] > 0
    better = higher != LOWER_IS_BETTER[metric]
    return f"{text}: {'higher' if higher else 'lower'}, {'better' if better else 'worse'}, detected"


__all__ = ["LOWER_IS_BETTER", "METRICS", "NOT_APPLICABLE", "STUDY_LABEL_SETS", "class_differences", "describe", "label_set_of_matrix", "load_runs",
           "lr_confusion_of", "lr_coverage_of", "paired_differences", "summary_table", "view_table"]
