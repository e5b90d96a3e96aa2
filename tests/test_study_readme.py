"""The README's study blocks (lipkit.study_readme): tables and findings say what the numbers say, nothing else."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lipkit import study_readme


def _table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["arm", "seeds", "mean diff", "level", "lower", "upper", "detectable"]).set_index("arm")


def test_effect_names_the_direction_and_whether_it_is_better_for_the_metric():
    table = _table([("paper", 5, -0.9, 0.99, -1.5, -0.3, 0.4), ("soft", 5, 0.1, 0.95, -0.2, 0.4, 0.35),
                    ("released", 1, 0.0, math.nan, math.nan, math.nan, math.nan)])
    # lower mIoU is worse; lower L/R confusion is better: the same interval, two meanings
    assert study_readme.effect(table, "paper", "mIoU") == (
        "mIoU -0.90 (t interval -1.50 to -0.30 at the Holm level 99.0 %, 5 seeds): lower, worse, detected")
    assert study_readme.effect(table, "paper", "L/R confusion").endswith("lower, better, detected")
    assert study_readme.effect(table, "soft", "mIoU").endswith("no difference detected (smallest detectable 0.35)")
    assert study_readme.effect(table, "released", "mIoU") == "mIoU +0.00 on 1 seed(s), no interval"
    assert study_readme.effect(table, "shuffled", "mIoU") == "mIoU: not run yet"
    assert [study_readme.detected(table, a) for a in ("paper", "soft", "released", "shuffled")] == [-1, 0, 0, 0]


@pytest.mark.parametrize("normalized, lr_matched, says", [
    ((-1.2, -0.4), (-0.3, 0.2), "the re-weighting across images, not the smaller step"),
    ((-0.3, 0.2), (-1.2, -0.4), "the smaller step, not the re-weighting"),
    ((-1.2, -0.4), (0.1, 0.5), "both the re-weighting and the smaller step"),
    ((-0.3, 0.2), (-0.2, 0.3), "neither half alone is detected"),
])
def test_the_mechanism_sentence_follows_the_two_halves_intervals(normalized, lr_matched, says):
    table = _table([("normalized", 5, sum(normalized) / 2, 0.99, *normalized, 0.4),
                    ("lr_matched", 5, sum(lr_matched) / 2, 0.98, *lr_matched, 0.4)])
    assert says in study_readme._mechanism(table)
    assert "shuffled" not in study_readme._mechanism(table)  # not in the table: not planned, not named
    soft = pd.concat([table, _table([("soft", 4, 0.03, 0.98, -0.1, 0.2, 0.14)])])
    assert study_readme._mechanism(soft).endswith("soft (lipkit's differentiable joint term): mIoU +0.03 (t interval "
                                                  "-0.10 to +0.20 at the Holm level 98.0 %, 4 seeds): no difference "
                                                  "detected (smallest detectable 0.14).")


def test_the_papers_gain_is_placed_against_our_interval():
    table = _table([("paper", 5, -0.9, 0.99, -1.5, -0.3, 0.4), ("wide", 5, 0.0, 0.99, -1.0, 1.0, 1.2)])
    assert "+0.80 on real images (unverified) lies above this interval" in study_readme._against_paper(table, "paper", 0.80)
    assert "lies inside" in study_readme._against_paper(table, "wide", 0.80)
    assert "lies below" in study_readme._against_paper(table, "paper", -2.0)


@pytest.mark.parametrize("pascal, says", [
    ((-0.5, -1.0, -0.1, 0.3), "carries over: with both label sets the paper arm's mIoU is lower"),
    ((+0.5, +0.1, +1.0, 0.3), "reverses: lower mIoU with LIP's labels, higher with PASCAL's"),
    # LIP's effect is 0.90: a PASCAL null with smallest detectable 0.30 would have seen it, one with 1.20 could not
    ((0.0, -0.3, 0.3, 0.30), "smallest detectable 0.30 against LIP's 0.90), so an effect the size of LIP's would "
                             "have been detected: it does not carry over"),
    ((0.0, -1.0, 1.0, 1.20), "too coarse to tell"),
    ((0.2, math.nan, math.nan, math.nan), "cannot be told yet"),
])
def test_carry_over_compares_the_two_label_sets_intervals(pascal, says):
    lip = _table([("paper", 5, -0.9, 0.99, -1.5, -0.3, 0.4)])
    mean, lower, upper, detectable = pascal
    assert says in study_readme.carry_over(lip, _table([("paper", 5, mean, 0.99, lower, upper, detectable)]))
    lip_null = _table([("paper", 5, 0.1, 0.99, -0.2, 0.4, 0.4)])
    assert study_readme.carry_over(lip_null, _table([("paper", 5, 0.1, 0.99, -0.2, 0.4, 0.4)])).startswith("Neither")
    assert "with LIP's no difference" in study_readme.carry_over(
        lip_null, _table([("paper", 5, 0.9, 0.99, 0.3, 1.5, 0.4)]))


def test_markdown_table_and_blocks_rewrite_only_between_their_markers():
    table = pd.DataFrame([("paper", 5, -0.9, 0.99, -1.5, -0.3, 0.4, -1.2, -0.6), ("soft", 1, 0.1) + (float("nan"),) * 6],
                         columns=["arm", "seeds", "mean diff", "level", "lower", "upper", "detectable", "images lower",
                                  "images upper"]).set_index("arm")
    lines = study_readme.markdown_table(table).splitlines()
    assert lines[2] == "| paper | 5 | -0.90 | -1.50 to -0.30 (99.00 %) | 0.40 | -1.20 to -0.60 | lower: detected |"
    assert lines[3] == "| soft | 1 | +0.10 |  |  |  | one seed: no interval |"
    text = "intro\n<!-- study:mIoU -->\nold\nrows\n<!-- /study:mIoU -->\noutro\n"
    assert study_readme.fill_blocks(text, {"study:mIoU": "NEW"}) == "intro\n<!-- study:mIoU -->\nNEW\n<!-- /study:mIoU -->\noutro\n"
    with pytest.raises(ValueError, match="study:joint error"):
        study_readme.fill_blocks(text, {"study:joint error": "x"})


def test_the_pascal_baseline_table_shows_each_split_and_the_mean_of_the_other_seeds():
    parts = ["Background", "Head", "Torso"]

    def split(miou: float, acc: float, head: float) -> dict:
        return {"mean_iou": miou, "pixel_accuracy": acc, "iou": dict(zip(parts, (0.9, head, 0.3)))}

    scores = {"val": split(0.5, 0.9, 0.6), "val_seed1": split(0.40, 0.80, 0.50), "val_seed7": split(0.44, 0.82, 0.53),
              "val_seed4242": split(0.45, 0.87, 0.59)}
    lines = study_readme.pascal_baseline_table(scores).splitlines()
    assert lines[0].endswith("| mIoU % | pixel acc % | Head | Torso |")  # background: in the mean, not a column
    assert lines[2] == "| seed 0 val (the LIP recipe was chosen on it) | 50.00 | 90.00 | 60.0 | 30.0 |"
    assert lines[3] == "| seed 1 val | 40.00 | 80.00 | 50.0 | 30.0 |"
    assert lines[-1] == "| **mean of seeds 1, 7, 4242** | **43.00** | 83.00 | 54.0 | 30.0 |"  # (40 + 44 + 45) / 3
