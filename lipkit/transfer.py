"""The CCP transfer experiment: does a parser learnt on SynthLIP help on real street photos?

Clothing Co-Parsing (CCP, lipkit.data.ccp) is scored in its ``ccp`` label set (LIP's classes with
Skin and Shoes merged). Everything is scored on the 100 **full-size** val photos of the clone, the
way ``python -m lipkit predict`` parses a photo by default: resized to the model's training height,
parsed, logits mapped back to the photo's size (:func:`parse_at`). Scores: per-class IoU over the
ccp classes, mIoU (absent classes excluded) and the **silhouette IoU** (any non-background class
against CCP's non-background; CCP's 255 pixels ignored), a score that needs no class mapping.

- **Zero-shot** (:func:`zero_shot`): a LIP-label model's prediction mapped with ``lip_to_ccp``, at
  its training height and at the photo's native size.
- **Transfer runs** (:func:`transfer_config`, :func:`run_one`): DeepLabV2 trained on CCP's 903 train
  photos resized to :func:`default_height` (the shipped SynthLIP model's training height, so people
  are as tall in pixels as in SynthLIP) in two arms that differ only in their initial weights:
  ``scratch`` (random, from the seed) and ``synthlip`` (the shipped SynthLIP DeepLabV2:
  :func:`init_state_dict`). Same steps, batches (the seed fixes the data order) and settings
  otherwise (the shipped model's recipe: crop 129, batch 16, AdamW, one-cycle, scaled ASPP rates).
- **Summary** (:func:`summary`): per seed, the paired difference synthlip - scratch in mIoU and
  silhouette IoU (points), with a 95 % t interval and the smallest detectable difference
  (lipkit.study_stats).
- **Shipping** (:func:`ship`): the best run's fp16 weights as ``checkpoints/ccp_deeplabv2/``.

Where things go (:class:`Places`): the small copy in ``data/ccp-h<H>``, training runs and the init
weights under ``runs/ccp_transfer/``, results (config, log, scores; no weights) in
``results/ccp_transfer/<arm>_s<seed>/``. Functions write only where they are told.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lipkit import paths
from lipkit.data import open_split
from lipkit.data.ccp import LIP_TO_CCP, CCPDataset, lip_to_ccp
from lipkit.data.ccp_convert import conversion_info, convert_ccp, converted_height
from lipkit.evaluate import add_image, evaluate, new_state, predict_labels, summarise
from lipkit.labels import CCP, LIP, LabelSet, get_label_set
from lipkit.pretrain import machine
from lipkit.recipe import rel
from lipkit.study_stats import paired_t_interval, smallest_detectable
from lipkit.training import (TrainConfig, atomic_write_bytes, atomic_write_text, build_model_from_config, fit,
                             load_checkpoint_file, load_model_from_checkpoint, load_model_weights, save_shipped,
                             train_image_height)

NAME = "ccp_transfer"
ARMS: dict[str, str] = {
    "scratch": "random initial weights (from the run's seed)",
    "synthlip": "the shipped SynthLIP DeepLabV2: trunk and ASPP copied, each ccp class's classifier rows the mean "
                "of its LIP classes' rows",
}
SEEDS = 3
STEPS = 2016  # per run, both arms: 36 epochs of 56 batches; 6 runs fit 1.5 h on 2 cores at ~0.7 s a step (one thread each)
LOG_EVERY = 25
VAL_SUBSET = 20  # small-copy val images the shipped model's provenance test re-scores exactly
METRICS = ("mean_iou", "silhouette_iou")


def source_dir() -> Path:
    """``checkpoints/synthlip_deeplabv2``: the model the ``synthlip`` arm starts from and zero-shot scores."""
    return paths.shipped_dir("deeplabv2")


def shipped_dir() -> Path:
    """``checkpoints/ccp_deeplabv2``: the CCP-trained model :func:`ship` writes."""
    return paths.CHECKPOINTS_DIR / "ccp_deeplabv2"


def default_height() -> int:
    """The height CCP is trained at: the shipped SynthLIP model's training height (``predict``'s default for it)."""
    height = train_image_height(source_dir() / "model.pt")
    if height is None:
        raise FileNotFoundError(f"{source_dir() / 'model.pt'} records no train_image_height; rebuild it (make pretrain)")
    return height


@dataclass(frozen=True)
class Places:
    """Where the experiment reads and writes: the small copy, the init weights, training runs, results."""

    data: Path  # CCP converted at the training height (convert ccp --height H)
    init: Path  # the synthlip arm's initial weights (init_state_dict of the shipped model)
    train: Path  # <train>/<run>/: fit's out_dir (last.pt, best.pt, ...)
    results: Path  # <results>/<run>/: config.yaml, metrics.jsonl, scores.json; zero_shot.json, summary.json

    @classmethod
    def default(cls, height: int | None = None) -> "Places":
        h = height or default_height()
        return cls(paths.DATA_DIR / f"ccp-h{h}", paths.run_dir(NAME) / "init_synthlip.pt", paths.run_dir(NAME),
                   paths.results_dir(NAME))


def ensure_small_copy(src: str | Path, root: Path, height: int, progress: bool = False) -> Path:
    """``root``: every CCP train and val photo at ``height`` px (converted from the clone ``src`` unless done)."""
    info = conversion_info(root)
    if info is None or info.get("height") != height or info.get("limit") is not None:
        convert_ccp(src, root, height=height, progress=progress)
    return root


# ------------------------------------------------------------------------------------------ scoring
def silhouette_iou(matrix: np.ndarray) -> float:
    """IoU of the person (every class but 0) in a confusion matrix (rows: ground truth); NaN without any."""
    c = np.asarray(matrix, dtype=np.int64)
    tp, fp, fn = c[1:, 1:].sum(), c[0, 1:].sum(), c[1:, 0].sum()
    total = tp + fp + fn
    return float(tp / total) if total else math.nan


def parse_at(model: nn.Module, image: np.ndarray, height: int | None, label_set: LabelSet) -> np.ndarray:
    """``predict``'s path: ``image`` parsed at ``height`` px (None: native), labels at the image's size."""
    at = 1.0 if height is None else height / image.shape[0]
    return predict_labels(model, image, scales=[at], label_set=label_set)


def score_full_size(model: nn.Module, label_set: LabelSet, dataset: Sequence[dict], heights: Mapping[str, int | None],
                    max_images: int | None = None, progress: bool = False) -> dict[str, dict[str, Any]]:
    """Scores in ccp classes of ``model`` on full-size photos, parsed at each of ``heights`` (name -> px or None).

    A LIP model's labels are mapped with ``lip_to_ccp``; a ccp model's are used as they are. Each
    entry: ``lipkit.evaluate.summarise``'s dict plus ``silhouette_iou``, ``height`` and ``per_image``
    (ids and silhouette IoUs).
    """
    if label_set.name not in (LIP.name, CCP.name):
        raise ValueError(f"a {label_set.name!r} model cannot be scored on CCP: expected a lip or ccp model")
    states = {name: new_state(CCP, keep_images=True) for name in heights}
    n = len(dataset) if not max_images else min(len(dataset), max_images)
    for i in tqdm(range(n), desc="score CCP", disable=not progress, leave=False):
        item = dataset[i]
        for name, height in heights.items():
            pred = parse_at(model, item["image"], height, label_set)
            add_image(states[name], lip_to_ccp(pred) if label_set.name == LIP.name else pred, item["label"], None,
                      name=item["id"])
    out = {}
    for name, state in states.items():
        scores = {k: v for k, v in summarise(state, CCP).items() if k not in ("left_right_confusion", "joint_error")}
        scores["silhouette_iou"] = silhouette_iou(state.confusion.matrix)
        scores["height"] = heights[name]
        scores["per_image"] = {"ids": list(state.image_ids),
                               "silhouette_iou": [silhouette_iou(c) for c in state.image_confusions]}
        out[name] = scores
    return out


def zero_shot(checkpoint: str | Path, dataset: Sequence[dict], max_images: int | None = None, progress: bool = False,
              out: Path | None = None) -> dict[str, Any]:
    """A LIP-label model scored on CCP (``dataset``: full-size val) at its training height and at native size.

    Returns ``{"checkpoint", "train_height": scores, "native": scores}``; writes it to ``out`` when given.
    """
    model, config = load_model_from_checkpoint(checkpoint)
    height = train_image_height(checkpoint)
    scores = score_full_size(model, get_label_set(config.data.label_set), dataset,
                             {"train_height": height, "native": None}, max_images, progress)
    result = {"checkpoint": rel(checkpoint), "num_images": scores["native"]["num_images"], **scores,
              "machine": machine()}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    return result


def zero_shot_report(src: str | Path, places: Places, max_images: int | None = None, progress: bool = False,
                     out: Path | None = None) -> dict[str, Any]:
    """:func:`zero_shot` of the shipped SynthLIP DeepLabV2, plus ``mapped_init``: the ``synthlip`` arm's
    initial weights (mapped rows, no CCP step) at the training height. Written to ``out`` when given."""
    val = full_size_val(src)
    result = zero_shot(source_dir() / "model.pt", val, max_images, progress)
    height = result["train_height"]["height"]
    result["mapped_init"] = score_full_size(init_model(places), CCP, val, {"train_height": height},
                                            max_images, progress)["train_height"]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    return result


# ------------------------------------------------------------------------------------------ initial weights
def ccp_rows() -> dict[str, list[str]]:
    """For each ccp class, the LIP classes whose classifier rows initialise it (``LIP_TO_CCP`` inverted)."""
    return {c: [lip for lip in LIP.classes if LIP_TO_CCP[lip] == c] for c in CCP.classes}


def map_classifier_rows(tensor: torch.Tensor) -> torch.Tensor:
    """A LIP classifier weight or bias (20 rows first) as ccp's 15: each row the mean of its LIP rows (fp32)."""
    if tensor.shape[0] != LIP.num_classes:
        raise ValueError(f"expected {LIP.num_classes} LIP rows first, got shape {tuple(tensor.shape)}")
    return torch.stack([tensor[[LIP.index(c) for c in lips]].float().mean(0) for lips in ccp_rows().values()])


