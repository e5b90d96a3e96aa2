"""RQ4 across datasets: the SSL study on SynthLIP written with PASCAL-Person-Part's labels (lipkit.study with
``recipe.SYNTHLIP_PASCAL``): the same people as the LIP study, the same design, PASCAL's six joints, summaries
without left/right. The shipped PASCAL results (``results/ssl_study_pascal``) are checked once they exist."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from configdiff import config_diff

from lipkit import paths, pretrain, study, study_plan, study_report, study_summary
from lipkit import recipe as rc
from lipkit.cli import main as cli
from lipkit.data import LIPDataset, PascalPersonPartDataset, open_split
from lipkit.evaluate import new_state, summarise
from lipkit.labels import LIP, PASCAL_PERSON_PART
from lipkit.ssl import PASCAL_JOINT_GROUPS, get_joint_groups
from lipkit.training import TrainConfig, load_checkpoint_file

PASCAL = rc.SYNTHLIP_PASCAL
# What the generator draws (lipkit.data.synth_render): LIP id -> the PASCAL parts its pixels may carry
LIP_TO_PASCAL = {0: {0}, 1: {1}, 2: {1}, 4: {1}, 13: {1},  # hat, hair, sunglasses, face: exactly the head
                 11: {2}, 3: {4}, 8: {6}, 18: {6}, 19: {6},  # scarf: torso; gloves: lower arms; socks, shoes: lower legs
                 14: {3, 4}, 15: {3, 4}, 16: {5, 6}, 17: {5, 6},  # arms and legs: their upper or lower part
                 **{g: {2, 3, 4, 5, 6} for g in (5, 6, 7, 9, 10, 12)}}  # garments: whatever body part they cover
SHIPPED_TWIN_DIFF = {"data.root", "data.label_set", "ssl.groups", "out_dir"}  # a PASCAL config vs its LIP twin


@pytest.fixture()
def no_generation(monkeypatch):
    """Configs without generating the 10,000-image twin: ensure_synthlip only names the folder."""
    monkeypatch.setattr(rc, "ensure_synthlip", lambda r: paths.synthlip_root(r.synth_name))


# ------------------------------------------------------------------ the recipe and the twin data
def test_the_pascal_recipe_is_the_synthlip_recipe_with_pascal_labels_and_no_notebook_parameter():
    synthlip = rc.RECIPES["synthlip"]
    assert PASCAL.replace(profile="synthlip", label_format="lip") == synthlip and "synthlip-pascal" not in rc.RECIPES
    assert PASCAL.synth_name == synthlip.synth_name + "-pascal" and PASCAL.label_set == "pascal-person-part"
    assert "LABEL_FORMAT" not in PASCAL.parameters() and set(PASCAL.parameters()) == set(synthlip.parameters())
    assert "format" not in rc._synth_stamp(synthlip)  # the LIP folders' stamps are as they were: nothing regenerates
    assert rc._synth_stamp(PASCAL) == {**rc._synth_stamp(synthlip), "format": "pascal-person-part"}
    with pytest.raises(ValueError, match="label_format"):
        rc.Recipe(label_format="atr")


def test_the_pascal_twin_holds_the_same_people_with_merged_parts(tmp_path, monkeypatch):
    """Same generator seed and sizes: the same JPEGs, the same person pixels; PASCAL's parts merge LIP's."""
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path)
    small = {"synth_train": 3, "synth_val": 2}
    lip_root, pascal_root = rc.ensure_synthlip(rc.RECIPES["synthlip"].replace(**small)), rc.ensure_synthlip(PASCAL.replace(**small))
    assert pascal_root.name == lip_root.name + "-pascal"
    for split in ("train", "val"):
        lip, pascal = LIPDataset(lip_root, split), open_split(pascal_root, split, "pascal-person-part")
        assert isinstance(pascal, PascalPersonPartDataset) and list(lip.ids) == list(pascal.ids)
        for i, ident in enumerate(lip.ids):
            assert lip.image_path(i).read_bytes() == pascal.image_path(i).read_bytes()
            a, b = np.asarray(lip[i]["label"]), np.asarray(pascal[i]["label"])
            np.testing.assert_array_equal(a > 0, b > 0, err_msg=f"{split} {ident}: person silhouettes differ")
            for lip_id in np.unique(a):
                assert set(np.unique(b[a == lip_id]).tolist()) <= LIP_TO_PASCAL[int(lip_id)], (ident, LIP.classes[lip_id])
            np.testing.assert_array_equal(b == 1, np.isin(a, (1, 2, 4, 13)))  # PASCAL's head is LIP's head classes
        assert (pascal_root / f"meta_{split}.jsonl").read_text() == (lip_root / f"meta_{split}.jsonl").read_text()


# ------------------------------------------------------------------ the study's configs on PASCAL
def test_pascal_configs_are_the_lip_studys_with_pascal_labels_and_joints(no_generation):
    """Trained like the LIP study: every number equal; only the data, its label set and the joints differ."""
    base = study.base_config("deeplabv2", PASCAL)
    assert base.data.label_set == "pascal-person-part" and base.ssl.groups == "pascal"
    assert get_joint_groups(base.ssl.groups) == PASCAL_JOINT_GROUPS
    assert base.data.root == rc.rel(paths.synthlip_root(PASCAL.synth_name))
    assert config_diff(study.base_config("deeplabv2").to_dict(), base.to_dict()) == SHIPPED_TWIN_DIFF
    assert study.stage_steps(PASCAL) == (study.BASE_STEPS, study.BRANCH_STEPS)
    assert study.study_dir(PASCAL) == paths.results_dir("ssl_study_pascal")
    assert study.base_weights("deeplabv2", PASCAL) == paths.results_dir("ssl_study_pascal") / "base_deeplabv2" / "model.pt"
    assert base.out_dir == "runs/ssl_study_pascal/base_deeplabv2"
    for arm in study.PASCAL_ARMS:
        mine, lip = study.arm_config(arm, 2, recipe=PASCAL), study.arm_config(arm, 2)
        assert config_diff(lip.to_dict(), mine.to_dict()) == SHIPPED_TWIN_DIFF | {"init_checkpoint"}
        assert mine.init_checkpoint == "results/ssl_study_pascal/base_deeplabv2/model.pt"
        assert (mine.data.label_set, mine.ssl.groups) == ("pascal-person-part", "pascal")


@pytest.mark.parametrize("arm", [a for a in study.ARMS if study.applies(a, PASCAL) and a != study.control_of(a)])
def test_a_pascal_arm_differs_from_its_pascal_control_only_in_its_loss(arm, no_generation):
    spec = study.ARMS[arm]
    mine, control = study.arm_config(arm, 3, recipe=PASCAL).to_dict(), study.arm_config(study.control_of(arm), 3, recipe=PASCAL).to_dict()
    diff = config_diff(control, mine)
    assert diff - {"out_dir"} and diff <= {"out_dir"} | {f"ssl.{k}" for k in spec.ssl}, arm
    assert mine["init_checkpoint"] == control["init_checkpoint"] and mine["seed"] == control["seed"] == 3


def test_flip_no_swap_does_not_apply_without_left_right_and_the_cli_says_so(capsys, no_generation):
    assert not study.applies("flip_no_swap", PASCAL) and study.applies("flip_no_swap")
    with pytest.raises(ValueError, match="no left/right"):
        study.arm_config("flip_no_swap", 0, recipe=PASCAL)
    assert cli(["study", "--profile", "synthlip-pascal", "flip_no_swap", "--list"]) == 2
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1 and "does not apply" in out


def test_the_pascal_study_plans_its_arms_and_the_seeds_asked(capsys):
    assert study.study_arms(PASCAL) == list(study.PASCAL_ARMS) == [
        "control", "paper", "normalized", "lr_matched", "released"]
    assert all(study.applies(a, PASCAL) and study.ARMS[a].arch == "deeplabv2" for a in study.PASCAL_ARMS)
    assert study.study_arms() == list(study.ARMS) and study.planned_runs() == study.planned_runs(list(study.ARMS))
    runs = study.planned_runs(recipe=PASCAL)
    assert runs[:3] == [("control", 0), ("paper", 0), ("normalized", 0)] and len(runs) == 4 * 5 + 1
    assert len(study.planned_runs(recipe=PASCAL, seeds=7)) == 5 * 7
    assert cli(["study", "--profile", "synthlip-pascal", "--list", "--seeds", "2"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [f"{arm}_s{seed}" for seed in range(2) for arm in study.PASCAL_ARMS]
    assert cli(["study", "--seeds", "0"]) == 2 and "--seeds 0" in capsys.readouterr().out


def test_the_pascal_baseline_recipe_ships_beside_the_lip_ones(no_generation):
    lip, mine = pretrain.pretrain_config("deeplabv2"), pretrain.pretrain_config("deeplabv2", PASCAL)
    assert config_diff(lip.to_dict(), mine.to_dict()) == SHIPPED_TWIN_DIFF and mine.iterations == 7600
    assert mine.out_dir == "runs/synthlip-pascal/baseline_deeplabv2_s0"
    assert pretrain.shipped_dir("deeplabv2", PASCAL) == paths.CHECKPOINTS_DIR / "synthlip_pascal_deeplabv2"
    assert pretrain.shipped_dir("deeplabv2") == paths.shipped_dir("deeplabv2")


# ------------------------------------------------------------------ summaries without left/right
def _write_run(root: Path, arm: str, seed: int, images: np.ndarray, joint_error: float) -> None:
    """A PASCAL run folder as lipkit.study ships it, from per-image 7 x 7 confusion matrices."""
    state = new_state(PASCAL_PERSON_PART)
    state.confusion.matrix = images.sum(axis=0)
    state.num_images, state.joint_error_sum = len(images), joint_error * len(images)
    scores = summarise(state, PASCAL_PERSON_PART)
    scores["by_view"] = {"front": dict(scores)}
    (root / study.run_name(arm, seed)).mkdir(parents=True)
    (root / study.run_name(arm, seed) / "scores.json").write_text(json.dumps(scores))
    np.savez_compressed(root / study.run_name(arm, seed) / "images.npz", confusions=images.astype(np.uint32))


@pytest.fixture()
def pascal_root(tmp_path):
    rng = np.random.default_rng(0)
    for seed in range(3):
        base = np.zeros((5, 7, 7), np.int64)
        for m in base:
            for c in range(7):
                m[c, c] = 40 + rng.integers(0, 20)
            m[3, 4] = 6  # upper arms called lower arms
        for arm, moved in (("control", 0), ("paper", 2 + seed), ("normalized", 1)):
            images = base.copy()
            images[:, 3, 3] -= moved
            images[:, 3, 4] += moved
            _write_run(tmp_path, arm, seed, images, 0.4 + 0.01 * seed + 0.001 * moved * moved)
    return tmp_path


def test_the_summary_reads_pascal_runs_and_left_right_is_not_applicable(pascal_root):
    runs = study_summary.load_runs(pascal_root)
    assert sorted(runs) == sorted((a, s) for a in ("control", "paper", "normalized") for s in range(3))
    miou = study_summary.summary_table("mIoU", pascal_root, bootstrap=50)
    assert sorted(miou.index) == ["normalized", "paper"] and (miou["upper"] < 0).all()  # fewer upper-arm pixels right
    assert miou.loc["paper", "lower"] < miou.loc["paper", "mean diff"] < miou.loc["paper", "upper"]
    for metric in ("L/R confusion", "L/R coverage"):
        table = study_summary.summary_table(metric, pascal_root, bootstrap=50)
        assert (table["verdict"] == study_summary.NOT_APPLICABLE).all() and table["mean diff"].isna().all()
        assert study_summary.view_table(runs, metric).empty
    joint = study_summary.summary_table("joint error", pascal_root, bootstrap=0)
    assert joint.loc["paper", "mean diff"] == pytest.approx(0.001 * np.mean([4, 9, 16]))  # PASCAL's structure metric
    classes = study_summary.class_differences(runs, "paper")
    assert list(classes.index) == list(PASCAL_PERSON_PART.classes) and classes.loc["Upper-arms", "mean diff"] < 0
    assert math.isnan(study_summary.lr_confusion_of(np.eye(7))) and study_summary.lr_confusion_of(np.eye(20)) == 0
    with pytest.raises(ValueError, match="5 x 5"):
        study_summary.lr_confusion_of(np.eye(5))
    assert list(study_report.progress_table(runs, study.study_arms(PASCAL))["finished"]) == [3, 3, 3, 0, 0]


def test_label_set_panels_set_the_studies_side_by_side_on_the_arms_both_ran(pascal_root):
    runs = study_summary.load_runs(pascal_root)
    summaries = {m: study_summary.summary_table(m, pascal_root, bootstrap=0) for m in ("mIoU", "joint error")}
    tables, seeds = study_report.label_set_panels({"LIP": (summaries, runs), "PASCAL": (summaries, runs)}, ["paper"])
    assert list(tables) == ["mIoU (LIP labels)", "mIoU (PASCAL labels)", "joint error (LIP labels)",
                            "joint error (PASCAL labels)"] == list(seeds)
    assert all(list(t.index) == ["paper"] for t in tables.values())  # normalized is not among the arms asked for
    by_hand = [100 * (runs[("paper", s)]["mean_iou"] - runs[("control", s)]["mean_iou"]) for s in range(3)]
    assert seeds["mIoU (PASCAL labels)"] == {"paper": pytest.approx(by_hand)}
    assert seeds["joint error (LIP labels)"]["paper"] == pytest.approx([0.001 * m * m for m in (2, 3, 4)])


def test_the_pascal_plan_is_made_on_miou_with_holm_over_its_own_arms(pascal_root):
    runs = {k: v for k, v in study_summary.load_runs(pascal_root).items() if k[0] in ("control", "paper")}
    plan = study_plan.power_plan(runs, {"mean_iou": 0.5}, arms=study.study_arms(PASCAL))
    assert plan["holm_arms"] == 3 and plan["not_applicable"] == ["L/R confusion"] and list(plan["metrics"]) == ["mIoU"]
    assert plan["seeds_planned"] >= study_plan.MIN_SEEDS
    assert any("not applicable" in line for line in study_plan.plan_sentences(plan))
    assert "not_applicable" not in study_plan.power_plan(_lip_pilot(), {"mean_iou": 0.2})


def _lip_pilot() -> dict:
    cm = np.eye(LIP.num_classes, dtype=np.int64) * 50
    cm[14, 15] = 3
    out = {}
    for seed in range(2):
        for arm, miou, lr in (("control", 0.22, 0.1), ("paper", 0.21 + 0.001 * seed, 0.12)):
            out[(arm, seed)] = {"mean_iou": miou, "left_right_confusion": {"a->b": lr + 0.01 * seed},
                                "confusion_matrix": cm.tolist()}
    return out


def test_the_lip_study_reads_only_its_planned_runs():
    """load_runs now lists run folders; on the shipped LIP study that is what the planned seeds gave."""
    assert set(study_summary.load_runs()) <= set(study.planned_runs())


# ------------------------------------------------------------------ a smoke study on a tiny twin
def _tiny(monkeypatch, tmp_path) -> rc.Recipe:
    for name in ("DATA_DIR", "RUNS_DIR", "RESULTS_DIR", "CHECKPOINTS_DIR"):
        monkeypatch.setattr(paths, name, tmp_path / name.lower())
    monkeypatch.setattr(study, "BASE_STEPS", 2)
    return PASCAL.replace(synth_train=6, synth_val=4, synth_min_px=40, synth_max_px=56, crop_size=41, batch_size=2)


@pytest.mark.slow
def test_a_two_step_pascal_study_trains_scores_summarises_and_ships(monkeypatch, tmp_path):
    recipe = _tiny(monkeypatch, tmp_path)
    base = study.train_base("deeplabv2", recipe)
    assert base == tmp_path / "results_dir" / "ssl_study_pascal" / "base_deeplabv2"
    assert json.loads((base / "study_scores.json").read_text())["num_images"] == 4
    for seed in range(2):
        for arm in ("control", "paper"):
            study.run_one(arm, seed, steps=2, recipe=recipe)
    root = study.study_dir(recipe)
    scores = json.loads((root / "paper_s0" / "scores.json").read_text())
    assert list(scores["iou"]) == list(PASCAL_PERSON_PART.classes) and scores["left_right_confusion"] == {}
    assert np.array(scores["confusion_matrix"]).shape == (7, 7) and math.isfinite(scores["joint_error"])
    assert sum(v["num_images"] for v in scores["by_view"].values()) == 4
    with np.load(root / "paper_s0" / "images.npz") as data:
        assert data["confusions"].shape == (4, 7, 7)
    assert TrainConfig.from_yaml(root / "paper_s0" / "config.yaml").ssl.groups == "pascal"
    plan = study_plan.write_plan(recipe=recipe)
    assert (root / "plan.json").is_file() and plan["holm_arms"] == 3
    assert len(study_summary.summary_table("mIoU", root, bootstrap=20)) == 1
    shipped = pretrain.ship("deeplabv2", paths.resolve(study.base_config("deeplabv2", recipe).out_dir), recipe=recipe)
    assert shipped == tmp_path / "checkpoints_dir" / "synthlip_pascal_deeplabv2"
    ckpt = load_checkpoint_file(shipped / "model.pt")
    assert 40 <= ckpt["train_image_height"] <= 56 and ckpt["config"]["data"]["label_set"] == "pascal-person-part"
    stored = json.loads((shipped / "scores.json").read_text())
    assert {"val", "val_subset", "machine"} <= set(stored) and stored["step"] == 2
    assert all(f"val_seed{k}" in stored and stored[f"val_seed{k}"]["data_root"].endswith("-pascal")
               for k in pretrain.OTHER_SEEDS)


# ------------------------------------------------------------------ the shipped PASCAL study (once it exists)
SHIPPED_RUNS = sorted(study.study_dir(PASCAL).glob("*_s*/config.yaml"))  # empty until `study --profile synthlip-pascal`


def test_the_shipped_pascal_weights_stay_small_and_are_bases_only():
    folder = study.study_dir(PASCAL)
    total = sum(p.stat().st_size for p in folder.rglob("*.pt")) if folder.is_dir() else 0
    assert total < 4 * 2**20, f"the PASCAL study's weights take {total / 2**20:.1f} MB (at most 4 MB in all)"
    if folder.is_dir():
        assert {p.parent.name for p in folder.rglob("*.pt")} <= {f"base_{a}" for a in study.SHIPPED_BASES}


@pytest.mark.parametrize("config", SHIPPED_RUNS, ids=lambda p: p.parent.name)
def test_a_shipped_pascal_run_is_its_arms_config(config, no_generation):
    arm, seed = config.parent.name.rsplit("_s", 1)
    stored = TrainConfig.from_yaml(config)
    assert config_diff(stored.to_dict(), study.arm_config(arm, int(seed), recipe=PASCAL).to_dict()) <= {"progress"}
    scores = json.loads((config.parent / "scores.json").read_text())
    assert scores["num_images"] == PASCAL.synth_val and scores["step"] == study.BRANCH_STEPS
    assert list(scores["iou"]) == list(PASCAL_PERSON_PART.classes)


@pytest.mark.parametrize("folder", [d for d in (study.study_dir(PASCAL) / "base_deeplabv2",) if (d / "model.pt").is_file()],
                         ids=lambda p: p.name)
def test_the_shipped_pascal_base_is_its_config(folder, no_generation):
    stored = TrainConfig.from_yaml(folder / "config.yaml")
    assert config_diff(stored.to_dict(), study.base_config("deeplabv2", PASCAL).to_dict()) <= {"progress"}
    assert json.loads((folder / "study_scores.json").read_text())["num_images"] == PASCAL.synth_val
