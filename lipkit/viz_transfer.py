"""Notebook 07's tables, figure and sentences about the CCP transfer experiment (lipkit.transfer).

Each function turns the experiment's stored dicts (``results/ccp_transfer/zero_shot.json``, the runs'
``scores.json`` through :func:`lipkit.transfer.summary`, ``checkpoints/ccp_deeplabv2/scores.json``)
into a table, a figure or text, so the notebook only loads and shows. Nothing here trains or scores
a whole split: :func:`examples_figure` parses the few photos it shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch import nn

from lipkit.data.ccp import TAG_TABLE, lip_to_ccp, split_ids
from lipkit.labels import CCP, LIP, LabelSet
from lipkit.transfer import ARMS, METRICS, ccp_rows, parse_at
from lipkit.transfer import summary as paired_summary
from lipkit.viz import class_legend, colorize

METRIC_NAMES = {"mean_iou": "mIoU", "silhouette_iou": "silhouette IoU"}


def read_json(path: Path) -> dict[str, Any] | None:
    """A stored results file, or None when it is not there (an experiment not run yet)."""
    return json.loads(Path(path).read_text()) if Path(path).is_file() else None


def mapping_frame() -> pd.DataFrame:
    """Per ccp class: the CCP tags that make it and the LIP classes mapped onto it (zero-shot and init rows)."""
    rows = ccp_rows()
    return pd.DataFrame({
        "CCP tags": [", ".join(t.tag for t in TAG_TABLE if t.target == c) for c in CCP.classes],
        "LIP classes (zero-shot map; their rows' mean initialises the class)": [", ".join(rows[c]) for c in CCP.classes],
    }, index=pd.Index(CCP.classes, name="ccp class"))


def _column(scores: Mapping[str, Any]) -> dict[str, float]:
    per_class = {c: 100 * v if v is not None else math.nan for c, v in scores["iou"].items()}
    return {**per_class, "mIoU": 100 * scores["mean_iou"], "silhouette IoU": 100 * scores["silhouette_iou"]}


def zero_shot_frame(report: Mapping[str, Any], ccp_model: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """IoU (%) per ccp class, mIoU and silhouette IoU of the zero-shot report (and the shipped CCP model's, if any)."""
    h = report["train_height"]["height"]
    columns = {f"SynthLIP, parsed at {h} px": _column(report["train_height"]),
               "SynthLIP, native size": _column(report["native"])}
    if "mapped_init" in report:
        columns["mapped rows, no CCP step"] = _column(report["mapped_init"])
    if ccp_model is not None:
        columns[f"trained on CCP, parsed at {ccp_model['full_size']['height']} px"] = _column(ccp_model["full_size"])
    return pd.DataFrame(columns).rename_axis(f"full-size val, {report['num_images']} photos (%)").round(1)


def zero_shot_bars(report: Mapping[str, Any]) -> Figure:
    """Per-class IoU (%) of the zero-shot report at the training height and at native size, as bars."""
    frame = zero_shot_frame(report).iloc[:, :2]
    fig = Figure(figsize=(7.5, 3.2), layout="constrained")
    ax = fig.subplots()
    x, width = np.arange(len(frame)), 0.4
    for k, (name, color) in enumerate(zip(frame.columns, ("tab:blue", "tab:gray"))):
        ax.bar(x + (k - 0.5) * width, frame[name].fillna(0).to_numpy(), width, label=name, color=color)
    ax.axvline(len(frame) - 2.5, color="0.6", linewidth=0.8)
    ax.set_xticks(x, frame.index, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("IoU on full-size val (%)")
    ax.set_title(f"SynthLIP DeepLabV2 on {report['num_images']} real CCP val photos, no CCP training", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return fig


def transfer_frame(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per seed: each arm's full-size val score and the paired difference (points)."""
    columns = {}
    for metric in METRICS:
        for arm in ARMS:
            columns[(METRIC_NAMES[metric], arm)] = [r[f"{arm}_{metric}"] for r in summary["seeds"]]
        columns[(METRIC_NAMES[metric], "synthlip - scratch")] = [r[f"diff_{metric}"] for r in summary["seeds"]]
    return pd.DataFrame(columns, index=pd.Index([r["seed"] for r in summary["seeds"]], name="seed")).round(2)


def transfer_sentences(summary: Mapping[str, Any] | None) -> list[str]:
    """The paired result in words: each metric's mean difference, 95 % interval and smallest detectable difference."""
    if not summary or not summary["n"]:
        return ["The transfer runs have not been run yet: `python -m lipkit transfer --prepare`, then "
                "`python -m lipkit transfer --shard 1/2 & python -m lipkit transfer --shard 2/2; wait`."]
    out = []
    for metric in METRICS:
        iv, det = summary[metric]["interval"], summary[metric]["smallest_detectable"]
        if summary["n"] < 2:
            out.append(f"{METRIC_NAMES[metric]}: synthlip - scratch {iv['mean']:+.2f} points on 1 seed (no interval).")
            continue
        ci = f"95% CI {iv['lower']:+.2f} to {iv['upper']:+.2f}, {iv['n']} seeds"
        verdict = ("higher from SynthLIP" if iv["lower"] > 0 else "lower from SynthLIP" if iv["upper"] < 0
                   else f"no difference detected; the smallest the seeds could detect at 80% power: {det:.2f} points")
        out.append(f"{METRIC_NAMES[metric]}: synthlip - scratch {iv['mean']:+.2f} points ({ci}): {verdict}.")
    return out


def extremes(per_image: Mapping[str, Sequence[Any]], k: int = 2) -> list[tuple[str, float]]:
    """The ``k`` best then the ``k`` worst photos by silhouette IoU, as (id, IoU)."""
    pairs = sorted(zip(per_image["ids"], per_image["silhouette_iou"]), key=lambda p: (-p[1], p[0]))
    return pairs[:k] + pairs[-k:] if len(pairs) > 2 * k else pairs


def examples_figure(model: nn.Module, label_set: LabelSet, items: Sequence[Mapping[str, Any]], height: int | None,
                    scores: Sequence[float], title: str = "") -> Figure:
    """Per photo a row: the photo, CCP's ground truth, the model's parse (LIP mapped to ccp) at ``height`` px."""
    fig = Figure(figsize=(6.0, 2.9 * len(items)), layout="constrained")
    axes = fig.subplots(len(items), 3, squeeze=False)
    preds = []
    for row, (item, score) in zip(axes, zip(items, scores)):
        pred = parse_at(model, item["image"], height, label_set)
        preds.append(lip_to_ccp(pred) if label_set.name == LIP.name else pred)
        for ax, image, name in zip(row, (item["image"], colorize(item["label"], CCP), colorize(preds[-1], CCP)),
                                   (f"photo {item['id']}", "CCP ground truth", f"parsed: silhouette IoU {100 * score:.0f}%")):
            ax.imshow(image, interpolation="nearest")
            ax.set_title(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    class_legend(fig, [it["label"] for it in items] + preds, CCP, ncols=5)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def what_this_shows(report: Mapping[str, Any], summary: Mapping[str, Any] | None,
                    ccp_model: Mapping[str, Any] | None, train_images: int) -> list[str]:
    """The closing sentences, every number from the stored results."""
    zs, native = report["train_height"], report["native"]
    lines = [f"Shown: a network trained only on SynthLIP parses {report['num_images']} real CCP val photos with a "
             f"silhouette IoU of {100 * zs['silhouette_iou']:.1f}% and a mIoU of {100 * zs['mean_iou']:.1f}% over "
             f"{CCP.num_classes} classes when the photo is resized to its training height ({zs['height']} px), and "
             f"{100 * native['silhouette_iou']:.1f}% / {100 * native['mean_iou']:.1f}% at the photo's own size: "
             "the scale a network learnt matters as much as what it learnt."]
    if summary and summary["n"]:
        lines.append(f"Transfer: {summary['n']} seeds x {len(ARMS)} arms, {', '.join(f'{s:,}' for s in summary['steps'])} steps "
                     f"each on {train_images} CCP train photos; " + " ".join(transfer_sentences(summary)))
    else:
        lines.append(transfer_sentences(summary)[0])
    if ccp_model is not None:
        lines.append(f"The shipped CCP model ({ccp_model['run']}, chosen on the same val split, so its score is a "
                     f"little optimistic): silhouette IoU {100 * ccp_model['full_size']['silhouette_iou']:.1f}%, "
                     f"mIoU {100 * ccp_model['full_size']['mean_iou']:.1f}%.")
    lines.append("Not shown: anything about the structure-sensitive loss (CCP has no left/right, so no mirror pair "
                 "to confuse), about real LIP (CCP is one main person per photo, upright, full body, on a street), or about "
                 "large networks (a ResNet-18 at width 0.25, from scratch, on a CPU budget). Val (100 photos) is the "
                 "only held-out split, and a few classes occur in only 1-5 of its photos, so their IoUs are anecdotes.")
    return lines


def _per_class(scores: Mapping[str, Any]) -> str:
    """Person classes by IoU, highest first (``pants 35.0, coat 29.8, ..., glove and scarf 0``), absent ones left out."""
    pairs = sorted(((c, 100 * v) for c, v in scores["iou"].items() if v is not None and c != CCP.classes[0]),
                   key=lambda p: (-round(p[1], 1), p[0]))
    shown = [f"{c.lower()} {v:.1f}" for c, v in pairs if round(v, 1) > 0]
    zeros = [c.lower() for c, v in pairs if round(v, 1) == 0]
    if zeros:
        shown.append((", ".join(zeros[:-1]) + " and " if len(zeros) > 1 else "") + f"{zeros[-1]} 0")
    return ", ".join(shown)


def readme_lines(report: Mapping[str, Any], summary: Mapping[str, Any] | None,
                 ccp_model: Mapping[str, Any] | None, train_images: int) -> list[str]:
    """The README's generated "Real photos" results (``<!-- ccp:results -->``), every number from the stored files."""
    zs, native = report["train_height"], report["native"]
    lines = [f"- **Zero-shot, the synthetic-to-real gap** (`python -m lipkit transfer --zero-shot`, "
             f"`results/ccp_transfer/zero_shot.json`): the shipped SynthLIP DeepLabV2 on the {report['num_images']} "
             "full-size val photos, its LIP labels mapped onto CCP's (face, arms, legs -> Skin; both shoes -> Shoes), "
             f"scored at the photo's size. Parsed at its training height ({zs['height']} px, `predict`'s default): "
             f"**{100 * zs['mean_iou']:.1f} % mIoU, {100 * zs['silhouette_iou']:.1f} % silhouette IoU** (any person "
             f"class against CCP's person pixels); at the photos' own size: {100 * native['mean_iou']:.1f} % and "
             f"{100 * native['silhouette_iou']:.1f} %. Per class at {zs['height']} px: {_per_class(zs)}."]
    if summary and summary["n"]:
        lines.append(f"- **Does SynthLIP pretraining help on real photos?** `python -m lipkit transfer` trained DeepLabV2 "
                     f"on the {train_images} CCP train photos from scratch and from the shipped SynthLIP weights (trunk, "
                     f"ASPP, and the classifier rows of mapped classes), {', '.join(f'{s:,}' for s in summary['steps'])} steps, "
                     f"same batches, {summary['n']} seeds, paired; scored on the full-size val photos. "
                     + " ".join(transfer_sentences(summary)) + " Measured at this step budget: it says nothing "
                     "about how the gap behaves with longer training.")
    else:
        lines.append("- **Does SynthLIP pretraining help on real photos?** " + transfer_sentences(summary)[0])
    if ccp_model is not None:
        full = ccp_model["full_size"]
        lines.append(f"- **A real-photo model ships** as `checkpoints/ccp_deeplabv2/` (run {ccp_model['run']}, chosen "
                     "by val mIoU on the small copy, so its val scores are a little optimistic): with `predict`'s "
                     f"defaults on the {full['num_images']} full-size val photos, **{100 * full['silhouette_iou']:.1f} % "
                     f"silhouette IoU, {100 * full['mean_iou']:.1f} % mIoU**; per class: {_per_class(full)}. "
                     "`python -m lipkit predict photo.jpg --checkpoint checkpoints/ccp_deeplabv2/model.pt` parses "
                     "your own photo.")
    return lines


def readme_block(results: Path, shipped_scores: Path) -> list[str]:
    """:func:`readme_lines` from the stored files: ``results`` (zero_shot.json, the runs) and the shipped model's scores."""
    report = read_json(Path(results) / "zero_shot.json")
    if report is None:
        raise FileNotFoundError(f"{Path(results) / 'zero_shot.json'} is missing: run `python -m lipkit transfer --zero-shot`")
    return readme_lines(report, paired_summary(results), read_json(shipped_scores), train_images=len(split_ids("train")))


__all__ = ["METRIC_NAMES", "examples_figure", "extremes", "mapping_frame", "read_json", "readme_block", "readme_lines", "transfer_frame",
           "transfer_sentences", "what_this_shows", "zero_shot_bars", "zero_shot_frame"]