def init_state_dict(lip_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A LIP DeepLabV2's state dict as a ccp one: trunk and buffers copied (fp32), classifier rows mapped.

    In lipkit's DeepLabV2 the ASPP branches are the classifier (each a dilated conv straight to class
    scores), so every ``classifier.*`` tensor with 20 rows gets :func:`map_classifier_rows`: identical
    classes keep their row, Skin is the mean of Face and the four limbs' rows, Shoes of the two shoes'.
    """
    out = {}
    for key, value in lip_state.items():
        value = value.float() if value.is_floating_point() else value.clone()
        mapped = key.startswith("classifier.") and value.dim() >= 1 and value.shape[0] == LIP.num_classes
        out[key] = map_classifier_rows(value) if mapped else value
    return out


def write_init_weights(path: Path, source: Path | None = None) -> Path:
    """Write ``path``: :func:`init_state_dict` of the shipped SynthLIP model (``source``), loadable as ``init_checkpoint``."""
    source = source or source_dir() / "model.pt"
    ckpt = load_checkpoint_file(source)
    payload = {"model": init_state_dict(ckpt["model"]), "source": rel(source), "rows": ccp_rows()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda fh: torch.save(payload, fh))
    return path


def init_model(places: Places) -> nn.Module:
    """The ``synthlip`` arm's network before any CCP step (eval mode): what the mapped rows alone parse."""
    model = build_model_from_config(transfer_config("synthlip", 0, 1, places))
    load_model_weights(model, places.init)
    return model.eval()


