"""Experiment helpers for notebooks 02-05: set-up, train-or-reuse runs, shipped baselines, score tables.

The recipe (``lipkit.recipe.Recipe``) holds everything the result notebooks share; each notebook's
parameters are its fields in capitals and :func:`setup` builds it, so notebook 03 finds exactly the
runs notebook 02 made. Runs live in
``runs/<profile>/<experiment>/`` (``lipkit.training.fit``'s folder). :func:`train_or_load` trains only
when that folder has no ``scores.json`` written by the *same* config, so each notebook runs
standalone: it reuses upstream results or trains what it needs at the profile's size.

The SSL experiments follow the paper's two stages: a baseline trained with plain cross-entropy,
then fine-tuning from its checkpoint with a structure-sensitive loss, against a *control*
fine-tuned from the same checkpoint with plain cross-entropy for the same steps, data order and
seed. Differences are therefore paired per seed (:func:`paired_differences`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lipkit import paths, viz
from lipkit.data import LIPDataset
from lipkit.data.transforms import normalized_tensor
from lipkit.evaluate import accumulate, evaluate, summarise
from lipkit.labels import LIP, LabelSet
from lipkit.metrics import ConfusionMatrix, left_right_coverage, mean_left_right_confusion
from lipkit.study_stats import Interval, paired_t_interval, smallest_detectable, t_ppf
from lipkit.study_stats import verdict as study_verdict
from lipkit.models import ARCHS
from lipkit.recipe import (CONTROL, PAPER, Recipe, Setting, baseline_config, baseline_name, check_shipped,
                           ensure_synthlip, finetune_config, finetune_name, rel)
from lipkit.ssl import StructureSensitiveLoss, joint_error, labels_on_grid
from lipkit.training import TrainConfig, atomic_write_text, fit, load_model_from_checkpoint

METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")
METRIC_NAMES = {"pixel_accuracy": "pixel acc", "mean_accuracy": "mean acc", "mean_iou": "mIoU",
                "frequency_weighted_iou": "fwIoU", "lr_confusion": "L/R confusion", "joint_error": "joint error"}


SMALL_PARTS = ("Sunglasses", "Glove", "Socks", "Scarf", "Left-shoe", "Right-shoe")

# The ablation grid of notebook 04: every row differs from "paper" (or the control) in one thing.
ABLATIONS: tuple[Setting, ...] = (
    CONTROL,
    Setting("released", "released"),
    PAPER,
    Setting("soft", "soft"),
    Setting("paper sigma=2", "paper", sigma=2.0),
    Setting("paper no shoes", "paper", joints="lip-no-shoes"),
    Setting("paper normalised", "paper", normalize=True),
)


@dataclass
class Setup:
    """What a result notebook's set-up cell gives it: the recipe, the data, the figure saver."""

    recipe: Recipe
    root: Path
    val: Any  # lipkit.data.LIPDataset of the val split
    save: Any  # save(fig, name): writes FIGURES_DIR/name when FIGURES_DIR is set
    real_lip: bool

    @property
    def n_val(self) -> int:
        return len(self.val) if not self.recipe.val_images else min(len(self.val), self.recipe.val_images)

    def describe(self) -> str:
        r = self.recipe
        where = "real LIP" if self.real_lip else "SynthLIP"
        base = ("shipped SynthLIP baselines (checkpoints/)" if r.baselines == "shipped"
                else f"baselines trained here ({r.base_steps} steps)")
        text = (f"{where} '{self.root.name}': {len(LIPDataset(self.root, 'train'))} train images, {self.n_val} val images "
                f"scored; profile {r.profile!r}; {base}; fine-tuning seeds {list(range(r.seeds))}")
        if r.profile == "smoke":
            text += ("\nsmoke profile: a few images and steps, a test that the code runs; its numbers are not "
                     "results (the cpu profile, make reproduce, gives those)")
        return text


BACKBONE_NAMES = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50",
                  "resnet101": "ResNet-101", "vgg16": "VGG-16"}
ARCH_NAMES = {"deeplabv2": "DeepLabV2", "attention": "Attention-to-Scale"}


