"""The SSL study's plan, fixed before its results: does the control still move, and how many seeds.

The pilot is the study's first runs (control and paper, the first seeds): from them
:func:`power_plan` computes (1) how far the control moves over the branch, against the base scored by
the same protocol (the issue's rule: at least 2 mIoU points, or no loss can act), and (2) from the
seed-to-seed spread of the paired differences, the seeds that detect a 0.5-point difference in mIoU
and in left/right confusion at alpha 0.05 with power 0.8 (and at Holm's worst case, alpha / m).
``python -m lipkit study --plan`` writes it to ``results/ssl_study/plan.json`` once, before the
other arms run; the notebooks show it beside the results it was made for. On PASCAL-Person-Part's labels
(``--profile synthlip-pascal``, ``results/ssl_study_pascal/plan.json``) L/R confusion does not exist: the plan
is made on mIoU alone and says so, with Holm's worst case over that study's arms (:func:`lipkit.study.study_arms`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from lipkit import paths
from lipkit.recipe import Recipe
from lipkit.study import ARMS, arm_config, base_weights, control_of, score_run, study_arms, study_dir
from lipkit.study_stats import seeds_needed, smallest_detectable
from lipkit.study_summary import load_runs, paired_differences
from lipkit.training import atomic_write_text

PLAN_FILE = "plan.json"
MIN_CONTROL_MOVE = 2.0  # mIoU points the control must gain over the branch (the rule)
MIN_SEEDS = 5  # the rules' floor for arms 1-4, whatever the pilot says
TARGET_DELTA = 0.5  # points: the difference the design must detect (mIoU and L/R confusion)


def base_scores_path(arch: str, root: Path) -> Path:
    """Where the study under ``root`` keeps its ``arch`` base's scores by the study's protocol."""
    return root / f"base_{arch}" / "study_scores.json"


def base_scores(arch: str = "deeplabv2", recipe: Recipe | None = None) -> dict[str, Any]:
    """The base weights of ``arch`` scored by the study's protocol (all val images, sigma 1): ``study --base``
    writes them beside the base's log; computed here when a base was shipped before that."""
    path = base_scores_path(arch, study_dir(recipe))
    if not path.is_file():
        control = next(a for a, spec in ARMS.items() if spec.arch == arch and control_of(a) == a)
        root = paths.resolve(arm_config(control, 0, recipe=recipe).data.root)
        scores, _ = score_run(base_weights(arch, recipe), root)
        atomic_write_text(path, json.dumps(scores, indent=1) + "\n")
    return json.loads(path.read_text())


def control_move(runs: dict[tuple[str, int], dict], base: dict[str, Any], arm: str = "control") -> list[float]:
    """mIoU points each seed's ``arm`` run gained over the base it branched from."""
    return [100 * (s["mean_iou"] - base["mean_iou"]) for (a, _), s in sorted(runs.items()) if a == arm]


def power_plan(runs: dict[tuple[str, int], dict], base: dict[str, Any], arm: str = "paper",
               delta: float = TARGET_DELTA, alpha: float = 0.05, power: float = 0.8,
               arms: Sequence[str] | None = None) -> dict[str, Any]:
    """The plan from the pilot runs in ``runs``: control movement, spread of ``arm`` - control, seeds needed.

    Holm's worst case counts the study's ``arms`` (default all of :data:`ARMS`) of ``arm``'s network with 2+ seeds;
    a metric without finite pilot differences (L/R confusion on PASCAL's labels) is listed as not applicable."""
    control = control_of(arm)
    moves = control_move(runs, base, control)
    holm_m = sum(1 for a in (arms or ARMS) if ARMS[a].arch == ARMS[arm].arch and a != control and ARMS[a].seeds >= 2)
    plan: dict[str, Any] = {
        "pilot_runs": sorted(f"{a}_s{s}" for a, s in runs), "pilot_arm": arm, "delta_points": delta,
        "alpha": alpha, "power": power, "holm_arms": holm_m,
        "base_miou": 100 * base["mean_iou"], "control_move_points": moves,
        "control_moves_enough": bool(moves) and min(moves) >= MIN_CONTROL_MOVE, "metrics": {}}
    needs = []
    for metric in ("mIoU", "L/R confusion"):
        diffs = [d for _, d in paired_differences(runs, metric).get(arm, [])]
        if len(diffs) < 2:
            raise ValueError(f"the pilot needs {arm} and control on at least 2 seeds, found {len(diffs)} pairs")
        if not np.isfinite(diffs).all():  # e.g. no left/right classes: nothing to plan on
            plan.setdefault("not_applicable", []).append(metric)
            continue
        sd = float(np.std(diffs, ddof=1))
        at_alpha = seeds_needed(sd, delta, alpha, power, minimum=2) if sd > 0 else 2
        at_holm = seeds_needed(sd, delta, alpha / holm_m, power, minimum=2) if sd > 0 else 2
        plan["metrics"][metric] = {"pilot_differences": diffs, "sd": sd, "seeds_needed": at_alpha,
                                   "seeds_needed_holm_worst_case": at_holm,
                                   "detectable_with_min_seeds": smallest_detectable(sd, MIN_SEEDS, alpha, power)}
        needs.append(at_alpha)
    plan["seeds_planned"] = max([MIN_SEEDS, *needs])
    return plan


