"""``make pretrain``: train the SynthLIP baselines from scratch and ship them in ``checkpoints/``.

The paper fine-tunes a pretrained network with SSL; lipkit's cpu profile does the same, from small
networks trained once on SynthLIP (the ``synthlip`` profile, :data:`SYNTHLIP`) and committed:

``runs/synthlip/baseline_<arch>_s0/``  the training run (``fit`` with exact resume: an interrupted
                                       ``make pretrain`` continues where it stopped)
``checkpoints/synthlip_<arch>/``       what ships: ``model.pt`` (fp16 weights + config, < 4 MB,
                                       loaded back to fp32), ``config.yaml``, ``metrics.jsonl`` (the
                                       training log) and ``scores.json``

``scores.json`` is computed from the stored fp16 file, not the fp32 weights that trained: all val
images of the cpu profile's SynthLIP split (LIP_SSL rule), the val split of SynthLIP generated
with another seed (the model must be a model of the generator, not of one split), and the first
:data:`SUBSET_IMAGES` val images (what ``tests/test_checkpoints.py`` re-scores exactly).

Every function takes a ``recipe`` (default the synthlip profile's): ``recipe.SYNTHLIP_PASCAL`` trains and ships
the same way on SynthLIP written with PASCAL-Person-Part's labels, into ``checkpoints/synthlip_pascal_<arch>/``
(``python -m lipkit pretrain --profile synthlip-pascal``; ``--run DIR`` ships another finished run, such as the
PASCAL study's base stage, in its place).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lipkit import paths
from lipkit import recipe as rc
from lipkit.data import SegmentationDataset, open_split
from lipkit.evaluate import evaluate
from lipkit.models import ARCHS
from lipkit.training import TrainConfig, atomic_write_text, fit, load_model_from_checkpoint, save_shipped

SUBSET_IMAGES = 40  # val images the provenance test re-scores
OTHER_SEED = 1  # SynthLIP seed of the second val split (the search scores on it too)
OTHER_SEEDS = (1, 7, 4242)  # SynthLIP seeds whose val splits judge a shipped baseline (not the recipe's seed 0)


def _recipe(recipe: rc.Recipe | None) -> rc.Recipe:
    return recipe if recipe is not None else rc.profile_recipe("synthlip")


def shipped_dir(arch: str, recipe: rc.Recipe | None = None) -> Path:
    """``checkpoints/synthlip_<arch>``; another recipe's: ``checkpoints/<profile, - as _>_<arch>``."""
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r}: shipped baselines exist for {', '.join(ARCHS)}")
    profile = _recipe(recipe).profile
    return paths.shipped_dir(arch) if profile == "synthlip" else paths.CHECKPOINTS_DIR / f"{profile.replace('-', '_')}_{arch}"


def pretrain_config(arch: str, recipe: rc.Recipe | None = None) -> TrainConfig:
    """The TrainConfig ``make pretrain`` runs for ``arch``: the synthlip recipe's baseline stage (or ``recipe``'s)."""
    return rc.baseline_config(_recipe(recipe), arch, seed=0)


def machine() -> dict[str, str]:
    """What decides whether a CPU re-run is bit-exact: torch's version and kernel ISA, and the processor."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "processor": platform.processor() or platform.machine()}


def median_height(dataset: SegmentationDataset) -> int:
    """The median height of a split's images (read from the file headers): the scale ``predict`` parses at."""
    heights = []
    for i in range(len(dataset)):
        with Image.open(dataset.image_path(i)) as im:
            heights.append(im.size[1])
    return int(np.median(heights))


# ------------------------------------------------------------------------------------------ scores
def val_roots(other_seeds: tuple[int, ...] = OTHER_SEEDS, recipe: rc.Recipe | None = None) -> dict[str, Path]:
    """The val splits a model is scored on: the training data's (``val``), and ``val_seed<k>`` of other seeds.

    The recipe was chosen on seed 0's val split, so a shipped baseline is judged on the others (the
    mean over :data:`OTHER_SEEDS`); SynthLIP renders each image from (seed, split, index), so these
    are new people, poses and scenes from the same generator.
    """
    recipe = _recipe(recipe)
    roots = {"val": rc.ensure_synthlip(recipe)}
    for seed in other_seeds:
        roots[f"val_seed{seed}"] = rc.ensure_synthlip(recipe.replace(synth_train=16, synth_seed=seed))
    return roots


