"""The paper profile rehearsed on a CPU, so that a researcher's first GPU run is not its first run.

``python -m lipkit reproduce --profile paper --data-root ROOT --rehearse`` runs the paper profile's
notebooks with the paper's models (DeepLabV2 ResNet-101, Attention-to-Scale VGG-16), configs, crops,
batch size, loss modes, data loaders (their worker count included) and evaluation code, and caps
only what makes the real run long (:data:`CAPS`: training steps per run and scored val images), with
the device forced to the CPU and torch's threads set to this machine's cores. ROOT is real LIP or a
LIP-scale SynthLIP in the official layout (``python -m lipkit synth ROOT --train 30462 --val 10000
--test 10000 --layout official``).

Paths the real run takes and the rehearsal takes too: the ImageNet initialisation (``PRETRAINED``
is a folder of torchvision-format checkpoints of random weights, written here since nothing can be
downloaded), every run folder and checkpoint, resume (the first baseline is interrupted after one
step, and notebook 02 resumes it), the SSL study at the paper's recipe (its bases are notebook
02's baselines; :data:`STUDY_ARMS` at seed 0), after which notebooks 03-05 run again and read it,
and evaluation at the original size (with the flip test on the study's SSL model at the end). Each
run's measured seconds per step and the projected GPU time of the full profile, from the rates measured
on an H100 in ``benchmarks/gpu_results.md``, are reported with its peak memory.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lipkit import paths, pipeline, study
from lipkit.data import LIPDataset
from lipkit.evaluate import evaluate
from lipkit.models import build_backbone
from lipkit.models.pretrained import imagenet_filename
from lipkit.recipe import Recipe, baseline_config, profile_recipe, rel
from lipkit.stats import markdown_table
from lipkit.training import TrainConfig, atomic_write_bytes, fit, load_model_from_checkpoint

PROFILE = "paper-rehearsal"  # runs/paper-rehearsal/, figures/paper-rehearsal/
CAPS = {"BASE_STEPS": 2, "ATTENTION_BASE_STEPS": 1, "FT_STEPS": 1, "VAL_IMAGES": 20}  # what the rehearsal caps
GPU_RESULTS = paths.REPO_ROOT / "benchmarks" / "gpu_results.md"
STUDY_ARMS = ("control", "paper", "attention_control", "attention_paper")  # each loss mode on each network, once
STUDY_NOTEBOOKS = ("03", "04", "05")  # the notebooks that read the study
MODEL_NAMES = {("deeplabv2", "resnet101"): "DeepLabV2 ResNet-101", ("attention", "vgg16"): "Attention-to-Scale VGG-16"}

# The ImageNet classification heads of torchvision's checkpoints (dropped on loading; written so the
# files have torchvision's exact keys and shapes).
IMAGENET_HEADS: dict[str, dict[str, tuple[int, ...]]] = {
    **{name: {"fc.weight": (1000, c), "fc.bias": (1000,)}
       for name, c in (("resnet18", 512), ("resnet34", 512), ("resnet50", 2048), ("resnet101", 2048))},
    "vgg16": {"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,), "classifier.3.weight": (4096, 4096),
              "classifier.3.bias": (4096,), "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)},
}


def calibrated_backbone(name: str, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised backbone whose BatchNorm running statistics are those of its own activations.

    ImageNet checkpoints carry statistics that normalise; a fresh layer's (mean 0, variance 1) do not,
    and with BatchNorm frozen (the paper's DeepLab practice) 101 unnormalised layers overflow to NaN
    within two steps. One pass in training mode over noise images sets them (momentum None: the mean).
    """
    torch.manual_seed(seed)
    net = build_backbone(name)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        for m in norms:
            m.momentum = None
        with torch.no_grad():
            net.train()(torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(seed)))
    return net.eval()