def write_plan(arm: str = "paper", root: Path | None = None, recipe: Recipe | None = None) -> dict[str, Any]:
    """Compute the plan from what is in the study folder and write ``plan.json``; an existing plan is kept."""
    root = root or study_dir(recipe)
    path = root / PLAN_FILE
    if path.is_file():
        raise FileExistsError(f"{path} exists: a plan is written once, before the results (delete it to redo)")
    runs = {k: v for k, v in load_runs(root).items() if k[0] in (control_of(arm), arm)}
    base = base_scores(ARMS[arm].arch, recipe)
    plan = power_plan(runs, base, arm, arms=study_arms(recipe))
    plan["earlier_pilots"] = earlier_pilots(root, base)
    plan["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(path, json.dumps(plan, indent=1) + "\n")
    return plan


def earlier_pilots(root: Path, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Pilots of designs that were set aside (``<root>/pilot_<design>/<run>/scores.json``): each control's gain."""
    out = []
    for scores in sorted(root.glob("pilot_*/*/scores.json")):
        gain = 100 * (json.loads(scores.read_text())["mean_iou"] - base["mean_iou"])
        out.append({"design": scores.parent.parent.name.removeprefix("pilot_"), "run": scores.parent.name,
                    "control_move_points": gain})
    return out


def read_plan(root: Path | None = None) -> dict[str, Any] | None:
    """The shipped plan, or None before the pilot."""
    path = (root or study_dir()) / PLAN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def plan_sentences(plan: dict[str, Any]) -> list[str]:
    """The plan in words, for the notebooks and the README."""
    moves = plan["control_move_points"]
    lines = [f"Set aside before this plan: the {p['design'].replace('_', ' ')} design, whose {p['run']} gained "
             f"{p['control_move_points']:+.2f} mIoU points over the branch (the rule: at least {MIN_CONTROL_MOVE:g})."
             for p in plan.get("earlier_pilots", [])]
    lines += [f"Pilot: {', '.join(plan['pilot_runs'])}. The control gained {min(moves):+.2f} to {max(moves):+.2f} mIoU "
             f"points over the branch (base {plan['base_miou']:.2f}%); the rule asks at least {MIN_CONTROL_MOVE:g}: "
             f"{'met' if plan['control_moves_enough'] else 'NOT met'}."]
    for metric, m in plan["metrics"].items():
        lines.append(f"{metric}: pilot sd of {plan['pilot_arm']} - control {m['sd']:.3f} points over "
                     f"{len(m['pilot_differences'])} seeds; {m['seeds_needed']} seeds detect {plan['delta_points']:g} "
                     f"points at alpha {plan['alpha']:g}, power {plan['power']:g} "
                     f"({m['seeds_needed_holm_worst_case']} at Holm's worst case, alpha/{plan['holm_arms']}).")
    lines += [f"{metric}: not applicable (no finite pilot differences: the label set has no left/right classes)."
              for metric in plan.get("not_applicable", [])]
    lines.append(f"Planned: {plan['seeds_planned']} seeds for arms 1-4 (at least {MIN_SEEDS}).")
    return lines


__all__ = ["base_scores_path", "MIN_CONTROL_MOVE", "MIN_SEEDS", "PLAN_FILE", "TARGET_DELTA", "base_scores", "control_move", "earlier_pilots", "plan_sentences",
           "power_plan", "read_plan", "write_plan"]
