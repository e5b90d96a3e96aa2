"""The SSL study in tables and sentences: what notebooks 03-05 and the README show of ``results/ssl_study``.

:mod:`lipkit.study_summary` computes the paired statistics; this module lays out the design, checks
the study's own controls (the control moves, the released layer trains like cross-entropy, the
positive control is seen), compares a notebook's reduced re-run with the shipped logs, and writes
the conclusion sentences from the numbers, each with its seeds, images and steps. The PASCAL study
(``results/ssl_study_pascal``) reads the same way: pass its root, its arms (``study.study_arms(recipe)``) and,
for a re-run, its recipe.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lipkit.paper_results import PAPER_SSL_MIOU
from lipkit.recipe import Recipe
from lipkit.study import (ARMS, BASE_STEPS, BRANCH_SCHEDULE, BRANCH_STEPS, LEARNING_RATE, control_of, run_name, run_one,
                          study_dir)
from lipkit.study_summary import describe, paired_differences

POSITIVE_CONTROL = "flip_no_swap"


def design_table(arms: list[str] | None = None) -> pd.DataFrame:
    """One row per arm (default all): network, what it changes against its control, planned seeds, the question it answers."""
    rows = []
    for arm, spec in ((a, ARMS[a]) for a in (arms or ARMS)):
        change = ", ".join(f"ssl.{k}={v}" for k, v in spec.ssl.items()) + "".join(f", data.{k}={v}" for k, v in spec.data.items())
        rows.append({"arm": arm, "network": spec.arch, "setting": change, "seeds planned": spec.seeds,
                     "question": spec.question})
    return pd.DataFrame(rows).set_index("arm")


def design_sentence() -> str:
    return (f"Base stage: {BASE_STEPS:,} steps from scratch, AdamW at a constant {LEARNING_RATE:g}; every arm then trains "
            f"{BRANCH_STEPS:,} more steps from the same base weights, from that rate decaying to 0 ({BRANCH_SCHEDULE}), "
            "with the same batches per seed.")


def progress_table(runs: dict[tuple[str, int], dict], arms: list[str] | None = None) -> pd.DataFrame:
    """Per arm (default all): seeds finished of those planned (the study spans sessions: what the tables below rest on)."""
    return pd.DataFrame([{"arm": a, "finished": sum(1 for (r, _) in runs if r == a), "planned": ARMS[a].seeds}
                         for a in (arms or ARMS)]).set_index("arm")


def control_moves(runs: dict[tuple[str, int], dict], base: dict[str, Any]) -> pd.DataFrame:
    """Per control seed: base mIoU, control mIoU after the branch, and the gain (points)."""
    rows = [{"seed": s, "base mIoU": 100 * base["mean_iou"], "control mIoU": 100 * sc["mean_iou"],
             "gain": 100 * (sc["mean_iou"] - base["mean_iou"])} for (a, s), sc in sorted(runs.items()) if a == "control"]
    return pd.DataFrame(rows).set_index("seed") if rows else pd.DataFrame()


def _log(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]


def released_check(root: Path | None = None, seed: int = 0) -> str:
    """Whether the released arm trained bit for bit like the control (its gradient is cross-entropy's)."""
    root = root or study_dir()
    a, c = root / run_name("released", seed), root / run_name("control", seed)
    if not (a / "scores.json").is_file() or not (c / "scores.json").is_file():
        return f"released vs control, seed {seed}: not run yet"
    ce = [(x["step"], x["ce"]) for x in _log(a) if x["kind"] == "train"]
    ce_control = [(x["step"], x["ce"]) for x in _log(c) if x["kind"] == "train"]
    same_scores = json.loads((a / "scores.json").read_text())["confusion_matrix"] == \
        json.loads((c / "scores.json").read_text())["confusion_matrix"]
    verdict = "identical" if ce == ce_control and same_scores else "DIFFERENT"
    return (f"released vs control, seed {seed}: {len(ce)} logged cross-entropies and the val confusion matrix are "
            f"{verdict}{'' if verdict == 'identical' else ' (the released layer should train exactly like cross-entropy)'}")


def rerun(arms: tuple[str, ...], seeds: int, steps: int, dest_root: Path, data_root: Path | None = None,
          recipe: Recipe | None = None) -> list[Path]:
    """A reduced study: ``arms`` x seeds 0..``seeds``-1, the first ``steps`` steps of the shipped runs (of ``recipe``'s
    study, default the SynthLIP one), on the same (annealing) schedule, stopped there, so their logged losses are
    the shipped ones (resumable; a run already scored at ``steps`` is kept)."""
    done = []
    for seed in range(seeds):
        for arm in arms:
            scores = Path(dest_root) / run_name(arm, seed) / "scores.json"
            if not (scores.is_file() and json.loads(scores.read_text()).get("step") == steps):
                run_one(arm, seed, dest_root=dest_root, data_root=data_root, recipe=recipe, stop_after=steps)
            done.append(scores.parent)
    return done


def log_agreement(rerun_root: Path, root: Path | None = None) -> pd.DataFrame:
    """Per re-run: the largest relative difference of its logged losses from the shipped run's at the same steps."""
    root = root or study_dir()
    rows = []
    for folder in sorted(p for p in Path(rerun_root).iterdir() if (p / "scores.json").is_file()):
        shipped = root / folder.name
        if not (shipped / "metrics.jsonl").is_file():
            continue
        mine = {x["step"]: x for x in _log(folder) if x["kind"] == "train"}
        theirs = {x["step"]: x for x in _log(shipped) if x["kind"] == "train"}
        steps = sorted(set(mine) & set(theirs))
        worst = max((abs(mine[s][k] - theirs[s][k]) / max(abs(theirs[s][k]), 1e-12)
                     for s in steps for k in ("loss", "ce")), default=math.nan)
        rows.append({"run": folder.name, "steps compared": len(steps), "max relative difference": worst})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def agreement_sentence(reduced: dict[tuple[str, int], dict], shipped_table: pd.DataFrame, metric: str,
                       steps: int) -> list[str]:
    """Each reduced arm's mean paired difference read against the shipped study's interval of the same arm."""
    lines = []
    for arm, pairs in paired_differences(reduced, metric).items():
        mean = float(np.mean([d for _, d in pairs]))
        if arm not in shipped_table.index or math.isnan(shipped_table.loc[arm, "lower"]):
            lines.append(f"{arm} - control, {metric}: {mean:+.2f} points after {steps} steps on {len(pairs)} seeds; "
                         "the shipped study has no interval for it yet")
            continue
        lo, hi = shipped_table.loc[arm, "lower"], shipped_table.loc[arm, "upper"]
        inside = "inside" if lo <= mean <= hi else "outside"
        lines.append(f"{arm} - control, {metric}: {mean:+.2f} points after {steps} steps on {len(pairs)} seeds, {inside} "
                     f"the shipped study's interval {lo:+.2f} to {hi:+.2f} (after {BRANCH_STEPS} steps, "
                     f"{int(shipped_table.loc[arm, 'seeds'])} seeds)")
    return lines


def conclusion(tables: dict[str, pd.DataFrame], runs: dict[tuple[str, int], dict], num_images: int) -> list[str]:
    """The study's findings, one sentence per arm and metric, from the summary tables (nothing typed by hand)."""
    lines = [f"Evidence: {num_images} val images; {BASE_STEPS:,} base + {BRANCH_STEPS:,} branch steps per run; "
             f"{len(runs)} runs finished."]
    for metric, table in tables.items():
        for arm, row in table.iterrows():
            lines.append(f"{arm} ({control_of(arm)} as reference), {metric}: {row['verdict']}")
    if POSITIVE_CONTROL in tables.get("L/R confusion", pd.DataFrame()).index:
        row = tables["L/R confusion"].loc[POSITIVE_CONTROL]
        seen = not math.isnan(row["lower"]) and row["lower"] > 0
        lines.append(f"Positive control (mirrored images, labels not swapped): {'detected' if seen else 'NOT detected'} "
                     "in L/R confusion; " + ("the design can see a structure effect of this size."
                                             if seen else "a null result for SSL would then say nothing."))
    return lines


def rq4_table(tables: dict[str, pd.DataFrame], arms: tuple[str, ...] = ("paper", "normalized")) -> pd.DataFrame:
    """RQ4 in one table: per label set (key of ``tables``, each a ``summary_table("mIoU")``) and arm, our paired
    mIoU difference with its interval (Holm level), and beside the paper arm the paper's SSL gain for that label set
    and network (NaN: the paper has no such row)."""
    rows = []
    for label_set, table in tables.items():
        for arm in (a for a in table.index if a.removeprefix("attention_") in arms):
            row = table.loc[arm]
            network = ARMS[arm].arch
            paper = PAPER_SSL_MIOU.get((label_set, network)) if arm.removeprefix("attention_") == "paper" else None
            rows.append({"label set": label_set, "network": network, "arm": arm, "seeds": int(row["seeds"]),
                         "mean diff": row["mean diff"], "level": row["level"], "lower": row["lower"], "upper": row["upper"],
                         "detectable": row["detectable"], "paper's gain": paper[1] - paper[0] if paper else math.nan})
    return pd.DataFrame(rows).set_index(["label set", "network", "arm"]) if rows else pd.DataFrame()


def label_set_panels(studies: dict[str, tuple[dict[str, pd.DataFrame], dict[tuple[str, int], dict]]], arms: list[str],
                     metrics: tuple[str, ...] = ("mIoU", "joint error")) -> tuple[dict, dict]:
    """The panels of :func:`lipkit.viz_study.difference_forest` that set label sets side by side: per metric and label
    set (key of ``studies``: its ``summary_table`` per metric and its runs), ``"<metric> (<label set> labels)"`` ->
    that table restricted to ``arms``, and the same keys -> arm -> per-seed paired differences."""
    tables, seeds = {}, {}
    for metric in metrics:
        for name, (summaries, runs) in studies.items():
            key = f"{metric} ({name} labels)"
            tables[key] = summaries[metric].loc[[a for a in summaries[metric].index if a in arms]]
            seeds[key] = {a: [d for _, d in pairs] for a, pairs in paired_differences(runs, metric).items() if a in arms}
    return tables, seeds


def rq4_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per row of :func:`rq4_table`: its mIoU difference (:func:`lipkit.study_summary.describe`) and
    the paper's gain beside it."""
    lines = []
    for (label_set, network, arm), row in table.iterrows():
        gain = row["paper's gain"]
        paper = ("the paper has no such row" if math.isnan(gain)
                 else f"the paper reports {gain:+.2f} on real {label_set} images (unverified)")
        lines.append(f"SynthLIP with {label_set} labels, {network}, {arm} - control: {describe(row, 'mIoU')}; {paper}.")
    return lines


__all__ = ["POSITIVE_CONTROL", "agreement_sentence", "conclusion", "control_moves", "design_sentence", "design_table",
           "label_set_panels", "log_agreement", "progress_table", "released_check", "rerun", "rq4_sentences", "rq4_table"]
