"""The study's plan (lipkit.study_plan): control movement and seeds needed follow from the pilot's numbers."""

from __future__ import annotations

import json

import pytest

from lipkit import study_plan
from lipkit.study_stats import smallest_detectable
from lipkit.study_summary import load_runs


def _scores(miou: float, lr: float) -> dict:
    return {"mean_iou": miou / 100, "left_right_confusion": {"Left-arm->Right-arm": lr / 100, "Left-leg->Right-leg": lr / 100}}


def _pilot() -> dict:
    # control gains 2.5 and 1.5 points over a base of 20 %; paper - control: mIoU +0.0 / +1.0, L/R -0.2 / -0.4
    return {("control", 0): _scores(22.5, 10.0), ("paper", 0): _scores(22.5, 9.8),
            ("control", 1): _scores(21.5, 12.0), ("paper", 1): _scores(22.5, 11.6)}


def test_the_plan_reads_the_control_movement_and_the_spread_of_the_paired_differences():
    plan = study_plan.power_plan(_pilot(), {"mean_iou": 0.20})
    assert plan["control_move_points"] == pytest.approx([2.5, 1.5])
    assert plan["control_moves_enough"] is False  # 1.5 < 2 on seed 1
    m = plan["metrics"]["mIoU"]
    assert m["pilot_differences"] == pytest.approx([0.0, 1.0]) and m["sd"] == pytest.approx(0.5 ** 0.5)
    lr = plan["metrics"]["L/R confusion"]
    assert lr["pilot_differences"] == pytest.approx([-0.2, -0.4]) and lr["sd"] == pytest.approx(0.02 ** 0.5)
    for metric in ("mIoU", "L/R confusion"):
        n, sd = plan["metrics"][metric]["seeds_needed"], plan["metrics"][metric]["sd"]
        assert smallest_detectable(sd, n) <= 0.5 and (n == 2 or smallest_detectable(sd, n - 1) > 0.5)
        holm = plan["metrics"][metric]["seeds_needed_holm_worst_case"]
        assert holm >= n and smallest_detectable(sd, holm, alpha=0.05 / plan["holm_arms"]) <= 0.5
    assert plan["seeds_planned"] == max(5, plan["metrics"]["mIoU"]["seeds_needed"], lr["seeds_needed"])
    assert any("NOT met" in line for line in study_plan.plan_sentences(plan))


def test_the_plan_needs_two_paired_seeds_and_is_written_once(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="at least 2 seeds"):
        study_plan.power_plan({k: v for k, v in _pilot().items() if k[1] == 0}, {"mean_iou": 0.2})
    monkeypatch.setattr(study_plan, "base_scores", lambda arch, recipe=None: {"mean_iou": 0.2})
    monkeypatch.setattr(study_plan, "load_runs", lambda root: _pilot())
    plan = study_plan.write_plan(root=tmp_path)
    assert json.loads((tmp_path / study_plan.PLAN_FILE).read_text())["seeds_planned"] == plan["seeds_planned"]
    with pytest.raises(FileExistsError, match="written once"):
        study_plan.write_plan(root=tmp_path)


def test_the_shipped_plan_follows_from_the_shipped_pilot_runs():
    plan = study_plan.read_plan()
    if plan is None:
        pytest.fail("results/ssl_study/plan.json is missing: run `python -m lipkit study --plan` after the pilot")
    runs = {k: v for k, v in load_runs().items() if f"{k[0]}_s{k[1]}" in plan["pilot_runs"]}
    again = study_plan.power_plan(runs, study_plan.base_scores("deeplabv2"), plan["pilot_arm"])
    for key in ("control_move_points", "seeds_planned", "base_miou"):
        assert again[key] == pytest.approx(plan[key])
    for metric, m in plan["metrics"].items():
        assert again["metrics"][metric]["sd"] == pytest.approx(m["sd"])


def test_earlier_pilots_are_read_and_said(tmp_path):
    folder = tmp_path / "pilot_constant_lr" / "control_s0"
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps({"mean_iou": 0.2127}))
    [pilot] = study_plan.earlier_pilots(tmp_path, {"mean_iou": 0.20})
    assert pilot["design"] == "constant_lr" and pilot["run"] == "control_s0"
    assert pilot["control_move_points"] == pytest.approx(1.27)
    plan = study_plan.power_plan(_pilot(), {"mean_iou": 0.20})
    plan["earlier_pilots"] = [pilot]
    assert study_plan.plan_sentences(plan)[0].startswith("Set aside before this plan: the constant lr design, whose "
                                                         "control_s0 gained +1.27")
