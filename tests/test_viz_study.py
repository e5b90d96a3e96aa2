"""Study figures (lipkit.viz_study) draw the intervals they are given, where they are given."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lipkit import viz_study


def _table() -> pd.DataFrame:
    return pd.DataFrame({"arm": ["paper", "released"], "seeds": [4, 1], "mean diff": [0.5, -0.1],
                         "lower": [0.2, math.nan], "upper": [0.8, math.nan],
                         "images lower": [0.3, math.nan], "images upper": [0.7, math.nan]}).set_index("arm")


def test_forest_draws_each_interval_where_it_exists():
    fig = viz_study.difference_forest({"mIoU": _table(), "L/R confusion": _table()},
                                      seeds={"mIoU": {"paper": [0.1, 0.4, 0.6, 0.9]}})
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    spans = sorted(tuple(line.get_xdata()) for line in ax.lines if len(line.get_xdata()) == 2 and line.get_linewidth() >= 1)
    assert (0.2, 0.8) in spans and (0.3, 0.7) in spans  # the t interval and the bootstrap interval of "paper"
    assert not any(math.isnan(x) for s in spans for x in s)  # "released" (one seed) gets no bar
    seed_dots = [line for line in ax.lines if line.get_marker() == "."]
    assert sorted(d.get_xdata()[0] for d in seed_dots) == [0.1, 0.4, 0.6, 0.9]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["paper", "released"]
    with pytest.raises(ValueError):
        viz_study.difference_forest({})


def test_view_differences_one_series_per_view():
    frame = pd.DataFrame({"arm": ["paper", "paper"], "view": ["back", "front"], "mean diff": [1.0, 0.0],
                          "lower": [0.5, -0.2], "upper": [1.5, 0.2]})
    fig = viz_study.view_differences(frame, "L/R confusion")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["back", "front"]


def test_class_differences_plot_marks_the_intervals_that_exclude_zero():
    table = pd.DataFrame({"class": ["Hat", "Left-arm", "Glove"], "mean diff": [0.5, -1.0, math.nan],
                          "lower": [-0.1, -1.5, math.nan], "upper": [1.1, -0.5, math.nan]}).set_index("class")
    fig = viz_study.class_differences_plot(table, "paper")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Hat", "Left-arm"]  # absent classes left out
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.5, -1.0])
    assert ax.patches[0].get_facecolor() != ax.patches[1].get_facecolor()  # only Left-arm's interval excludes 0


def test_forest_keys_may_qualify_their_metric_to_set_two_studies_side_by_side():
    fig = viz_study.difference_forest({"joint error (LIP labels)": _table(), "joint error (PASCAL labels)": _table(),
                                       "something else": _table()})
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert labels[:2] == ["arm - control, joint error (lower is better)"] * 2  # the units of the metric named
    assert labels[2] == "arm - control, something else"
    assert [ax.get_title() for ax in fig.axes][:2] == ["joint error (LIP labels)", "joint error (PASCAL labels)"]