# ------------------------------------------------------------------------------------------ runs
def run_name(arm: str, seed: int) -> str:
    return f"{arm}_s{seed}"


def planned_runs(seeds: int = SEEDS) -> list[tuple[str, int]]:
    """Every (arm, seed), seeds first: ``--shard 1/2`` and ``2/2`` then take one arm each, pairs finish together."""
    return [(arm, seed) for seed in range(seeds) for arm in ARMS]


def transfer_config(arm: str, seed: int, steps: int = STEPS, places: Places | None = None) -> TrainConfig:
    """The run ``arm`` x ``seed``: the shipped SynthLIP DeepLabV2's recipe on the small CCP copy, ``steps`` steps.

    The arms differ in ``init_checkpoint`` only. Validation (the small copy's 100 val photos) at the end.
    """
    if arm not in ARMS:
        raise ValueError(f"arm={arm!r}: expected one of {', '.join(ARMS)}")
    places = places or Places.default()
    data = TrainConfig.from_yaml(source_dir() / "config.yaml").to_dict()
    data["data"] = {**data["data"], "root": rel(places.data), "label_set": CCP.name, "max_train_images": None,
                    "max_val_images": None}
    data["eval"] = {**data["eval"], "every": 0}
    data.update(iterations=int(steps), seed=int(seed), log_every=LOG_EVERY, progress=False,
                init_checkpoint=rel(places.init) if arm == "synthlip" else None,
                out_dir=rel(places.train / run_name(arm, seed)))
    return TrainConfig.from_dict(data)


