"""Provenance of the shipped PASCAL-Person-Part baseline (``checkpoints/synthlip_pascal_deeplabv2/``), as
tests/test_checkpoints.py checks the LIP ones: small and complete, its config is a recipe lipkit names (the
synthlip recipe's baseline stage, or the PASCAL study's base stage, shipped with ``pretrain --run``), its
config re-run reproduces its log, its stored file reproduces its scores.

Parametrized over that folder: until it is shipped (``python -m lipkit pretrain --profile synthlip-pascal``)
every test reports "got empty parameter set"; once it exists they run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from configdiff import comparable
import torch

from lipkit import paths, pretrain, study
from lipkit import recipe as rc
from lipkit.data import open_split
from lipkit.evaluate import evaluate
from lipkit.training import SHIPPED_FORMAT, TrainConfig, fit, load_checkpoint_file, load_model_from_checkpoint

PASCAL = rc.SYNTHLIP_PASCAL
SHIPPED = [d for d in (pretrain.shipped_dir("deeplabv2", PASCAL),) if (d / "model.pt").is_file()]
LOG_LINES = 1  # training log lines re-run (log_every steps, as tests/test_checkpoints.py)


@pytest.fixture(scope="module")
def pascal_data() -> Path:
    """The PASCAL twin of the synthlip profile's SynthLIP (generated once; about 1.5 min on 2 cores)."""
    return rc.ensure_synthlip(PASCAL)


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_pascal_files_are_small_complete_and_from_a_named_recipe(folder, monkeypatch):
    for name in ("model.pt", "config.yaml", "metrics.jsonl", "scores.json"):
        assert (folder / name).stat().st_size < 4 * 2**20, f"{folder / name} is over 4 MB"
    stored = TrainConfig.from_yaml(folder / "config.yaml")
    monkeypatch.setattr(rc, "ensure_synthlip", lambda r: paths.synthlip_root(r.synth_name))  # configs only: no data
    recipes = [pretrain.pretrain_config("deeplabv2", PASCAL), study.base_config("deeplabv2", PASCAL)]
    assert comparable(stored) in [comparable(c) for c in recipes]
    assert stored.data.label_set == "pascal-person-part" and stored.data.root.endswith("-pascal")
    ckpt = load_checkpoint_file(folder / "model.pt")
    assert ckpt["format"] == SHIPPED_FORMAT and ckpt["config"] == stored.to_dict()
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())
    train = [x for x in (json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()) if x["kind"] == "train"]
    assert train[-1]["step"] == stored.iterations == ckpt["step"]
    scores = json.loads((folder / "scores.json").read_text())
    assert scores["step"] == stored.iterations and scores.get("machine")
    for name in ("val", *(f"val_seed{k}" for k in pretrain.OTHER_SEEDS)):
        assert scores[name]["num_images"] == PASCAL.synth_val and scores[name]["data_root"].endswith("-pascal")
        assert scores[name]["left_right_confusion"] == {}  # PASCAL's parts have no left/right


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_pascal_config_rerun_reproduces_the_logged_losses(folder, pascal_data, tmp_path, restore_threads):
    config = TrainConfig.from_yaml(folder / "config.yaml")
    assert paths.REPO_ROOT / config.data.root == pascal_data
    config.out_dir, config.progress = str(tmp_path / "rerun"), False
    fit(config, stop_after=LOG_LINES * config.log_every)
    rerun = [json.loads(x) for x in (tmp_path / "rerun" / "metrics.jsonl").read_text().splitlines()]
    logged = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()][:LOG_LINES]
    exact_keys, float_keys = ("kind", "step", "epoch", "lr", "images"), ("loss", "ce", "joint_error")
    assert [{k: x[k] for k in exact_keys} for x in rerun] == [{k: x[k] for k in exact_keys} for x in logged]
    values, expected = ([[x[k] for k in float_keys] for x in log] for log in (rerun, logged))
    if json.loads((folder / "scores.json").read_text()).get("machine") == pretrain.machine():
        assert values == expected  # bit for bit on the CPU that trained it
    else:  # other CPU kernels round differently from the first step on
        assert values == [pytest.approx(row, rel=5e-3) for row in expected]


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_pascal_file_reproduces_its_stored_scores_and_height(folder, pascal_data, restore_threads):
    model, config = load_model_from_checkpoint(folder / "model.pt")
    torch.set_num_threads(config.threads or torch.get_num_threads())
    val = open_split(pascal_data, "val", config.data.label_set)
    scores = evaluate(model, val, label_set=config.data.label_set, max_images=pretrain.SUBSET_IMAGES, progress=False)
    assert json.loads(json.dumps(scores)) == json.loads((folder / "scores.json").read_text())["val_subset"]
    height = pretrain.median_height(open_split(pascal_data, "train", config.data.label_set))
    assert load_checkpoint_file(folder / "model.pt")["train_image_height"] == height