def write_random_imagenet(folder: Path, backbones: set[str], seed: int = 0) -> Path:
    """``folder/<torchvision file name>`` for each backbone: its exact keys and shapes, random values."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(backbones):
        path = folder / imagenet_filename(name)
        if path.is_file():
            continue
        state = dict(calibrated_backbone(name, seed).state_dict())
        state.update({k: torch.randn(shape) * 0.01 for k, shape in IMAGENET_HEADS[name].items()})
        atomic_write_bytes(path, lambda fh, s=state: torch.save(s, fh))
    return folder


def rehearsal_recipe(data_root: str | Path, pretrained: Path, caps: Mapping[str, Any] = CAPS,
                     overrides: Mapping[str, Any] | None = None) -> Recipe:
    """The paper recipe with the caps, the CPU, this machine's threads and the random ImageNet folder."""
    changes = {k.lower(): v for k, v in {**caps, **(overrides or {})}.items()}
    return profile_recipe("paper").replace(profile=PROFILE, data_root=str(data_root), device="cpu",
                                           threads=os.cpu_count() or 1, pretrained=str(pretrained), **changes)


def notebook_overrides(recipe: Recipe) -> dict[str, Any]:
    """The notebook parameters (capitals) where the rehearsal recipe differs from the paper profile's."""
    paper, mine = profile_recipe("paper").parameters(), recipe.parameters()
    return {k: v for k, v in mine.items() if paper[k] != v and k != "DATA_ROOT"}


def _fit_one_step(config: dict) -> None:
    fit(config, stop_after=1)