def full_size_val(src: str | Path) -> CCPDataset:
    """CCP's 100 val photos at their own size, read from the clone ``src``: what every score here is on."""
    return CCPDataset(src, "val")


def run_one(arm: str, seed: int, src: str | Path, steps: int = STEPS, places: Places | None = None,
            progress: bool = False, val_images: int | None = None) -> Path:
    """Train (resuming) one run, score its last weights on full-size val, write ``<results>/<run>/``.

    ``val_images``: score only the first N full-size val photos (smoke tests; None: all 100).
    """
    places = places or Places.default()
    config = transfer_config(arm, seed, steps, places)
    config.progress = progress
    if config.init_checkpoint and not places.init.is_file():
        raise FileNotFoundError(f"{places.init} is missing: run `python -m lipkit transfer --prepare` first")
    result = fit(config, resume=True)
    run = paths.resolve(config.out_dir)
    model, _ = load_model_from_checkpoint(run / "last.pt")
    height = converted_height(places.data)
    full = score_full_size(model, CCP, full_size_val(src), {"train_height": height}, val_images)["train_height"]
    scores = {"run": run_name(arm, seed), "arm": arm, "seed": seed, "step": result["step"], "steps": config.iterations,
              "small_val": result["val"], "full_size": full, "machine": machine()}
    dest = places.results / run_name(arm, seed)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "metrics.jsonl"):
        shutil.copyfile(run / name, dest / name)
    atomic_write_text(dest / "scores.json", json.dumps(scores, indent=1) + "\n")
    return dest


def run_scores(results: Path) -> dict[str, dict[str, Any]]:
    """``scores.json`` of every finished run under ``results``, by run name."""
    found = {}
    for path in sorted(Path(results).glob("*_s*/scores.json")):
        found[path.parent.name] = json.loads(path.read_text())
    return found


# ------------------------------------------------------------------------------------------ summary
def summary(results: Path, out: Path | None = None) -> dict[str, Any]:
    """Per seed with both arms finished (same steps): synthlip - scratch in points, 95 % t interval, smallest detectable.

    ``{"seeds": [per-seed rows], "n", "steps", "mean_iou": {...}, "silhouette_iou": {...}}``; each metric holds
    ``diffs``, ``interval`` (``study_stats.Interval`` as a dict) and ``smallest_detectable`` (80 % power, NaN
    below 2 seeds). Full-size val at the training height: the target metric. Written to ``out`` when given
    and at least one seed is paired.
    """
    runs = run_scores(results)
    rows = []
    for seed in sorted({s["seed"] for s in runs.values()}):
        pair = {arm: runs.get(run_name(arm, seed)) for arm in ARMS}
        if any(p is None for p in pair.values()) or len({p["steps"] for p in pair.values()}) != 1:
            continue
        row: dict[str, Any] = {"seed": seed, "steps": pair["scratch"]["steps"]}
        for metric in METRICS:
            for arm, p in pair.items():
                row[f"{arm}_{metric}"] = 100 * p["full_size"][metric]
            row[f"diff_{metric}"] = row[f"synthlip_{metric}"] - row[f"scratch_{metric}"]
        rows.append(row)
    result: dict[str, Any] = {"seeds": rows, "n": len(rows), "steps": sorted({r["steps"] for r in rows})}
    for metric in METRICS:
        diffs = [r[f"diff_{metric}"] for r in rows]
        interval = paired_t_interval(diffs)
        detectable = smallest_detectable(interval.sd, interval.n) if interval.n >= 2 else math.nan
        result[metric] = {"diffs": diffs, "interval": asdict(interval), "smallest_detectable": detectable}
    if out is not None and rows:
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    return result