def network_label(recipe: Recipe, arch: str) -> str:
    """``"DeepLabV2 (ResNet-18)"``: the network and the backbone ``recipe`` gives it."""
    backbone = recipe.attention_backbone if arch == "attention" else recipe.backbone
    return f"{ARCH_NAMES.get(arch, arch)} ({BACKBONE_NAMES.get(backbone, backbone)})"


def setup(params: Mapping[str, Any]) -> Setup:
    """The one set-up call of notebooks 02-05: ``setup(globals())`` after the parameters cell.

    Every parameter named like a :class:`Recipe` field in capitals goes into the recipe; the
    data are made (or found) once; ``FIGURES_DIR`` decides where figures go.
    """
    recipe = Recipe.from_parameters(params)
    if recipe.baselines == "shipped":
        for arch in ARCHS:
            check_shipped(recipe, arch)
    root = ensure_synthlip(recipe)
    return Setup(recipe, root, LIPDataset(root, "val"), viz.saver(params.get("FIGURES_DIR", "")), bool(recipe.data_root))


# ------------------------------------------------------------------------------------------ runs
@dataclass
class Run:
    """A finished training run: its folder, final validation scores and training log."""

    name: str
    out_dir: Path
    config: dict
    scores: dict  # scores.json["final"]: lipkit.evaluate.summarise's dict (with confusion_matrix)
    trained: bool = False  # True when this call trained it, False when reused
    log: pd.DataFrame = field(default_factory=pd.DataFrame)
    weights: Path | None = None  # the model file when it is not out_dir/last.pt (a shipped baseline)

    @property
    def checkpoint(self) -> Path:
        return self.weights or self.out_dir / "last.pt"

    @property
    def seconds(self) -> float:
        train = self.log[self.log["kind"] == "train"] if "kind" in self.log else self.log
        return float(train["elapsed_s"].iloc[-1]) if len(train) and "elapsed_s" in train else math.nan

    def model(self, device: str = "cpu") -> torch.nn.Module:
        return load_model_from_checkpoint(self.checkpoint, device=device)[0]


def _comparable(config: Mapping[str, Any]) -> dict:
    """The parts of a config that decide the numbers (not logging or progress), with today's defaults filled in
    (a config saved before a setting existed means that setting's default)."""
    data = json.loads(json.dumps(TrainConfig.from_dict(dict(config)).to_dict()))
    for key in ("progress", "log_every", "checkpoint_every"):
        data.pop(key, None)
    return data


