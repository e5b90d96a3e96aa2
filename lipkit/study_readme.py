"""The SSL study in the README: its tables and its findings, one per research question, from the shipped runs.

``python -m lipkit study --readme README.md`` (``make study-readme``) rewrites the README's
``<!-- study:<name> -->`` blocks from ``results/ssl_study`` (and ``results/ssl_study_pascal`` for RQ4
across label sets); ``tests/test_study.py`` recomputes them and fails if the README differs. Every number
and every verdict in the findings is computed here, so the prose cannot drift from the runs; notebook 04
prints the same findings.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from lipkit.paper_results import PAPER_SSL_MIOU
from lipkit.pretrain import OTHER_SEEDS, shipped_dir
from lipkit.recipe import SYNTHLIP_PASCAL
from lipkit.study import BASE_STEPS, BRANCH_STEPS, study_dir
from lipkit.study_plan import MIN_CONTROL_MOVE, base_scores_path, read_plan
from lipkit.study_report import POSITIVE_CONTROL, control_moves, released_check
from lipkit.study_summary import describe, load_runs, summary_table, view_table

README_METRICS = ("mIoU", "L/R confusion", "joint error")  # the study's tables the README shows, between markers


def _interval(lo: float, hi: float, digits: int = 2) -> str:
    return "" if math.isnan(lo) else f"{lo:+.{digits}f} to {hi:+.{digits}f}"


def _short_verdict(row: pd.Series) -> str:
    if not math.isfinite(row["mean diff"]):
        return "not applicable"
    if math.isnan(row["lower"]):
        return "one seed: no interval"
    if row["lower"] > 0 or row["upper"] < 0:
        return f"{'higher' if row['lower'] > 0 else 'lower'}: detected"
    return "none detected"


def markdown_table(table: pd.DataFrame, digits: int = 2) -> str:
    """A ``summary_table`` as the README's markdown: difference, seed interval (Holm level), smallest detectable,
    the bootstrap interval over images, a short verdict (numbers with ``digits`` decimals)."""
    lines = ["| arm - control | seeds | mean | t interval (level) | smallest detectable | images bootstrap 95 % | verdict |",
             "|---|---:|---:|---|---:|---|---|"]
    for arm, row in table.iterrows():
        level = "" if math.isnan(row["level"]) else f" ({100 * row['level']:.2f} %)"
        boot = _interval(row.get("images lower", math.nan), row.get("images upper", math.nan), digits)
        detectable = "" if math.isnan(row["detectable"]) else f"{row['detectable']:.{digits}f}"
        seeds = _interval(row["lower"], row["upper"], digits)
        lines.append(f"| {arm} | {int(row['seeds'])} | {row['mean diff']:+.{digits}f} | {seeds}{level if seeds else ''} "
                     f"| {detectable} | {boot} | {_short_verdict(row)} |")
    return "\n".join(lines)


def detected(table: pd.DataFrame, arm: str) -> int:
    """+1 / -1 if ``arm``'s interval in ``table`` lies above / below 0, 0 if it spans 0, is missing or has none."""
    if arm not in table.index or math.isnan(table.loc[arm, "lower"]):
        return 0
    return 1 if table.loc[arm, "lower"] > 0 else -1 if table.loc[arm, "upper"] < 0 else 0


def effect(table: pd.DataFrame, arm: str, metric: str, digits: int = 2) -> str:
    """``arm`` - control in ``metric`` as a phrase (:func:`lipkit.study_summary.describe`), or "not run yet"."""
    return describe(table.loc[arm], metric, digits) if arm in table.index else f"{metric}: not run yet"


def _control_gain(runs: dict, root: Path) -> str:
    """How far each DeepLabV2 control moved over the branch, against the base by the same protocol, and the rule."""
    path = base_scores_path("deeplabv2", root)  # read only: the README never trains or scores
    if not path.is_file():
        return f"{path} is missing: run `python -m lipkit study --base`."
    moves = control_moves(runs, json.loads(path.read_text()))
    if moves.empty:
        return "No control run has finished yet."
    gains = moves["gain"]
    holds = gains.min() >= MIN_CONTROL_MOVE
    return (f"Each DeepLabV2 control gains {gains.min():+.2f} to {gains.max():+.2f} mIoU points over "
            f"the base ({moves['base mIoU'].iloc[0]:.2f} %) in its {BRANCH_STEPS:,} branch steps ({len(gains)} seeds); "
            f"the design asks for {MIN_CONTROL_MOVE:g}: " + ("a loss has room to act." if holds
                                                             else "the rule FAILS, a loss may have no room to act."))