def _in_fresh_process(target, args: tuple, what: str) -> None:
    """Run ``target(*args)`` in a spawned process: a ResNet-101 step at batch 10 peaks near 9 GB here,
    and the notebook kernels forked afterwards must not start from that."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{what} failed with exit code {process.exitcode}")


def interrupt_first_baseline(recipe: Recipe) -> TrainConfig:
    """Train the first DeepLabV2 baseline for one step and stop with its checkpoint: notebook 02 resumes it."""
    config = baseline_config(recipe, "deeplabv2", 0).with_overrides(["checkpoint_every=1", "progress=false"])
    _in_fresh_process(_fit_one_step, (config.to_dict(),), f"the interrupted first baseline ({config.out_dir})")
    return config


def _train_study(recipe: Recipe) -> None:
    for arch in sorted({study.ARMS[a].arch for a in STUDY_ARMS}):
        study.train_base(arch, recipe)
    for arm in STUDY_ARMS:
        study.run_one(arm, 0, recipe=recipe)


def rehearse_study(recipe: Recipe) -> Path:
    """``study --profile paper`` in miniature: :data:`STUDY_ARMS` at seed 0 from the baselines; returns its folder."""
    _in_fresh_process(_train_study, (recipe,), f"the SSL study ({rel(study.study_dir(recipe))})")
    return study.study_dir(recipe)


def paper_runs() -> dict[str, TrainConfig]:
    """The configs of the full paper profile by training folder, relative to ``runs/paper`` (what the
    projection multiplies): the baselines (also the SSL study's bases), then every planned run of the study."""
    paper = profile_recipe("paper").replace(data_root=str(paths.REPO_ROOT))
    configs = [baseline_config(paper, arch, seed) for seed in range(paper.seeds) for arch in ("deeplabv2", "attention")]
    configs += [study.arm_config(arm, seed, recipe=paper) for arm, seed in study.planned_runs()]
    root = paths.run_dir("paper")
    return {paths.resolve(c.out_dir).relative_to(root).as_posix(): c for c in configs}


def gpu_rates(path: Path = GPU_RESULTS) -> dict[str, float]:
    """Training images/s (bf16, full step) per model name from the H100 table of gpu_results.md."""
    rates = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[1].startswith("bench_train") and re.fullmatch(r"[\d.]+", cells[3]):
            rates[cells[0]] = float(cells[3])
    return rates


def run_table(runs_dir: Path) -> pd.DataFrame:
    """Per run folder: measured s/step here, peak memory, and the projected GPU time of the full run."""
    full, rates, rows = paper_runs(), gpu_rates(), []
    folders = [*runs_dir.iterdir(), *(runs_dir / study.STUDY_NAME / "train").glob("*")]
    for folder in sorted(p for p in folders if (p / "metrics.jsonl").is_file()):
        config = TrainConfig.from_yaml(folder / "config.yaml")
        lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
        train = [x for x in lines if x["kind"] == "train"]
        model = MODEL_NAMES.get((config.model.arch, config.model.backbone), f"{config.model.arch} {config.model.backbone}")
        name = folder.relative_to(runs_dir).as_posix()  # e.g. baseline_deeplabv2_s0, ssl_study/train/paper_s0
        real = full.get(name)
        steps = real.iterations if real is not None else None
        rate = rates.get(model)
        rows.append({"run": name, "model": model, "steps here": train[-1]["step"] if train else 0,
                     "CPU s/step": round(config.batch_size / train[-1]["img_per_s"], 1) if train else None,
                     "peak RSS MB": train[-1].get("peak_rss_mb") if train else None, "full-run steps": steps,
                     "projected H100 hours": round(steps * config.batch_size / rate / 3600, 2) if steps and rate else None})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


@dataclasses.dataclass
class RehearsalReport:
    summary: pipeline.RunSummary
    runs: pd.DataFrame
    flip_scores: dict | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.summary.ok and self.flip_scores is not None

    def text(self) -> str:
        projected = self.runs["projected H100 hours"].sum() if len(self.runs) else 0.0
        failure = self.summary.failure
        parts = [self.summary.table(), "", *([f"error: {failure.error}", ""] if failure else []),
                 markdown_table(self.runs) if len(self.runs) else "(no runs)", "",
                 f"projected H100 training time of the full paper profile: {projected:.1f} h (training steps only, "
                 f"bf16 rates of benchmarks/gpu_results.md; evaluation not projected: no GPU evaluation rate measured)"]
        if self.flip_scores is not None:
            s = self.flip_scores
            parts.append(f"flip-test evaluation of the study's SSL model on {s['num_images']} val images at their "
                         f"original size: mIoU {100 * s['mean_iou']:.2f}")
        parts.append(f"rehearsal wall time: {self.seconds / 60:.1f} min")
        return "\n".join(parts)


def flip_evaluation(recipe: Recipe) -> dict | None:
    """The LIP protocol with the flip test on the study's SSL model (the paper's mode on ``SSL_ARCH``):
    original size, mirror classes swapped."""
    arm = "attention_paper" if recipe.ssl_arch == "attention" else "paper"
    checkpoint = paths.resolve(study.arm_config(arm, 0, recipe=recipe).out_dir) / "last.pt"
    if not checkpoint.is_file():
        return None
    model, _ = load_model_from_checkpoint(checkpoint, device="cpu")
    val = LIPDataset(recipe.data_root, "val")
    return evaluate(model, val, flip=True, max_images=recipe.val_images or None, progress=False)


def rehearse(data_root: str | Path, caps: Mapping[str, Any] = CAPS, overrides: Mapping[str, Any] | None = None,
             log=print) -> RehearsalReport:
    """Run the rehearsal (a fresh ``runs/paper-rehearsal/``); ``overrides`` shrink it further (tests)."""
    start = time.perf_counter()
    runs_dir = paths.run_dir(PROFILE)
    shutil.rmtree(runs_dir, ignore_errors=True)
    pretrained = paths.DATA_DIR / "imagenet-random"
    recipe = rehearsal_recipe(data_root, pretrained, caps, overrides)
    write_random_imagenet(pretrained, {recipe.backbone, recipe.attention_backbone})
    log(f"[{PROFILE}] random ImageNet weights in {rel(pretrained)}; interrupting the first baseline after 1 step")
    interrupt_first_baseline(recipe)
    run = functools.partial(pipeline.reproduce, "paper", data_root=data_root, params=notebook_overrides(recipe),
                            runs_dir=runs_dir, figures_dir=paths.figures_dir(PROFILE), log=log)
    summary = run()  # notebooks 03-05 find no study yet: the path a user meets first
    if summary.ok:
        log(f"[{PROFILE}] the SSL study in miniature from the baselines: {', '.join(STUDY_ARMS)} (seed 0); "
            f"then notebooks {', '.join(STUDY_NOTEBOOKS)} again, reading it")
        rehearse_study(recipe)
        again = run(only=STUDY_NOTEBOOKS)
        summary.results += [dataclasses.replace(r, notebook=f"{r.notebook} (study read)") for r in again.results]
    flip = flip_evaluation(recipe) if summary.ok else None
    return RehearsalReport(summary, run_table(runs_dir), flip, time.perf_counter() - start)


__all__ = ["CAPS", "PROFILE", "STUDY_ARMS", "STUDY_NOTEBOOKS", "RehearsalReport", "flip_evaluation", "gpu_rates", "notebook_overrides",
           "paper_runs", "rehearsal_recipe", "rehearse", "rehearse_study", "run_table", "write_random_imagenet"]
