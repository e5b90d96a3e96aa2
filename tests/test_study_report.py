"""The study's report (lipkit.study_report): its checks and sentences follow from the files they read."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lipkit import study, study_report


def _run(root, name: str, ce: list[float], matrix: list) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    log = [{"kind": "train", "step": 25 * (i + 1), "loss": v, "ce": v} for i, v in enumerate(ce)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in log))
    (folder / "scores.json").write_text(json.dumps({"confusion_matrix": matrix}))


def test_design_table_lists_every_arm_with_what_it_changes():
    table = study_report.design_table()
    assert list(table.index) == list(study.ARMS)
    assert table.loc["normalized", "setting"] == "ssl.mode=paper, ssl.weighting=normalized"
    assert table.loc["flip_no_swap", "setting"] == "ssl.mode=none, data.flip_swap=False"


def test_control_moves_are_gains_over_the_base():
    runs = {("control", 0): {"mean_iou": 0.25}, ("control", 1): {"mean_iou": 0.21}, ("paper", 0): {"mean_iou": 0.3}}
    moves = study_report.control_moves(runs, {"mean_iou": 0.2})
    assert list(moves.index) == [0, 1] and moves["gain"].tolist() == pytest.approx([5.0, 1.0])


def test_released_check_compares_logs_and_scores(tmp_path):
    assert "not run yet" in study_report.released_check(tmp_path)
    _run(tmp_path, "control_s0", [1.0, 0.5], [[1, 0], [0, 1]])
    _run(tmp_path, "released_s0", [1.0, 0.5], [[1, 0], [0, 1]])
    assert "are identical" in study_report.released_check(tmp_path)
    (tmp_path / "released_s0" / "scores.json").write_text(json.dumps({"confusion_matrix": [[1, 0], [1, 0]]}))
    assert "DIFFERENT" in study_report.released_check(tmp_path)


def test_log_agreement_is_the_largest_relative_difference(tmp_path):
    _run(tmp_path / "shipped", "paper_s0", [1.0, 0.5, 0.4], [[1]])
    _run(tmp_path / "rerun", "paper_s0", [1.01, 0.5], [[1]])
    table = study_report.log_agreement(tmp_path / "rerun", tmp_path / "shipped")
    assert table.loc["paper_s0", "steps compared"] == 2
    assert table.loc["paper_s0", "max relative difference"] == pytest.approx(0.01)


def test_agreement_and_conclusion_read_the_intervals():
    reduced = {("control", 0): {"mean_iou": 0.20}, ("paper", 0): {"mean_iou": 0.21},
               ("control", 1): {"mean_iou": 0.20}, ("paper", 1): {"mean_iou": 0.22}}
    shipped = pd.DataFrame({"arm": ["paper"], "seeds": [6], "lower": [0.5], "upper": [2.0], "mean diff": [1.2],
                            "verdict": ["+1.20 points, higher"]}).set_index("arm")
    [line] = study_report.agreement_sentence(reduced, shipped, "mIoU", 25)
    assert "+1.50 points after 25 steps on 2 seeds, inside" in line
    shipped.loc["paper", "upper"] = 1.4
    assert "outside" in study_report.agreement_sentence(reduced, shipped, "mIoU", 25)[0]
    lr = pd.DataFrame({"arm": ["flip_no_swap"], "seeds": [6], "lower": [3.0], "upper": [5.0], "mean diff": [4.0],
                       "verdict": ["+4.00"]}).set_index("arm")
    lines = study_report.conclusion({"L/R confusion": lr}, reduced, 500)
    assert lines[0].startswith("Evidence: 500 val images") and "detected in L/R confusion" in lines[-1]
    lr.loc["flip_no_swap", "lower"] = -1.0
    assert "NOT detected" in study_report.conclusion({"L/R confusion": lr}, reduced, 500)[-1]


def test_rerun_keeps_a_run_scored_at_the_asked_steps(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(study_report, "run_one", lambda arm, seed, **kw: calls.append((arm, seed, kw["stop_after"])))
    (tmp_path / "control_s0").mkdir()
    (tmp_path / "control_s0" / "scores.json").write_text(json.dumps({"step": 25}))
    (tmp_path / "paper_s0").mkdir()
    (tmp_path / "paper_s0" / "scores.json").write_text(json.dumps({"step": 10}))  # another length: redone
    folders = study_report.rerun(("control", "paper"), 2, 25, tmp_path)
    assert calls == [("paper", 0, 25), ("control", 1, 25), ("paper", 1, 25)]
    assert [f.name for f in folders] == ["control_s0", "paper_s0", "control_s1", "paper_s1"]


def _summary(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["arm", "seeds", "mean diff", "level", "lower", "upper", "detectable"]).set_index("arm")


def test_rq4_puts_each_label_sets_interval_beside_the_papers_gain():
    lip = _summary([("paper", 5, -0.9, 0.99, -1.5, -0.3, 0.4), ("normalized", 5, 0.1, 0.98, -0.3, 0.5, 0.4),
                    ("attention_paper", 4, 0.2, 0.95, -0.6, 1.0, 0.8), ("shuffled", 4, 0.0, 0.95, -1.0, 1.0, 0.9)])
    nan = float("nan")
    pascal = _summary([("paper", 1, 0.5, nan, nan, nan, nan)])
    table = study_report.rq4_table({"LIP": lip, "PASCAL-Person-Part": pascal})
    assert [k[2] for k in table.index] == ["paper", "normalized", "attention_paper", "paper"]  # shuffled: not an RQ4 arm
    # the paper's gains are differences of its table (41.64 -> 42.44, 42.92 -> 44.73), only beside the paper arm;
    # its PASCAL row is Attention's, so the DeepLabV2 PASCAL row has none
    assert table.loc[("LIP", "deeplabv2", "paper"), "paper's gain"] == pytest.approx(0.80)
    assert table.loc[("LIP", "attention", "attention_paper"), "paper's gain"] == pytest.approx(1.81)
    assert table["paper's gain"].isna().tolist() == [False, True, False, True]
    lines = study_report.rq4_sentences(table)
    # the README's phrasing (study_summary.describe): lower mIoU is worse
    assert lines[0] == ("SynthLIP with LIP labels, deeplabv2, paper - control: mIoU -0.90 (t interval -1.50 to -0.30 "
                        "at the Holm level 99.0 %, 5 seeds): lower, worse, detected; the paper reports +0.80 on real "
                        "LIP images (unverified).")
    assert "no difference detected (smallest detectable 0.40)" in lines[1] and "no such row" in lines[1]
    assert lines[3].startswith("SynthLIP with PASCAL-Person-Part labels, deeplabv2, paper - control")
    assert "mIoU +0.50 on 1 seed(s), no interval" in lines[3]