def _regime(runs: dict, root: Path) -> str:
    return f"**The regime.** {_control_gain(runs, root)}"


def _mechanism(miou: pd.DataFrame) -> str:
    """Which half of the paper arm's change carries its mIoU difference: the re-weighting or the smaller step."""
    reweight, step = detected(miou, "normalized"), detected(miou, "lr_matched")
    meaning = {(True, False): "the re-weighting across images, not the smaller step, carries the paper arm's change.",
               (False, True): "the smaller step, not the re-weighting, carries the paper arm's change.",
               (True, True): "both the re-weighting and the smaller step change mIoU.",
               (False, False): "neither half alone is detected."}[(reweight != 0, step != 0)]
    others = [f"{arm} ({what}): {effect(miou, arm, 'mIoU')}" for arm, what in
              (("shuffled", "the same weights, unlinked from each image"), ("soft", "lipkit's differentiable joint term"))
              if arm in miou.index]  # a study that did not plan them (the PASCAL one) says nothing of them
    return (f"**What carries it.** normalized (the re-weighting alone): {effect(miou, 'normalized', 'mIoU')}; "
            f"lr_matched (the smaller step alone): {effect(miou, 'lr_matched', 'mIoU')}. So {meaning}"
            + (f" {'; '.join(others)}." if others else ""))


def _paper_gain(network: str, label_set: str = "LIP") -> float:
    without, with_ssl = PAPER_SSL_MIOU[(label_set, network)]
    return with_ssl - without


def _against_paper(table: pd.DataFrame, arm: str, gain: float) -> str:
    if arm not in table.index or math.isnan(table.loc[arm, "lower"]):
        return f"the paper reports {gain:+.2f} on real images (unverified)"
    above = gain > table.loc[arm, "upper"]
    inside = table.loc[arm, "lower"] <= gain <= table.loc[arm, "upper"]
    where = "inside" if inside else "above" if above else "below"
    return f"the paper's {gain:+.2f} on real images (unverified) lies {where} this interval"


def _views(runs: dict, arm: str) -> str:
    views = view_table(runs, "L/R confusion", [arm])
    if not len(views):
        return "no per-view rows yet"
    return "; ".join(f"{r['view']} {r['mean diff']:+.2f} ({r['lower']:+.2f} to {r['upper']:+.2f}, {r['images']} images)"
                     for _, r in views.iterrows())


def carry_over(lip: pd.DataFrame, pascal: pd.DataFrame, arm: str = "paper") -> str:
    """Does ``arm``'s mIoU verdict on LIP's labels (``lip``) hold with PASCAL's (``pascal``)? From the two intervals' signs;
    a PASCAL null is weighed against the LIP effect's size through PASCAL's smallest detectable difference."""
    if arm not in pascal.index or math.isnan(pascal.loc[arm, "lower"]):
        return f"Whether the {arm} arm's LIP-label result carries over cannot be told yet (no PASCAL interval)."
    on_lip, on_pascal = detected(lip, arm), detected(pascal, arm)
    word = {1: "higher", -1: "lower"}
    if on_lip and on_lip == on_pascal:
        return f"The LIP-label result carries over: with both label sets the {arm} arm's mIoU is {word[on_lip]} than the control's."
    if on_lip and on_pascal:
        return f"The LIP-label result reverses: {word[on_lip]} mIoU with LIP's labels, {word[on_pascal]} with PASCAL's."
    if on_pascal:
        return (f"With PASCAL's labels the {arm} arm's mIoU is {word[on_pascal]} than the control's; with LIP's no "
                "difference was detected.")
    size, detectable = abs(lip.loc[arm, "mean diff"]), pascal.loc[arm, "detectable"]
    if not on_lip:
        return "Neither label set shows a detected mIoU difference."
    reach = ("so an effect the size of LIP's would have been detected: it does not carry over" if detectable <= size
             else "too coarse to tell whether an effect the size of LIP's carries over")
    return (f"With PASCAL's labels no difference is detected (smallest detectable {detectable:.2f} against LIP's "
            f"{size:.2f}), {reach}.")