def read_log(out_dir: Path) -> pd.DataFrame:
    """``metrics.jsonl`` as a DataFrame (train and val lines, ``kind`` column)."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return pd.DataFrame()
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def load_run(out_dir: str | Path, config: Any | None = None) -> Run | None:
    """The run in ``out_dir`` if its ``scores.json`` exists (and, given ``config``, was made by it)."""
    out_dir = Path(out_dir)
    out_dir = paths.resolve(out_dir)
    path = out_dir / "scores.json"
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    if config is not None and _comparable(stored["config"]) != _comparable(config.to_dict()):
        return None
    if not stored.get("final"):
        return None
    marker = _data_marker(stored["config"])
    if marker.is_file() and marker.stat().st_mtime > path.stat().st_mtime:
        return None  # the data was regenerated after this run
    return Run(out_dir.name, out_dir, stored["config"], stored["final"], False, read_log(out_dir))


def train_or_load(config: TrainConfig, force: bool = False, progress: bool = True, quiet: bool = False) -> Run:
    """Reuse ``<out_dir>/scores.json`` when the same config wrote it, else train (``lipkit.training.fit``).

    A run of the same config that was interrupted (``last.pt`` and ``config.yaml`` there, no
    ``scores.json``) resumes exactly where it stopped; a folder of another config is trained again
    from scratch. Says in one line which it does (unless ``quiet``); training shows fit's progress
    bar when ``progress``.
    """
    run = None if force else load_run(config.out_dir, config)
    name = rel(paths.resolve(config.out_dir))
    if run is not None:
        if not quiet:
            print(f"{name}: reused (trained earlier with this config)")
        return run
    if config.init_checkpoint:
        init = paths.resolve(config.init_checkpoint)
        if not init.is_file():
            raise FileNotFoundError(f"init_checkpoint {init} is missing: train the baseline first "
                                    "(train_or_load(baseline_config(...)), or use finetune())")
    out_dir = paths.resolve(config.out_dir)
    resume = _interrupted_run_of(out_dir, config)
    if not resume:
        for stale in ("scores.json", "metrics.jsonl", "last.pt", "best.pt"):
            (out_dir / stale).unlink(missing_ok=True)
    if not quiet:
        steps = f"{config.iterations} steps" if config.iterations else f"{config.epochs} epochs"
        print(f"{name}: {'resuming an interrupted run' if resume else 'training'}, {steps}")
    fit(TrainConfig.from_dict({**config.to_dict(), "progress": progress}), resume=resume)
    run = load_run(out_dir, config)
    if run is None:
        raise RuntimeError(f"training finished but {out_dir / 'scores.json'} holds no final validation")
    run.trained = True
    return run


def _data_marker(config: Mapping[str, Any]) -> Path:
    """The ``.complete`` file of the SynthLIP folder a config trains on (absent for real data)."""
    return paths.resolve(config["data"]["root"] or paths.synthlip_root()) / ".complete"


def _interrupted_run_of(out_dir: Path, config: TrainConfig) -> bool:
    """Whether ``out_dir`` holds an unfinished run of ``config``: its config.yaml and a last.pt, no
    scores.json, and no data regenerated since (a finished or stale run is trained again)."""
    stored, last = out_dir / "config.yaml", out_dir / "last.pt"
    if not (stored.is_file() and last.is_file()) or (out_dir / "scores.json").is_file():
        return False
    marker = _data_marker(config.to_dict())
    if marker.is_file() and marker.stat().st_mtime > last.stat().st_mtime:
        return False
    try:
        return _comparable(TrainConfig.from_yaml(stored).to_dict()) == _comparable(config.to_dict())
    except ValueError:  # a config of an older lipkit: train again
        return False


def shipped_run(recipe: Recipe, arch: str = "deeplabv2", quiet: bool = False) -> Run:
    """The shipped ``arch`` baseline as a Run: its training log, and its scores on *this* recipe's val split.

    Scores are cached in ``runs/<profile>/shipped_<arch>/scores.json``, keyed by the model file's
    hash and the data, so 03-05 reuse what 02 computed (one line says which, unless ``quiet``).
    """
    config = check_shipped(recipe, arch).to_dict()
    folder = paths.shipped_dir(arch)
    weights = folder / "model.pt"
    root = ensure_synthlip(recipe)
    key = {"model_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "data_root": rel(root),
           "val_images": recipe.val_images or None}
    out_dir = paths.run_dir(recipe.profile, f"shipped_{arch}")
    path = out_dir / "scores.json"
    stored = json.loads(path.read_text()) if path.is_file() else {}
    if stored.get("key") != key:
        model, _ = load_model_from_checkpoint(weights, device="cpu" if recipe.device == "auto" else recipe.device)
        val = LIPDataset(root, "val")
        if not quiet:
            print(f"{rel(folder)}: scoring the shipped model on this profile's val split")
        scores = evaluate(model, val, max_images=recipe.val_images or None, progress=not quiet)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "final": scores, "config": config}, indent=1))
        stored = {"final": scores}
    elif not quiet:
        print(f"{rel(folder)}: scores on this val split reused from {rel(path)}")
    return Run(f"shipped_{arch}", out_dir, config, stored["final"], False, read_log(folder), weights=weights)


def baseline(recipe: Recipe, arch: str = "deeplabv2", seed: int = 0, quiet: bool = False) -> Run:
    """The baseline fine-tuning starts from: the shipped one (``baselines="shipped"``) or the seed's, trained here."""
    if recipe.baselines == "shipped":
        return shipped_run(recipe, arch, quiet=quiet)
    return train_or_load(baseline_config(recipe, arch, seed), quiet=quiet)


def finetune(recipe: Recipe, setting: Setting = PAPER, seed: int = 0, arch: str | None = None) -> Run:
    """Get the ``arch`` baseline (default ``recipe.ssl_arch``), then fine-tune it with ``setting`` (trained or reused)."""
    arch = arch or recipe.ssl_arch
    if recipe.baselines == "train":  # a shipped baseline's file is already there (checked by setup)
        baseline(recipe, arch, seed)
    return train_or_load(finetune_config(recipe, setting, seed, arch))


