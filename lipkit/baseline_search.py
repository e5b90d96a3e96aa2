"""The baseline search: variants of the ``synthlip`` recipe trained for equal time, results shipped.

``make pretrain`` trains one recipe; this module records why it is that recipe. Each variant is the
pretrain config of one network with a few settings changed (:data:`VARIANTS`), trained for
``steps`` steps on one thread (equal steps are equal time when the variants cost the same per step,
which the logged ``elapsed_s`` shows), two at a time side by side on 2 cores, resumable. What ships,
in ``results/baseline_search/<variant>/``: ``config.yaml``, ``metrics.jsonl`` and ``scores.json``
(the fp32 weights scored on all val images of the training data's seed and of SynthLIP seed 1).

``python -m lipkit search [VARIANT ...]`` runs variants; ``--table`` prints the shipped table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from lipkit import paths
from lipkit import recipe as rc
from lipkit.data import LIPDataset
from lipkit.evaluate import evaluate
from lipkit.experiments import SMALL_PARTS
from lipkit.labels import LIP
from lipkit.metrics import left_right_coverage
from lipkit.pretrain import OTHER_SEED, val_roots
from lipkit.training import TrainConfig, atomic_write_text, fit, load_model_from_checkpoint

SEARCH_NAME = "baseline_search"
SEARCH_VAL_SEEDS = (OTHER_SEED,)  # besides seed 0's val split: the search compares recipes, the pretrain judges them
SEARCH_STEPS = 1200  # about 14 minutes of one core for DeepLabV2 at batch 16 @ 129 px (AMD EPYC, AVX2)



@dataclass(frozen=True)
class Variant:
    """One search run: the pretrain config of ``arch`` with ``recipe`` fields and config ``overrides`` changed."""

    arch: str
    recipe: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    steps: int = SEARCH_STEPS
    question: str = ""  # what the variant is compared for


RQ1_IMAGES = (1000, 2500, 5000, 10000)  # training images of the RQ1 curve (the first N of the 10,000)
RQ1_STEPS = 3000  # 4 runs x 3,000 steps: about 75 minutes on 2 cores
RQ1_BATCH = 16  # the synthlip recipe's batch (checked by a test)

# ASPP: the paper's rates on a 129 px crop (17 x 17 grid: the rate-18/24 branches read only zero padding)
# against the rates scaled to the grid. RQ1: the same network and steps on more or fewer training images.
VARIANTS: dict[str, Variant] = {
    "deeplabv2_aspp_paper": Variant("deeplabv2", {"aspp": "paper"}, question="aspp"),
    "deeplabv2_aspp_scaled": Variant("deeplabv2", {"aspp": "scaled"}, question="aspp"),
    **{f"rq1_deeplabv2_{n}img": Variant("deeplabv2", {}, (f"data.max_train_images={n}",), RQ1_STEPS, "rq1")
       for n in RQ1_IMAGES},
}


def variant_config(name: str, steps: int | None = None) -> TrainConfig:
    """The TrainConfig of search variant ``name``: the pretrain recipe, changed, for ``steps`` (default: the variant's)."""
    if name not in VARIANTS:
        raise ValueError(f"search variant {name!r}: expected one of {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    recipe = rc.profile_recipe("synthlip").replace(**variant.recipe)
    config = rc.baseline_config(recipe, variant.arch, seed=0).with_overrides(list(variant.overrides))
    config.iterations = int(steps or variant.steps)
    config.log_every = 25
    config.out_dir = rc.rel(paths.run_dir("synthlip", f"search_{name}"))
    return config


def score_run(checkpoint: Path) -> dict[str, Any]:
    """A run's weights scored on all val images of SynthLIP seed 0 and seed 1 (:data:`SEARCH_VAL_SEEDS`)."""
    model, config = load_model_from_checkpoint(checkpoint)
    out: dict[str, Any] = {}
    for key, root in val_roots(SEARCH_VAL_SEEDS).items():
        out[key] = evaluate(model, LIPDataset(root, "val"), LIP, progress=False)
        out[key]["data_root"] = rc.rel(root)
    return out


def run_variant(name: str, steps: int | None = None, progress: bool = False) -> Path:
    """Train (resuming) one variant, score it and copy its files to ``results/baseline_search/<name>``."""
    config = variant_config(name, steps)
    config.progress = progress
    result = fit(config, resume=True)
    dest = paths.results_dir(SEARCH_NAME) / name
    dest.mkdir(parents=True, exist_ok=True)
    run = paths.resolve(config.out_dir)
    for file in ("config.yaml", "metrics.jsonl"):
        shutil.copyfile(run / file, dest / file)
    scores = {"step": result["step"], **score_run(run / "last.pt")}
    atomic_write_text(dest / "scores.json", json.dumps(scores, indent=1) + "\n")
    return dest


def run_search(names: list[str], steps: int | None = None, parallel: int = 2) -> None:
    """Run ``names`` ``parallel`` at a time, one process (one thread) each."""
    rc.ensure_synthlip(rc.profile_recipe("synthlip"))  # once, before the processes start
    pending = list(names)
    while pending:
        batch, pending = pending[:parallel], pending[parallel:]
        procs = [subprocess.Popen([sys.executable, "-m", "lipkit", "search", name, "--serial"]
                                  + (["--steps", str(steps)] if steps else [])) for name in batch]
        failed = [n for n, p in zip(batch, procs) if p.wait()]
        if failed:
            raise RuntimeError(f"search variants failed: {', '.join(failed)}; rerun to resume them")


def table(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per shipped variant: steps, minutes, mIoU, limbs, left/right coverage on both val seeds."""
    rows = []
    root = paths.results_dir(SEARCH_NAME)
    for name in names or sorted(p.name for p in root.iterdir() if (p / "scores.json").is_file()):
        scores = json.loads((root / name / "scores.json").read_text())
        log = [json.loads(line) for line in (root / name / "metrics.jsonl").read_text().splitlines() if line.strip()]
        train = [r for r in log if r.get("kind") == "train"]
        config = TrainConfig.from_yaml(root / name / "config.yaml")
        row: dict[str, Any] = {"variant": name, "steps": scores["step"],
                               "train images": config.data.max_train_images or 10000,
                               "minutes": round(train[-1]["elapsed_s"] / 60, 1) if train else None}
        row["aspp_rates"] = "/".join(map(str, config.model.aspp_rates or (6, 12, 18, 24)))
        for key in ("val", "val_seed1"):
            s = scores[key]
            row[f"{key} mIoU"] = round(100 * s["mean_iou"], 2)
            row[f"{key} L/R coverage"] = round(100 * left_right_coverage(s["confusion_matrix"], LIP), 1)
        rows.append(row)
    return rows


LIMBS = ("Left-arm", "Right-arm", "Left-leg", "Right-leg")


def rq1_table() -> list[dict[str, Any]]:
    """RQ1's curve, one row per shipped ``rq1_*`` variant (fewest images first): scores as the mean of both val seeds.

    Every run trains the same network for the same steps; only the number of distinct training images
    changes, so an image is seen ``steps x batch / images`` times (the ``epochs`` column).
    """
    root = paths.results_dir(SEARCH_NAME)
    rows = []
    for n in RQ1_IMAGES:
        name = f"rq1_deeplabv2_{n}img"
        if not (root / name / "scores.json").is_file():
            continue
        scores = json.loads((root / name / "scores.json").read_text())
        config = TrainConfig.from_yaml(root / name / "config.yaml")
        views = [scores[key] for key in ("val", "val_seed1")]
        iou = {c: 100 * sum(v["iou"][c] for v in views) / len(views) for c in LIP.classes}
        rows.append({"train images": n, "steps": scores["step"],
                     "epochs": round(scores["step"] * config.batch_size / n, 1),
                     "mIoU": round(100 * sum(v["mean_iou"] for v in views) / len(views), 2),
                     "limbs IoU": round(sum(iou[c] for c in LIMBS) / len(LIMBS), 2),
                     "small parts IoU": round(sum(iou[c] for c in SMALL_PARTS) / len(SMALL_PARTS), 2),
                     "L/R coverage": round(100 * sum(left_right_coverage(v["confusion_matrix"], LIP) for v in views)
                                           / len(views), 1)})
    return rows


def rq1_note(rows: list[dict[str, Any]]) -> str:
    """RQ1's result in words, from :func:`rq1_table`'s rows: what changed from the fewest to the most images."""
    if len(rows) < 2:
        return f"RQ1: {len(rows)} of {len(RQ1_IMAGES)} runs shipped; run `python -m lipkit search` for the rq1 variants."
    lo, hi = rows[0], rows[-1]
    best = max(rows, key=lambda r: r["mIoU"])
    parts = ", ".join(f"{m} {lo[m]:.1f} -> {hi[m]:.1f}" for m in ("mIoU", "limbs IoU", "small parts IoU"))
    peak = "" if best is hi else f" The highest mIoU is at {best['train images']:,} images ({best['mIoU']:.2f}), not at the most."
    return (f"From {lo['train images']:,} to {hi['train images']:,} distinct training images at the same {hi['steps']:,} "
            f"steps of batch {RQ1_BATCH} ({lo['epochs']:g} vs {hi['epochs']:g} epochs): {parts} (IoU in %, mean of 2 val "
            f"seeds of 500 images).{peak} Each point is one training run: no seed-to-seed spread was measured for this "
            f"recipe, so a step between neighbouring points smaller than a training seed's spread is not evidence.")


__all__ = ["LIMBS", "RQ1_IMAGES", "rq1_note", "rq1_table", "RQ1_STEPS", "SEARCH_NAME", "SEARCH_STEPS", "VARIANTS", "Variant", "run_search", "run_variant", "score_run", "table", "variant_config"]