def _plan_line(root: Path) -> str:
    """The PASCAL plan (``plan.json``, written from its pilot before the other runs) in one sentence."""
    plan = read_plan(root)
    if not plan or "mIoU" not in plan["metrics"]:
        return "No plan yet: `python -m lipkit study --profile synthlip-pascal --plan` after its pilot."
    m = plan["metrics"]["mIoU"]
    return (f"Its plan, written from the pilot ({', '.join(plan['pilot_runs'])}) before the other runs: paper - control "
            f"varied by {m['sd']:.2f} points (sd over {len(m['pilot_differences'])} seeds), so {m['seeds_needed']} "
            f"seeds detect {plan['delta_points']:g} mIoU points at alpha {plan['alpha']:g} with power {plan['power']:g} "
            f"({m['seeds_needed_holm_worst_case']} at Holm's worst case over {plan['holm_arms']} arms); it runs "
            f"{plan['seeds_planned']}.")


def _rq4_labels(pascal_root: Path, lip_miou: pd.DataFrame) -> list[str]:
    """RQ4 across label sets: the paper arm on PASCAL's labels beside LIP's and the paper's gain; then the same
    checks and mechanism arms as the LIP study."""
    runs = load_runs(pascal_root) if pascal_root.is_dir() else {}
    if not runs:
        return ["**RQ4, another label set.** Not run yet: `python -m lipkit study --profile synthlip-pascal` "
                "(the same people with PASCAL-Person-Part's labels)."]
    miou, joint = (summary_table(m, pascal_root, bootstrap=0) for m in ("mIoU", "joint error"))
    images = next(iter(runs.values()))["num_images"]
    head = (f"**RQ4, another label set** (the same SynthLIP people with PASCAL-Person-Part's 7 labels and its six "
            f"joints, DeepLabV2, the same design; {len(runs)} runs, each scored on the same {images} val images)")
    checks = [f"**RQ4 on PASCAL's labels: the regime, the plan, the mechanism.** {_control_gain(runs, pascal_root)}",
              _plan_line(pascal_root), _mechanism(miou).removeprefix("**What carries it.** "),
              f"{released_check(pascal_root)}. No positive control applies: PASCAL's parts have no left and right, so a "
              "flip that does not swap them trains like the control."]
    return [f"{head}: paper - control: {effect(miou, 'paper', 'mIoU')}; {effect(joint, 'paper', 'joint error', 3)}; "
            f"normalized - control: {effect(miou, 'normalized', 'mIoU')}. {carry_over(lip_miou, miou)} The paper reports "
            f"{_paper_gain('attention', 'PASCAL-Person-Part'):+.2f} with Attention-to-Scale on real PASCAL-Person-Part "
            "(unverified).", " ".join(checks)]


def pascal_baseline_table(scores: dict) -> str:
    """The shipped PASCAL-label baseline's ``scores.json`` as the README's markdown: per val split (seed 0's, on
    which the LIP recipe was chosen, then three other seeds and their mean) mIoU, pixel accuracy and each part's IoU."""
    splits = [("val", "seed 0 val (the LIP recipe was chosen on it)")] + [
        (f"val_seed{k}", f"seed {k} val") for k in OTHER_SEEDS]
    parts = list(scores["val"]["iou"])[1:]  # background's IoU is in the mean, not a column
    lines = ["| PASCAL-label DeepLabV2 (stored file, all 500 val images each) | mIoU % | pixel acc % | "
             + " | ".join(parts) + " |", "|---|---:|---:|" + "---:|" * len(parts)]
    for key, name in splits:
        row = scores[key]
        lines.append(f"| {name} | {100 * row['mean_iou']:.2f} | {100 * row['pixel_accuracy']:.2f} | "
                     + " | ".join(f"{100 * row['iou'][p]:.1f}" for p in parts) + " |")
    other = [scores[f"val_seed{k}"] for k in OTHER_SEEDS]
    mean = {key: 100 * sum(r[key] for r in other) / len(other) for key in ("mean_iou", "pixel_accuracy")}
    lines.append(f"| **mean of seeds {', '.join(map(str, OTHER_SEEDS))}** | **{mean['mean_iou']:.2f}** | "
                 f"{mean['pixel_accuracy']:.2f} | "
                 + " | ".join(f"{100 * sum(r['iou'][p] for r in other) / len(other):.1f}" for p in parts) + " |")
    return "\n".join(lines)