def score_shipped(dest: Path, progress: bool = False, recipe: rc.Recipe | None = None) -> dict[str, Any]:
    """Scores of ``dest/model.pt`` (see the module docstring); the dict ``scores.json`` holds."""
    model, config = load_model_from_checkpoint(dest / "model.pt")
    if config.threads:
        torch.set_num_threads(config.threads)
    out: dict[str, Any] = {"step": None}
    for name, root in val_roots(recipe=recipe).items():
        val = open_split(root, "val", config.data.label_set)
        out[name] = evaluate(model, val, label_set=config.data.label_set, progress=progress)
        out[name]["data_root"] = rc.rel(root)
        if name == "val":
            out["val_subset"] = evaluate(model, val, max_images=SUBSET_IMAGES, label_set=config.data.label_set,
                                         progress=False)
    return out


def ship(arch: str, run_dir: Path | None = None, progress: bool = False, recipe: rc.Recipe | None = None) -> Path:
    """Copy a finished run (default the recipe's baseline run) into :func:`shipped_dir` and score the stored file."""
    run_dir = Path(run_dir) if run_dir else paths.resolve(pretrain_config(arch, recipe).out_dir)
    scores_path = run_dir / "scores.json"
    if not scores_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no scores.json: its training has not finished (make pretrain resumes it)")
    config = TrainConfig.from_yaml(run_dir / "config.yaml")
    dest = shipped_dir(arch, recipe)
    train = open_split(paths.resolve(config.data.root), config.data.train_split, config.data.label_set)
    save_shipped(run_dir / "last.pt", dest / "model.pt", {"train_image_height": median_height(train)})
    atomic_write_text(dest / "config.yaml", config.to_yaml())  # every key
    shutil.copyfile(run_dir / "metrics.jsonl", dest / "metrics.jsonl")
    scores = score_shipped(dest, progress=progress, recipe=recipe)
    scores["step"] = json.loads(scores_path.read_text())["step"]
    scores["machine"] = machine()  # where a re-run of the config reproduces the log bit for bit
    atomic_write_text(dest / "scores.json", json.dumps(scores, indent=1) + "\n")
    return dest


def pretrain(archs: tuple[str, ...] = ARCHS, progress: bool = True, parallel: bool = True,
             recipe: rc.Recipe | None = None) -> list[Path]:
    """Train (resuming) each baseline of the synthlip profile (or ``recipe``, a profile the CLI names), then ship it.

    The recipe trains each network on one thread (exactly reproducible, and the provenance test
    re-runs it on one thread), so with ``parallel`` the networks train side by side, one process each.
    """
    rc.ensure_synthlip(_recipe(recipe))  # once, before the processes start
    if parallel and len(archs) > 1:
        profile = [] if recipe is None else ["--profile", recipe.profile]
        procs = [subprocess.Popen([sys.executable, "-m", "lipkit", "pretrain", "--arch", arch, "--serial", *profile]
                                  + ([] if progress else ["--quiet"])) for arch in archs]
        codes = [p.wait() for p in procs]
        failed = [a for a, c in zip(archs, codes) if c]
        if failed:
            raise RuntimeError(f"pretraining failed for {', '.join(failed)}; `make pretrain` resumes where it stopped")
        return [shipped_dir(a, recipe) for a in archs]
    shipped = []
    for arch in archs:
        config = pretrain_config(arch, recipe)
        config.progress = progress
        fit(config, resume=True)
        shipped.append(ship(arch, progress=progress, recipe=recipe))
    return shipped


__all__ = ["OTHER_SEED", "OTHER_SEEDS", "machine", "val_roots", "SUBSET_IMAGES", "pretrain", "pretrain_config", "score_shipped", "ship", "shipped_dir"]
