"""The SSL study's design (lipkit.study): arms differ from the control only in what they say,
every arm of a seed starts from the same base weights with the same batches, shards partition the runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from configdiff import config_diff

from lipkit import paths, study, study_readme
from lipkit import recipe as rc
from lipkit.pretrain import machine
from lipkit.training import TrainConfig, fit
from lipkit.cli import main as cli
from lipkit.labels import LIP


@pytest.mark.parametrize("arm", [a for a in study.ARMS if a not in ("control", "attention_control")])
def test_an_arm_differs_from_its_control_only_in_its_loss_or_augmentation(arm):
    spec = study.ARMS[arm]
    mine, control = study.arm_config(arm, 3).to_dict(), study.arm_config(study.control_of(arm), 3).to_dict()
    allowed = {"out_dir"} | {f"ssl.{k}" for k in spec.ssl} | {f"data.{k}" for k in spec.data}
    assert config_diff(control, mine) <= allowed and config_diff(control, mine) - {"out_dir"}, arm
    # same base weights, same data order and augmentation seed, same steps and learning rate
    for key in ("init_checkpoint", "seed", "iterations", "batch_size", "optim", "data"):
        if key != "data":
            assert mine[key] == control[key]
    assert mine["init_checkpoint"].endswith(f"base_{spec.arch}/model.pt")


def test_the_branch_starts_at_the_base_rate_and_anneals_and_seeds_change_only_the_data_order():
    base = study.base_config("deeplabv2")
    assert base.optim.schedule == "constant" and base.iterations == study.BASE_STEPS
    run = study.arm_config("paper", 0)
    assert run.optim.lr == base.optim.lr and run.iterations == study.BRANCH_STEPS
    assert run.optim.schedule == study.BRANCH_SCHEDULE == "poly"  # the branch anneals (the first pilot: see study.py)
    assert config_diff(study.arm_config("paper", 0).to_dict(), study.arm_config("paper", 1).to_dict()) == {"seed", "out_dir"}
    assert run.data.val_split == ""  # scored after training, per image, by the one protocol (sigma 1)
    assert study.arm_config("flip_no_swap", 0).data.flip_swap is False and run.data.flip_swap is True


def test_shards_partition_the_planned_runs():
    runs = study.planned_runs()
    assert len(runs) == sum(a.seeds for a in study.ARMS.values()) == len(set(runs))
    for n in (1, 2, 3, 7):
        parts = [study.shard(runs, f"{k}/{n}") for k in range(1, n + 1)]
        assert sorted(r for p in parts for r in p) == sorted(runs)
    assert [s for _, s in runs] == sorted(s for _, s in runs)  # whole seeds first
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ValueError, match="--shard"):
            study.shard(runs, bad)


def test_view_scores_sum_the_selected_images():
    conf = np.zeros((3, LIP.num_classes, LIP.num_classes), np.int64)
    conf[0, 0, 0], conf[0, 5, 5] = 10, 10
    conf[1, 14, 15], conf[1, 15, 15] = 4, 4  # left arm called right arm half the time
    conf[2, 5, 5] = 7
    s = study.view_scores(conf, np.array([0.1, 0.5, 0.3]), np.array([False, True, True]))
    assert s["num_images"] == 2 and s["joint_error"] == pytest.approx(0.4)
    assert s["left_right_confusion"]["Left-arm->Right-arm"] == pytest.approx(1.0)
    np.testing.assert_array_equal(np.array(s["confusion_matrix"]), conf[1] + conf[2])


def test_cli_refuses_unknown_arms_bad_shards_and_steps(capsys):
    assert cli(["study", "nope"]) == 2 and "unknown arm 'nope'" in capsys.readouterr().out
    assert cli(["study", "--shard", "5/2", "--list"]) == 2 and "--shard" in capsys.readouterr().out
    assert cli(["study", "--steps", "0"]) == 2 and "--steps 0" in capsys.readouterr().out
    assert cli(["study", "control", "--list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()][:2] == ["control_s0", "control_s1"]


# ------------------------------------------------------------------ provenance of the shipped study
def _shipped_run(arm: str, seed: int) -> Path:
    folder = study.study_dir() / study.run_name(arm, seed)
    if not (folder / "scores.json").is_file():
        pytest.fail(f"{folder} is missing: the study's results are part of the repository (python -m lipkit study)")
    return folder


@pytest.fixture(scope="module")
def synthlip_data() -> Path:
    """The study's SynthLIP (the synthlip profile's, generated once; about 40 s on 2 cores)."""
    return rc.ensure_synthlip(rc.profile_recipe("synthlip"))


def test_a_shipped_run_is_its_arms_config_and_its_rerun_reproduces_the_logged_losses(synthlip_data, tmp_path):
    folder = _shipped_run("paper", 0)
    stored = TrainConfig.from_yaml(folder / "config.yaml")
    assert config_diff(stored.to_dict(), study.arm_config("paper", 0).to_dict()) <= {"progress"}
    assert paths.REPO_ROOT / stored.data.root == synthlip_data
    threads = torch.get_num_threads()
    stored.out_dir, stored.progress = str(tmp_path / "paper_s0"), False
    try:
        fit(stored, stop_after=2 * stored.log_every)
    finally:
        torch.set_num_threads(threads)
    rerun = [json.loads(x) for x in (tmp_path / "paper_s0" / "metrics.jsonl").read_text().splitlines()]
    logged = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()][:len(rerun)]
    assert len(rerun) == 2 and [x["step"] for x in rerun] == [x["step"] for x in logged]
    values = [[x[k] for k in ("loss", "ce", "joint_error")] for x in rerun]
    expected = [[x[k] for k in ("loss", "ce", "joint_error")] for x in logged]
    if json.loads((folder / "scores.json").read_text()).get("machine") == machine():
        assert values == expected  # bit for bit on the CPU that trained it
    else:  # other CPU kernels round differently from the first step on
        assert values == [pytest.approx(row, rel=5e-3) for row in expected]


def test_the_shipped_base_is_its_config_small_and_every_arm_starts_from_it():
    folder = study.base_weights("deeplabv2").parent
    stored = TrainConfig.from_yaml(folder / "config.yaml")
    assert config_diff(stored.to_dict(), study.base_config("deeplabv2").to_dict()) <= {"progress"}
    total = sum(p.stat().st_size for p in study.study_dir().rglob("*.pt"))
    assert total < 4 * 2**20, f"the study's weights take {total / 2**20:.1f} MB (at most 4 MB in all)"
    assert {p.parent.name for p in study.study_dir().rglob("*.pt")} <= {f"base_{a}" for a in study.SHIPPED_BASES}
    for run in sorted(study.study_dir().glob("*_s*/config.yaml")):
        assert TrainConfig.from_yaml(run).init_checkpoint.endswith(f"base_{study.ARMS[run.parent.name.rsplit('_s', 1)[0]].arch}/model.pt")


def test_the_study_runs_on_the_paper_profile_with_its_own_recipe_and_folder(tmp_path, capsys):
    """--profile paper: the paper's stages (the baseline, then SGD at the fine-tuning rate, constant), under runs/paper/."""
    recipe = rc.profile_recipe("paper").replace(data_root=str(tmp_path))
    base, arm = study.base_config("attention", recipe), study.arm_config("attention_paper", 2, recipe=recipe)
    assert base.to_dict() == rc.baseline_config(recipe, "attention", 0).to_dict()  # notebook 02's run, never trained twice
    assert arm.iterations == recipe.ft_steps == study.stage_steps(recipe)[1]
    assert base.optim.name == arm.optim.name == "sgd" and arm.optim.lr == recipe.ft_lr and arm.optim.warmup == 0.0
    assert base.optim.schedule == arm.optim.schedule == "constant" and arm.model.backbone == "vgg16"
    assert arm.init_checkpoint == f"{base.out_dir}/model.pt" and arm.out_dir.startswith("runs/paper/ssl_study/train/")
    assert study.study_dir(recipe) == paths.run_dir("paper", "ssl_study")
    assert study.study_dir() == paths.results_dir("ssl_study")
    assert cli(["study", "--profile", "paper", "--list"]) == 2 and "needs --data-root" in capsys.readouterr().out
    assert cli(["study", "--profile", "gpu", "--list"]) == 2 and "--profile 'gpu'" in capsys.readouterr().out


def test_the_readme_study_tables_are_the_shipped_runs_summary():
    """The README's generated tables (``make study-readme``) recomputed from the shipped per-run files."""
    readme = (paths.REPO_ROOT / "README.md").read_text()
    assert readme == study_readme.fill_blocks(readme, study_readme.readme_blocks()), \
        "README's study tables differ from results/ssl_study: run `make study-readme`"
