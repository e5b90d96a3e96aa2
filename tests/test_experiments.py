"""lipkit.experiments: recipes, paired statistics, SSL demos, and train-or-reuse on a tiny SynthLIP."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch

from lipkit import experiments as ex
from lipkit import paths
from lipkit.data.synth import read_meta
from lipkit.labels import LIP
from lipkit.metrics import mean_left_right_confusion
from lipkit.training import fit


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "setting": ["control", "control", "a", "a", "b", "b"],
        "seed": [0, 1, 0, 1, 1, 0],
        "mean_iou": [10.0, 12.0, 11.0, 15.0, 12.0, 10.0],
        "lr_confusion": [5.0, 7.0, 4.0, 5.0, 7.0, 5.0],
    })


def test_paired_differences_match_hand_values():
    d = ex.paired_differences(_frame())
    got = {(r.setting, r.seed): (r.mean_iou, r.lr_confusion) for r in d.itertuples()}
    assert got == {("a", 0): (1.0, -1.0), ("a", 1): (3.0, -2.0), ("b", 1): (0.0, 0.0), ("b", 0): (0.0, 0.0)}
    s = ex.summarize_differences(d)
    assert s.loc["a", "mean_iou diff mean"] == 2.0
    assert s.loc["a", "mean_iou diff std"] == pytest.approx(math.sqrt(2.0))
    half = 12.7062047 * math.sqrt(2.0) / math.sqrt(2)  # t(0.975, 1 df) x std / sqrt(2 seeds)
    assert s.loc["a", "mean_iou 95% CI"] == f"{2.0 - half:+.2f} to {2.0 + half:+.2f}"
    assert s.loc["b", "mean_iou 95% CI"] == "+0.00 to +0.00"


def test_paired_differences_errors_name_the_problem():
    with pytest.raises(ValueError, match="control"):
        ex.paired_differences(_frame(), control="nope")
    bad = _frame()
    bad.loc[2, "seed"] = 7
    with pytest.raises(ValueError, match="seed=7"):
        ex.paired_differences(bad)


def test_mean_std_by_setting_keeps_order():
    m = ex.mean_std(_frame())
    assert list(m.index) == ["control", "a", "b"]
    assert m.loc["a", ("mean", "mean_iou")] == 13.0
    assert m.loc["control", ("std", "mean_iou")] == pytest.approx(math.sqrt(2.0))
    assert m.loc["b", ("n", "")] == 2


def test_verdict_categories():
    assert ex.verdict(0.0, 0.0, 3).startswith("no change")
    assert ex.verdict(0.1, 1.0, 3).startswith("no difference detected") and "smallest detectable" in ex.verdict(0.1, 1.0, 3)
    assert "higher" in ex.verdict(2.0, 0.5, 3) and "95% CI" in ex.verdict(2.0, 0.5, 3)
    assert not any("standard error" in ex.verdict(m, 0.5, 3) for m in (-2.0, 0.1, 2.0))
    assert "lower" in ex.verdict(-2.0, 0.5, 4)
    assert "one seed" in ex.verdict(1.0, math.nan, 1)


def test_mean_left_right_confusion_skips_missing():
    assert mean_left_right_confusion({"a": 0.2, "b": None, "c": 0.4, "d": math.nan}) == pytest.approx(0.3)
    assert math.isnan(mean_left_right_confusion({"a": None}))


def test_fragment_pastes_a_shifted_copy():
    label = np.zeros((6, 6), np.uint8)
    label[1, 1] = 14
    out = ex.fragment(label, 14, (3, 4))
    assert out[1, 1] == 14 and out[4, 5] == 14 and (out == 14).sum() == 2
    assert label[4, 5] == 0  # input untouched
    assert (ex.fragment(label, 14, (10, 10)) == label).all()  # off the image: nothing pasted


def test_image_scores_swap_is_full_lr_swap():
    gt = np.zeros((4, 4), np.uint8)
    gt[:, :2] = 14
    gt[:, 2:] = 15
    swapped = LIP.flip_lut[gt]  # ids swapped, pixels in place
    s = ex.image_scores([swapped, gt], [gt, gt])
    assert s.loc[0, "lr_swap"] == 100.0 and s.loc[0, "pixel_accuracy"] == 0.0
    assert s.loc[1, "lr_swap"] == 0.0 and s.loc[1, "mean_iou"] == 100.0


def test_view_groups_merge_profiles(tmp_path):
    rows = [{"id": i, "view": v} for i, v in zip("abcd", ["front", "left", "back", "right"])]
    (tmp_path / "meta_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = read_meta(tmp_path, "val", ["d", "c", "b", "x", "a"])  # "x": no metadata row, no group
    assert ex.view_groups(meta) == {"front": [4], "back": [1], "profile": [0, 2]}
    assert read_meta(tmp_path, "train") is None and ex.view_groups(None) == {}


def test_gradient_table_released_equals_none_and_paper_scales_by_joint_error():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 20, 8, 8, generator=g)
    target = torch.randint(0, 20, (3, 16, 16), generator=g)
    t = ex.gradient_table(logits, target)
    assert (t["max|released - none|"] == 0).all()
    assert np.allclose(t["|paper| / |none|"], t["L_joint"], rtol=1e-5)
    assert (t["max|paper - L_joint x none|"] < 1e-6).all()
    assert (t["L_joint"] > 0).all()  # random maps: joints disagree


def test_recipe_rejects_bad_values():
    with pytest.raises(ValueError, match="base_steps"):
        ex.Recipe(base_steps=0)
    with pytest.raises(ValueError, match="profile"):
        ex.Recipe(profile="a/b")
    with pytest.raises(ValueError, match="ssl_arch"):
        ex.Recipe(ssl_arch="deeplabv3")


def test_finetune_config_starts_from_the_seed_baseline():
    r = ex.Recipe(profile="t", data_root=str(paths.REPO_ROOT))  # any folder: no data is read here
    b = ex.baseline_config(r, "deeplabv2", 3)
    f = ex.finetune_config(r, ex.Setting("x", "paper", sigma=2.0, normalize=True), 3)
    assert f.init_checkpoint == "checkpoints/synthlip_deeplabv2/model.pt"  # shipped: every seed starts there
    t = ex.finetune_config(r.replace(baselines="train"), ex.PAPER, 3)
    assert t.init_checkpoint.endswith("baseline_deeplabv2_s3/last.pt")  # trained: the seed's own baseline
    assert f.seed == b.seed == 3 and f.batch_size == b.batch_size
    assert (f.ssl.mode, f.ssl.sigma, f.ssl.normalize_weights) == ("paper", 2.0, True)
    assert f.iterations == r.ft_steps and f.optim.schedule == "constant" and f.optim.lr == r.ft_lr
    assert f.out_dir.endswith("runs/t/ft_x_s3")


def test_ssl_arch_attention_fine_tunes_the_attention_baseline_in_its_own_folders():
    r = ex.Recipe(profile="t", data_root=str(paths.REPO_ROOT), ssl_arch="attention", attention_backbone="vgg16",
                  baselines="train")
    f = ex.finetune_config(r, ex.PAPER, 1)
    assert f.init_checkpoint.endswith("baseline_attention_s1/last.pt")
    assert (f.model.arch, f.model.backbone) == ("attention", "vgg16")
    assert f.out_dir.endswith("runs/t/ft_attention_paper_s1")
    # DeepLabV2 fine-tuning of the same recipe keeps its own folder: the two never overwrite each other.
    d = ex.finetune_config(r, ex.PAPER, 1, arch="deeplabv2")
    assert d.out_dir.endswith("runs/t/ft_paper_s1") and d.model.arch == "deeplabv2"


def test_train_or_load_trains_once_and_released_equals_control(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    r = ex.Recipe(profile="t", synth_train=8, synth_val=3, synth_min_px=40, synth_max_px=56, width=0.125, crop_size=41,
                  batch_size=4, base_steps=2, ft_steps=2, threads=1, baselines="train")
    cfg = ex.baseline_config(r)
    first = ex.train_or_load(cfg)
    again = ex.train_or_load(cfg)
    assert first.trained and not again.trained
    assert again.scores["mean_iou"] == first.scores["mean_iou"]
    assert (first.out_dir / "last.pt").is_file()
    control = ex.finetune(r, ex.CONTROL)
    released = ex.finetune(r, ex.Setting("released", "released"))
    paper = ex.finetune(r, ex.PAPER)
    # The released layer's gradient is plain CE: same weights, same predictions, same scores.
    assert released.scores["confusion_matrix"] == control.scores["confusion_matrix"]
    assert paper.trained
    # A changed config is not reused.
    changed = ex.baseline_config(r.replace(base_steps=3))
    assert ex.load_run(changed.out_dir, changed) is None
    rows = ex.collect_scores([({"setting": "control", "seed": 0}, control), ({"setting": "paper", "seed": 0}, paper)])
    assert list(rows["setting"]) == ["control", "paper"] and rows["mean_iou"].between(0, 100).all()


def test_train_or_load_resumes_an_interrupted_run_exactly(tmp_path, monkeypatch, capsys):
    """A GPU run killed at step k of many continues from last.pt, and ends where an uninterrupted one ends."""
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    r = ex.Recipe(profile="t", synth_train=8, synth_val=3, synth_min_px=40, synth_max_px=56, width=0.125, crop_size=41,
                  batch_size=4, base_steps=4, threads=1, baselines="train")
    cfg = ex.baseline_config(r)
    straight = ex.train_or_load(cfg.with_overrides([f"out_dir={tmp_path / 'straight'}"]), progress=False)
    fit(cfg.with_overrides(["checkpoint_every=1"]), stop_after=2)  # "killed" after step 2: last.pt, no scores.json
    capsys.readouterr()
    resumed = ex.train_or_load(cfg.with_overrides(["checkpoint_every=1"]), progress=False)
    assert "resuming an interrupted run" in capsys.readouterr().out
    assert resumed.trained and resumed.scores["confusion_matrix"] == straight.scores["confusion_matrix"]
    steps = resumed.log[resumed.log["kind"] == "train"]["step"].tolist()
    assert steps == sorted(set(steps)) and steps[-1] == 4  # the log continued, no line twice
    other = cfg.with_overrides(["checkpoint_every=1", "optim.lr=0.01"])  # another config: from scratch
    ex.train_or_load(other, progress=False)
    assert "training, 4 steps" in capsys.readouterr().out
    folder = paths.resolve(other.out_dir)  # the data regenerated after the finished run (its files made older):
    for name in ("scores.json", "last.pt"):  # trained again from scratch, not "resumed"
        os.utime(folder / name, (time.time() - 600,) * 2)
    again = ex.train_or_load(other, progress=False)
    assert "training, 4 steps" in capsys.readouterr().out and again.trained


def test_finetune_without_baseline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    r = ex.Recipe(profile="t", data_root=str(tmp_path), baselines="train")
    with pytest.raises(FileNotFoundError, match="train the baseline first"):
        ex.train_or_load(ex.finetune_config(r, ex.PAPER, 0))


def test_lr_coverage_counts_any_left_right_prediction():
    k = LIP.num_classes
    m = np.zeros((k, k), np.int64)
    m[14, 14], m[14, 15], m[14, 0] = 2, 1, 1  # left arm: 3 of 4 pixels get a left/right label
    m[16, 0] = 4  # left leg: all background
    m[5, 5] = 100  # not a left/right class: ignored
    assert ex.lr_coverage({"confusion_matrix": m.tolist()}) == pytest.approx(3 / 8)
    assert math.isnan(ex.lr_coverage({"confusion_matrix": np.zeros((k, k), int).tolist()}))


def test_coverage_note_warns_when_no_limbs_are_predicted():
    assert ex.coverage_note(pd.DataFrame({"lr_coverage": [1.0, 2.0]})).startswith("Caution")
    assert "measures swaps" in ex.coverage_note(pd.DataFrame({"lr_coverage": [40.0, 60.0]}))
    assert "not measured" in ex.coverage_note(pd.DataFrame({"lr_coverage": [math.nan]}))