# ------------------------------------------------------------------------------------------ tables
def lr_coverage(scores: Mapping[str, Any], label_set: LabelSet = LIP) -> float:
    """:func:`lipkit.metrics.left_right_coverage` of a run's scores (their confusion matrix)."""
    return left_right_coverage(scores["confusion_matrix"], label_set)


def score_row(run: Run, **labels: Any) -> dict[str, Any]:
    """One row of headline numbers of a run (percent for accuracies/IoU and L/R confusion)."""
    s = run.scores
    row: dict[str, Any] = dict(labels)
    for m in METRICS:
        row[m] = 100.0 * float(s[m])
    row["lr_confusion"] = 100.0 * mean_left_right_confusion(s["left_right_confusion"])
    row["lr_coverage"] = 100.0 * lr_coverage(s) if "confusion_matrix" in s else math.nan
    row["joint_error"] = float(s["joint_error"]) if s.get("joint_error") is not None else math.nan
    row["train_seconds"] = run.seconds
    return row


def collect_scores(runs: Iterable[tuple[Mapping[str, Any], Run]]) -> pd.DataFrame:
    """A DataFrame of ``score_row`` over ``(labels, run)`` pairs, e.g. ``({"setting": s, "seed": k}, run)``."""
    return pd.DataFrame([score_row(run, **dict(labels)) for labels, run in runs])


def per_class_iou(run: Run, label_set: LabelSet = LIP) -> pd.Series:
    """Per-class IoU in percent (NaN for classes absent from the ground truth and the prediction)."""
    iou = run.scores["iou"]
    return pd.Series([100.0 * iou[c] if iou.get(c) is not None else math.nan for c in label_set.classes],
                     index=list(label_set.classes), dtype=float)


def mean_std(frame: pd.DataFrame, by: str = "setting", metrics: Sequence[str] = ("mean_iou", "lr_confusion")) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one seed) and number of seeds of ``metrics`` per value of ``by`` (input order)."""
    order = list(dict.fromkeys(frame[by]))
    g = frame.groupby(by, sort=False)[list(metrics)]
    out = pd.concat({"mean": g.mean(), "std": g.std(ddof=1)}, axis=1).reindex(order)
    out[("n", "")] = g.size().reindex(order)
    return out


def paired_differences(frame: pd.DataFrame, control: str = "control", by: str = "setting", pair: str = "seed",
                       metrics: Sequence[str] = ("mean_iou", "lr_confusion")) -> pd.DataFrame:
    """Per setting and seed: metric minus the control's metric of the same seed (long format)."""
    if control not in set(frame[by]):
        raise ValueError(f"no rows with {by}={control!r} to pair against (have {sorted(set(frame[by]))})")
    base = frame[frame[by] == control].set_index(pair)[list(metrics)]
    rows = []
    for _, row in frame[frame[by] != control].iterrows():
        if row[pair] not in base.index:
            raise ValueError(f"{by}={row[by]!r} has {pair}={row[pair]!r} but the control has no such {pair}")
        rows.append({by: row[by], pair: row[pair], **{m: row[m] - base.loc[row[pair], m] for m in metrics}})
    return pd.DataFrame(rows, columns=[by, pair, *metrics])


def summarize_differences(diffs: pd.DataFrame, by: str = "setting",
                          metrics: Sequence[str] = ("mean_iou", "lr_confusion")) -> pd.DataFrame:
    """Per setting: seeds, mean and std of the paired differences and their 95 % t interval over seeds."""
    order = list(dict.fromkeys(diffs[by]))
    rows = []
    for name in order:
        part = diffs[diffs[by] == name]
        row: dict[str, Any] = {by: name, "seeds": len(part)}
        for m in metrics:
            iv = paired_t_interval(part[m].to_numpy(dtype=float))
            row[f"{m} diff mean"] = iv.mean
            row[f"{m} diff std"] = iv.sd
            row[f"{m} 95% CI"] = f"{iv.lower:+.2f} to {iv.upper:+.2f}" if np.isfinite(iv.lower) else "n/a"
        rows.append(row)
    return pd.DataFrame(rows).set_index(by)