# ------------------------------------------------------------------------------------------ shipping
def best_run(results: Path) -> str:
    """The finished run with the highest small-copy val mIoU (CCP has no test split: the choice is on val)."""
    runs = run_scores(results)
    if not runs:
        raise FileNotFoundError(f"{results} holds no finished transfer run: run `python -m lipkit transfer` first")
    return max(runs, key=lambda name: runs[name]["small_val"]["mean_iou"])


def score_shipped(dest: Path, src: str | Path, data_root: Path, val_images: int | None = None) -> dict[str, Any]:
    """Scores of the stored fp16 ``dest/model.pt``: full-size val at its training height, the small copy's val subset."""
    model, config = load_model_from_checkpoint(dest / "model.pt")
    torch.set_num_threads(config.threads or torch.get_num_threads())
    height = train_image_height(dest / "model.pt")
    full = score_full_size(model, CCP, full_size_val(src), {"train_height": height}, val_images)["train_height"]
    subset = evaluate(model, open_split(data_root, "val", CCP), CCP, max_images=VAL_SUBSET, progress=False)
    return {"full_size": full, "val_subset": subset}


def ship(src: str | Path, run: str | None = None, places: Places | None = None, dest: Path | None = None,
         val_images: int | None = None) -> Path:
    """Copy run ``run`` (default :func:`best_run`) into ``dest`` (``checkpoints/ccp_deeplabv2``) and score the stored file.

    ``val_images``: score only the first N full-size val photos (smoke tests; None: all 100, what ships).
    """
    places = places or Places.default()
    dest = dest or shipped_dir()
    run = run or best_run(places.results)
    train = places.train / run
    if not (train / "scores.json").is_file():
        raise FileNotFoundError(f"{train} has no scores.json: its training has not finished (python -m lipkit transfer)")
    config = TrainConfig.from_yaml(train / "config.yaml")
    height = converted_height(paths.resolve(config.data.root))
    save_shipped(train / "last.pt", dest / "model.pt", {"train_image_height": height})
    atomic_write_text(dest / "config.yaml", config.to_yaml())
    shutil.copyfile(train / "metrics.jsonl", dest / "metrics.jsonl")
    scores = score_shipped(dest, src, paths.resolve(config.data.root), val_images)
    chosen = {name: s["small_val"]["mean_iou"] for name, s in run_scores(places.results).items()}
    scores.update(step=config.iterations, run=run, chosen_by="small-copy val mIoU", candidates=chosen, machine=machine())
    atomic_write_text(dest / "scores.json", json.dumps(scores, indent=1) + "\n")
    return dest


__all__ = ["ARMS", "METRICS", "NAME", "Places", "SEEDS", "STEPS", "VAL_SUBSET", "best_run", "ccp_rows", "default_height",
           "ensure_small_copy", "full_size_val", "init_model", "init_state_dict", "map_classifier_rows", "parse_at", "planned_runs",
           "run_name", "run_one", "run_scores", "score_full_size", "score_shipped", "ship", "shipped_dir",
           "silhouette_iou", "source_dir", "summary", "transfer_config", "write_init_weights", "zero_shot",
           "zero_shot_report"]
