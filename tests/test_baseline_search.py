"""The baseline search (lipkit.baseline_search): its variants change only what they say, and its
shipped results in results/baseline_search/ are what their configs produce and what the table shows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from configdiff import config_diff

from lipkit import baseline_search as bs
from lipkit import paths, pretrain
from lipkit import recipe as rc
from lipkit.cli import main as cli
from lipkit.experiments import SMALL_PARTS
from lipkit.labels import LIP
from lipkit.metrics import left_right_coverage, scores_from_matrix
from lipkit.training import TrainConfig


@pytest.mark.parametrize("name", list(bs.VARIANTS))
def test_a_variant_differs_from_the_pretrain_config_only_where_it_says(name):
    variant = bs.VARIANTS[name]
    base = pretrain.pretrain_config(variant.arch).to_dict()
    config = bs.variant_config(name).to_dict()
    allowed = {"iterations", "out_dir", "log_every"}
    if variant.recipe.get("aspp") == "paper":
        allowed.add("model.aspp_rates")
    allowed |= {o.split("=")[0] for o in variant.overrides}
    assert config_diff(base, config) <= allowed
    assert config["iterations"] == variant.steps


def test_the_aspp_variants_compare_the_papers_rates_with_the_scaled_ones_only():
    paper, scaled = (bs.variant_config(n) for n in ("deeplabv2_aspp_paper", "deeplabv2_aspp_scaled"))
    assert paper.model.aspp_rates is None and scaled.model.aspp_rates == [2, 5, 7, 10]
    assert config_diff(paper.to_dict(), scaled.to_dict()) == {"model.aspp_rates", "out_dir"}


def test_rq1_variants_differ_in_training_images_only():
    configs = [bs.variant_config(f"rq1_deeplabv2_{n}img") for n in bs.RQ1_IMAGES]
    assert [c.data.max_train_images for c in configs] == list(bs.RQ1_IMAGES)
    for c in configs[1:]:
        assert config_diff(configs[0].to_dict(), c.to_dict()) == {"data.max_train_images", "out_dir"}


def test_unknown_variant_and_bad_steps_are_one_line_errors(capsys):
    assert cli(["search", "no_such_variant"]) == 2
    assert "unknown variant 'no_such_variant'" in capsys.readouterr().out
    assert cli(["search", "deeplabv2_aspp_paper", "--steps", "0"]) == 2
    assert "--steps 0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="search variant"):
        bs.variant_config("nope")


# ------------------------------------------------------------------ shipped results
def _shipped() -> list[str]:
    root = paths.results_dir(bs.SEARCH_NAME)
    return sorted(p.name for p in root.iterdir() if (p / "scores.json").is_file()) if root.is_dir() else []


def test_the_aspp_comparison_is_shipped():
    assert {"deeplabv2_aspp_paper", "deeplabv2_aspp_scaled"} <= set(_shipped())


def test_rq1_curve_is_shipped_whole_at_equal_steps():
    """Every point of RQ1's curve is shipped, each the same network for the same steps on more images."""
    assert {f"rq1_deeplabv2_{n}img" for n in bs.RQ1_IMAGES} <= set(_shipped())
    rows = bs.rq1_table()
    assert [r["train images"] for r in rows] == list(bs.RQ1_IMAGES) and {r["steps"] for r in rows} == {bs.RQ1_STEPS}


@pytest.mark.parametrize("name", _shipped())
def test_shipped_result_is_its_variants_config_and_its_scores_follow_from_its_confusion_matrix(name):
    folder = paths.results_dir(bs.SEARCH_NAME) / name
    stored = TrainConfig.from_yaml(folder / "config.yaml").to_dict()
    expected = bs.variant_config(name, stored["iterations"]).to_dict()
    assert config_diff(stored, expected) <= {"progress"}
    scores = json.loads((folder / "scores.json").read_text())
    log = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x for x in log if x["kind"] == "train"][-1]["step"] == scores["step"] == stored["iterations"]
    row = next(r for r in bs.table([name]))
    for key in pretrain.val_roots(bs.SEARCH_VAL_SEEDS):
        s = scores[key]
        m = np.asarray(s["confusion_matrix"])
        assert s["num_images"] == rc.RECIPES["synthlip"].synth_val
        assert scores_from_matrix(m, label_set=LIP).mean_iou == pytest.approx(s["mean_iou"], abs=1e-12)
        assert row[f"{key} mIoU"] == round(100 * s["mean_iou"], 2)
        assert row[f"{key} L/R coverage"] == round(100 * left_right_coverage(m, LIP), 1)


def test_rq1_table_recomputes_each_row_from_the_confusion_matrices(tmp_path, monkeypatch):
    """A shipped-like rq1 result (the ASPP run's files, relabelled 2,500 images) gives a row whose every number
    follows from its two confusion matrices by LIP_SSL's rule, and whose epochs are steps x batch / images."""
    source = paths.results_dir(bs.SEARCH_NAME) / "deeplabv2_aspp_scaled"
    folder = tmp_path / bs.SEARCH_NAME / "rq1_deeplabv2_2500img"
    folder.mkdir(parents=True)
    config = TrainConfig.from_yaml(source / "config.yaml")
    config.data.max_train_images = 2500
    (folder / "config.yaml").write_text(config.to_yaml())
    (folder / "scores.json").write_text((source / "scores.json").read_text())
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    [row] = bs.rq1_table()
    scores = json.loads((source / "scores.json").read_text())
    per_seed = [scores_from_matrix(np.asarray(scores[k]["confusion_matrix"]), label_set=LIP) for k in ("val", "val_seed1")]
    iou = lambda c: np.mean([s.iou[LIP.index(c)] for s in per_seed]) * 100  # noqa: E731
    assert row["train images"] == 2500 and row["epochs"] == round(scores["step"] * config.batch_size / 2500, 1)
    assert row["mIoU"] == pytest.approx(100 * np.mean([s.mean_iou for s in per_seed]), abs=0.006)
    assert row["limbs IoU"] == pytest.approx(np.mean([iou(c) for c in ("Left-arm", "Right-arm", "Left-leg", "Right-leg")]), abs=0.006)
    assert row["small parts IoU"] == pytest.approx(np.mean([iou(c) for c in SMALL_PARTS]), abs=0.006)


def test_rq1_note_reads_the_first_and_last_rows():
    rows = [{"train images": 1000, "steps": 3000, "epochs": 48.0, "mIoU": 20.0, "limbs IoU": 10.0, "small parts IoU": 1.0},
            {"train images": 10000, "steps": 3000, "epochs": 4.8, "mIoU": 25.5, "limbs IoU": 15.25, "small parts IoU": 2.0}]
    note = bs.rq1_note(rows)
    assert "From 1,000 to 10,000" in note and "mIoU 20.0 -> 25.5" in note and "limbs IoU 10.0 -> 15.2" in note
    assert "(48 vs 4.8 epochs)" in note and "one training run" in note and "highest" not in note
    middle = {**rows[0], "train images": 5000, "epochs": 9.6, "mIoU": 26.0}
    assert "The highest mIoU is at 5,000 images (26.00), not at the most." in bs.rq1_note([rows[0], middle, rows[1]])
    assert "1 of 4 runs shipped" in bs.rq1_note(rows[:1])
    assert bs.variant_config("rq1_deeplabv2_1000img").batch_size == bs.RQ1_BATCH