def verdict(mean: float, std: float, n: int, unit: str = "points") -> str:
    """Plain words for a paired difference over ``n`` seeds: its 95 % t interval, or, where the interval spans
    zero, "no difference detected" with the smallest difference ``n`` seeds of this spread detect at 80 % power."""
    if n == 0 or not np.isfinite(mean):
        return "not measured"
    if mean == 0 and (n == 1 or std == 0):
        return f"no change (identical to the control on all {n} seed(s))"
    if n < 2 or not np.isfinite(std):
        return f"{mean:+.2f} {unit} on one seed (no interval: run more seeds to judge)"
    half = t_ppf(0.975, n - 1) * std / math.sqrt(n)
    iv = Interval(mean, mean - half, mean + half, std, n, n - 1, math.nan, 0.95)
    return study_verdict(iv, smallest_detectable(std, n), unit=unit)


def coverage_note(frame: pd.DataFrame, threshold: float = 5.0) -> str:
    """A sentence on whether L/R confusion can be read: the models' mean ``lr_coverage`` (percent) vs ``threshold``."""
    cov = frame["lr_coverage"].to_numpy(dtype=float)
    if not np.isfinite(cov).any():
        return "No left/right pixels in the ground truth: L/R confusion is not measured."
    mean = float(np.nanmean(cov))
    if mean < threshold:
        return (f"Caution: the models label only {mean:.1f}% of the ground-truth left/right pixels (arms, legs, "
                "shoes) with any left/right class, so a low L/R confusion here means 'no arms or legs predicted', "
                "not 'no swaps'; the structure loss has little to act on at this training length.")
    return (f"The models label {mean:.1f}% of the ground-truth left/right pixels with a left/right class, so "
            "L/R confusion measures swaps among parts the models do find.")


