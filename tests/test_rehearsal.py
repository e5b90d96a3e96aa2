"""A miniature of the paper-path rehearsal (``reproduce --profile paper --rehearse``), so the paper
path cannot silently break: tens of images in LIP's official layout, one or two steps per run, the
paper profile's notebooks, run folders, random-ImageNet initialisation, resume and flip evaluation.

The networks are shrunk (ResNet-18 for both, crop 65, batch 2) through ``--param``; everything else
is the paper profile's. A fresh home (LIPKIT_HOME) keeps it away from the repository's runs/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import yaml

from lipkit import paths, rehearsal, study
from lipkit.recipe import profile_recipe
from lipkit.data.synth import make_synthlip

REPO = paths.REPO_ROOT
SHRINK = ["BACKBONE=resnet18", "ATTENTION_BACKBONE=resnet18", "CROP_SIZE=65", "BATCH_SIZE=2", "WORKERS=2"]


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for shipped in ("notebooks", "configs", "checkpoints", "results"):
        shutil.copytree(REPO / shipped, home / shipped, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (home / "benchmarks").mkdir()
    shutil.copy2(REPO / "benchmarks" / "gpu_results.md", home / "benchmarks" / "gpu_results.md")
    return home


@pytest.mark.slow  # every notebook of the paper profile once: about 1.5 minutes on 2 cores
def test_paper_rehearsal_miniature_runs_every_notebook_and_reports(tmp_path: Path) -> None:
    data = make_synthlip(tmp_path / "LIP", 12, 6, 4, size_range=(100, 160), layout="official", progress=False, workers=2)
    home = _home(tmp_path)
    env = {**os.environ, "LIPKIT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "lipkit", "reproduce", "--profile", "paper", "--data-root", str(data), "--rehearse"]
    for p in SHRINK:
        args += ["--param", p]
    done = subprocess.run(args, cwd=str(home), env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = done.stdout
    runs = home / "runs" / rehearsal.PROFILE
    notebooks = sorted(p.name for p in (home / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks and all((runs / nb).is_file() for nb in notebooks)  # every notebook ran, executed copies kept
    assert "resuming an interrupted run" in (runs / "02_baseline_training.ipynb").read_text()  # the resume path
    full = rehearsal.paper_runs()
    rehearsed = [n for n in full if not n.startswith("ssl_study/")]  # every baseline folder of the paper profile
    rehearsed += [f"ssl_study/train/{arm}_s0" for arm in rehearsal.STUDY_ARMS]
    assert set(rehearsed) <= set(full)
    for name in rehearsed:  # with its checkpoint, config and log, and the study's scored folder
        assert (runs / name / "last.pt").is_file() and (runs / name / "metrics.jsonl").is_file(), name
        config = yaml.safe_load((runs / name / "config.yaml").read_text())
        assert config["device"] == "cpu"
        if name.startswith("baseline_"):  # the ImageNet path
            assert config["model"]["pretrained"] == str(home / "data" / "imagenet-random")
            assert (runs / name / "scores.json").is_file()
        else:  # a study arm: from its base's fp16 weights, scored into ssl_study/<run>/
            arch = "attention" if "attention" in name else "deeplabv2"  # the study's base is notebook 02's baseline
            assert config["init_checkpoint"].endswith(f"baseline_{arch}_s0/model.pt")
            assert config["optim"]["lr"] == profile_recipe("paper").ft_lr and config["optim"]["warmup"] == 0.0
            scores = json.loads((runs / "ssl_study" / Path(name).name / "scores.json").read_text())
            assert scores["num_images"] == 6 and scores["step"] == 1
    assert "4 study runs finished, each scored on 6 val images" in (runs / "03_structure_sensitive_learning.ipynb").read_text()
    assert "03_structure_sensitive_learning.ipynb (study read) | ok" in out  # run again once the study exists
    assert "flip-test evaluation of the study's SSL model on 6 val images" in out
    assert "CPU s/step" in out and "peak RSS MB" in out
    assert any((home / "figures" / rehearsal.PROFILE).glob("*.png"))
    assert not (REPO / "runs" / "paper-rehearsal" / "pipeline.json").is_file() or \
        (REPO / "runs" / "paper-rehearsal" / "pipeline.json").stat().st_mtime < (runs / "pipeline.json").stat().st_mtime


def test_random_imagenet_files_have_torchvision_names_and_keys(tmp_path: Path) -> None:
    folder = rehearsal.write_random_imagenet(tmp_path, {"resnet18"})
    import torch

    state = torch.load(folder / "resnet18-f37072fd.pth", weights_only=True)
    assert state["fc.weight"].shape == (1000, 512) and "layer4.1.bn2.running_var" in state
    from lipkit.models import build_model

    build_model("deeplabv2", "resnet18", 20, pretrained=folder)  # loads strictly through the folder path


def test_projection_reads_the_measured_gpu_rates():
    rates = rehearsal.gpu_rates()
    assert rates["DeepLabV2 ResNet-101"] > 0 and rates["Attention-to-Scale VGG-16"] > 0
    full = rehearsal.paper_runs()
    assert full["baseline_deeplabv2_s0"].iterations == 91380
    assert full["ssl_study/train/attention_paper_s0"].iterations == profile_recipe("paper").ft_steps
    assert len([n for n in full if n.startswith("ssl_study/train/")]) == len(study.planned_runs())


def test_rehearse_refuses_other_profiles(capsys):
    from lipkit.cli import main

    assert main(["reproduce", "--profile", "cpu", "--rehearse"]) == 2
    assert "--profile paper --data-root ROOT" in capsys.readouterr().out