def findings(tables: dict[str, pd.DataFrame], root: Path | None = None, pascal_root: Path | None = None,
             label_sets: bool = True) -> list[str]:
    """The study's findings as markdown bullets, one per question, each from ``tables`` (``summary_table`` per metric
    of :data:`README_METRICS`) and the runs under ``root``: effect, interval, smallest detectable, what it means.
    ``label_sets``: add RQ4 across label sets from ``pascal_root`` (default the shipped PASCAL-label study)."""
    root = root or study_dir()
    runs = load_runs(root)
    if not runs:
        return [f"- No finished runs under {root} yet: `python -m lipkit study`."]
    miou, lr, joint = (tables[m] for m in README_METRICS)
    images = next(iter(runs.values()))["num_images"]
    positive = detected(lr, POSITIVE_CONTROL) > 0
    lines = [f"**Evidence.** {len(runs)} runs, each scored on the same {images} SynthLIP val images after "
             f"{BASE_STEPS:,} base + {BRANCH_STEPS:,} branch steps; every interval is over seeds, paired by seed.",
             _regime(runs, root),
             f"**The positive control** (flip_no_swap: mirrored images, left/right labels not swapped): "
             f"{effect(lr, POSITIVE_CONTROL, 'L/R confusion')}. " +
             ("The design sees a structure effect of this size." if positive else
              "The design does NOT see it, so a null result for SSL below says little about structure."),
             f"**RQ2, does the paper's loss improve parsing?** paper - control: {effect(miou, 'paper', 'mIoU')}; "
             f"{_against_paper(miou, 'paper', _paper_gain('deeplabv2'))}.",
             _mechanism(miou),
             f"**RQ3, structure.** paper - control: {effect(lr, 'paper', 'L/R confusion')}; "
             f"{effect(joint, 'paper', 'joint error', 3)}. By view (L/R confusion, 95 % each, not corrected: a "
             f"secondary analysis): {_views(runs, 'paper')}.",
             f"**RQ4, another backbone** (Attention-to-Scale from its own base): paper - control: "
             f"{effect(miou, 'attention_paper', 'mIoU')}; {_against_paper(miou, 'attention_paper', _paper_gain('attention'))}; "
             f"normalized - control: {effect(miou, 'attention_normalized', 'mIoU')}.",
             f"**The machinery.** {released_check(root)}."]
    if label_sets:
        lines[-1:-1] = _rq4_labels(pascal_root or study_dir(SYNTHLIP_PASCAL), miou)
    return [f"- {line}" for line in lines]


def readme_blocks(root: Path | None = None, bootstrap: int = 1000, pascal_root: Path | None = None) -> dict[str, str]:
    """The README's generated blocks: ``study:<metric>`` per :data:`README_METRICS` and ``study:findings`` (from the
    runs under ``root``, default the shipped study)."""
    tables = {m: summary_table(m, root, bootstrap=bootstrap) for m in README_METRICS}
    blocks = {f"study:{m}": markdown_table(t, 3 if m == "joint error" else 2) for m, t in tables.items()}
    blocks["study:findings"] = "\n".join(findings(tables, root, pascal_root))
    shipped = shipped_dir("deeplabv2", SYNTHLIP_PASCAL) / "scores.json"
    blocks["study:pascal-baseline"] = (
        pascal_baseline_table(json.loads(shipped.read_text())) if shipped.is_file()
        else "Not shipped yet: `python -m lipkit pretrain --profile synthlip-pascal --arch deeplabv2`.")
    return blocks


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each ``<!-- name -->`` ... ``<!-- /name -->`` span replaced by ``blocks[name]``."""
    for name, body in blocks.items():
        start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
        if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
            raise ValueError(f"README: expected one '{start}' ... '{end}' block")
        head, rest = text.split(start)
        text = f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"
    return text


__all__ = ["README_METRICS", "carry_over", "detected", "effect", "fill_blocks", "findings", "markdown_table",
           "pascal_baseline_table", "readme_blocks"]