# ------------------------------------------------------------------------------------------ predictions
def batch_of(dataset: Any, indices: Sequence[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, size, size) normalised and labels (N, size, size) of ``dataset[indices]``, resized (labels nearest)."""
    xs, ys = [], []
    for i in indices:
        item = dataset[int(i)]
        x = normalized_tensor(item["image"]).unsqueeze(0)
        xs.append(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False))
        y = torch.tensor(np.asarray(item["label"])).float()[None, None]
        ys.append(F.interpolate(y, size=(size, size), mode="nearest")[0].long())
    return torch.cat(xs), torch.cat(ys)


def image_scores(pred: Sequence[np.ndarray], gt: Sequence[np.ndarray], label_set: LabelSet = LIP) -> pd.DataFrame:
    """Per image: pixel accuracy, mIoU over the classes present in GT or prediction, L/R swap share."""
    rows = []
    for p, g in zip(pred, gt):
        cm = ConfusionMatrix(label_set.num_classes, label_set.ignore_index)
        cm.update(p, g)
        s = cm.compute(absent="nan")
        c = cm.matrix
        side = sum(int(c[a, a] + c[a, b] + c[b, a] + c[b, b]) for a, b in label_set.flip_pairs)
        swapped = sum(int(c[a, b] + c[b, a]) for a, b in label_set.flip_pairs)
        rows.append({"pixel_accuracy": 100 * s.pixel_accuracy, "mean_iou": 100 * s.mean_iou,
                     "lr_swap": 100 * swapped / side if side else math.nan})
    return pd.DataFrame(rows)


def scores_by_group(model: torch.nn.Module, dataset: Any, groups: Mapping[str, Sequence[int]],
                    label_set: LabelSet = LIP) -> pd.DataFrame:
    """mIoU, pixel accuracy and L/R confusion of ``model`` on each named subset of ``dataset``."""
    rows = []
    for name, indices in groups.items():
        if len(indices) == 0:
            continue
        s = summarise(accumulate(model, dataset, list(indices), label_set=label_set, progress=False), label_set)
        rows.append({"group": name, "images": len(indices), "pixel_accuracy": 100 * s["pixel_accuracy"],
                     "mean_iou": 100 * s["mean_iou"], "lr_confusion": 100 * mean_left_right_confusion(s["left_right_confusion"])})
    return pd.DataFrame(rows).set_index("group")


def view_groups(meta: pd.DataFrame | None) -> dict[str, list[int]]:
    """Row positions per view (left and right profiles merged into "profile") of metadata indexed like a dataset.

    ``meta``: ``lipkit.data.synth.read_meta(root, split, ids)``; rows without a view join no group.
    """
    if meta is None or "view" not in meta:
        return {}
    groups: dict[str, list[int]] = {}
    for i, view in enumerate(meta["view"].replace({"left": "profile", "right": "profile"})):
        if isinstance(view, str):
            groups.setdefault(view, []).append(i)
    return {k: groups[k] for k in ("front", "back", "profile") if k in groups} | \
        {k: v for k, v in groups.items() if k not in ("front", "back", "profile")}


# ------------------------------------------------------------------------------------------ SSL demos
def fragment(label: np.ndarray, class_id: int, offset: tuple[int, int]) -> np.ndarray:
    """A copy of ``label`` with a copy of ``class_id``'s region pasted ``offset = (dy, dx)`` away (a stray fragment)."""
    label = np.asarray(label)
    out = label.copy()
    ys, xs = np.nonzero(label == class_id)
    ys, xs = ys + int(offset[0]), xs + int(offset[1])
    keep = (ys >= 0) & (ys < label.shape[0]) & (xs >= 0) & (xs < label.shape[1])
    out[ys[keep], xs[keep]] = class_id
    return out


def loss_gradients(logits: torch.Tensor, target: torch.Tensor, modes: Sequence[str] = ("none", "released", "paper"),
                   **loss_kwargs: Any) -> dict[str, tuple[float, torch.Tensor]]:
    """``{mode: (loss value, d loss / d logits)}`` of ``StructureSensitiveLoss(mode)`` on the same inputs."""
    out = {}
    for mode in modes:
        x = logits.detach().clone().requires_grad_(True)
        res = StructureSensitiveLoss(mode=mode, **loss_kwargs)(x, target)
        res.loss.backward()
        out[mode] = (float(res.loss.detach()), x.grad.detach().clone())
    return out


def gradient_table(logits: torch.Tensor, target: torch.Tensor, **loss_kwargs: Any) -> pd.DataFrame:
    """Per image: its joint error, and how the "released" and "paper" gradients relate to "none"'s.

    ``released - none``: largest absolute difference (0 when the released gradient ignores L_joint);
    ``paper / none``: the ratio of the image's gradient norms (L_joint when paper = L_joint x none);
    ``paper - L_joint x none``: largest absolute deviation from that rule.
    """
    grads = loss_gradients(logits, target, **loss_kwargs)
    g_none, g_rel, g_pap = grads["none"][1], grads["released"][1], grads["paper"][1]
    groups = StructureSensitiveLoss(**loss_kwargs).groups
    small = labels_on_grid(target, logits.shape[-2:])
    jerr = joint_error(logits.argmax(1), small, groups, loss_kwargs.get("sigma", 1.0)).double()
    rows = []
    for n in range(logits.shape[0]):
        norm = float(g_none[n].double().norm())
        rows.append({"image": n, "L_joint": float(jerr[n]),
                     "max|released - none|": float((g_rel[n] - g_none[n]).abs().max()),
                     "|paper| / |none|": float(g_pap[n].double().norm()) / norm if norm else math.nan,
                     "max|paper - L_joint x none|": float((g_pap[n].double() - jerr[n] * g_none[n].double()).abs().max())})
    return pd.DataFrame(rows).set_index("image")


__all__ = [
    "ABLATIONS", "ARCH_NAMES", "BACKBONE_NAMES", "CONTROL", "METRICS", "network_label", "METRIC_NAMES", "PAPER", "Recipe", "Run", "SMALL_PARTS", "Setting", "Setup",
    "baseline", "baseline_config", "baseline_name", "setup", "shipped_run", "collect_scores", "ensure_synthlip", "finetune", "finetune_config",
    "finetune_name", "fragment", "lr_coverage", "coverage_note", "gradient_table", "image_scores", "load_run", "loss_gradients",
    "mean_std", "paired_differences", "per_class_iou", "read_log", "score_row",
    "scores_by_group", "summarize_differences", "train_or_load", "verdict", "view_groups",
]
