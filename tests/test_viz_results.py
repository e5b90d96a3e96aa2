"""lipkit.viz_results: every function returns a Figure whose content matches hand-computed values."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lipkit import viz_results as vr
from lipkit.labels import LIP


def test_results_table_formats_mean_std_and_single_values():
    frame = pd.DataFrame({"method": ["a", "a", "b"], "mean_iou": [10.0, 12.0, 30.0], "pixel_accuracy": [1.0, 3.0, 5.5]})
    t = vr.results_table(frame, metrics=("pixel_accuracy", "mean_iou"))
    assert list(t.columns) == ["pixel acc", "mIoU"]
    assert t.loc["a", "mIoU"] == "11.00 ± 1.41 (2)"
    assert t.loc["b", "pixel acc"] == "5.50"
    with pytest.raises(ValueError, match="fwIoU|frequency_weighted_iou"):
        vr.results_table(frame, metrics=("frequency_weighted_iou",))


def test_paper_iou_table_averages_to_published_miou():
    assert np.mean(list(vr.PAPER_ATTENTION_SSL_IOU.values())) == pytest.approx(44.73, abs=0.01)
    assert list(vr.PAPER_ATTENTION_SSL_IOU) == list(LIP.classes)


def test_lr_confusion_matrices_row_normalised_submatrix():
    k = LIP.num_classes
    m = np.zeros((k, k), np.int64)
    m[14, 14], m[14, 15] = 3, 1  # left arm: 3 right, 1 swapped
    m[15, 15] = 5
    fig = vr.lr_confusion_matrices({"model": m})
    assert isinstance(fig, Figure)
    shown = fig.axes[0].images[0].get_array()
    ids = [0, 14, 15, 16, 17, 18, 19]
    r = ids.index(14)
    assert shown[r, ids.index(14)] == pytest.approx(0.75) and shown[r, ids.index(15)] == pytest.approx(0.25)
    assert shown[ids.index(15), ids.index(15)] == 1.0
    assert shown[0].sum() == 0  # background row without pixels stays 0
    with pytest.raises(ValueError, match="expected"):
        vr.lr_confusion_matrices({"bad": np.zeros((3, 3))})


def test_per_class_bars_add_paper_series():
    iou = {"baseline": pd.Series(np.arange(20.0), index=LIP.classes), "ssl": pd.Series(np.arange(20.0) + 1, index=LIP.classes)}
    fig = vr.per_class_iou_bars(iou, paper=vr.PAPER_ATTENTION_SSL_IOU)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["baseline", "ssl", "paper (Attention+SSL)"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:20] == list(np.arange(20.0))


def test_per_class_difference_signs_and_colours():
    diff = pd.Series(np.linspace(-1, 1, 20), index=LIP.classes)
    fig = vr.per_class_difference(diff)
    bars = fig.axes[0].patches
    assert [b.get_height() for b in bars] == pytest.approx(list(np.linspace(-1, 1, 20)))
    assert bars[0].get_facecolor()[:3] != bars[-1].get_facecolor()[:3]


def test_ablation_plot_paired_differences():
    frame = pd.DataFrame({"setting": ["control", "control", "a", "a"], "seed": [0, 1, 1, 0],
                          "mean_iou": [10.0, 20.0, 23.0, 11.0]})
    fig = vr.ablation_plot(frame)
    ax2 = fig.axes[1]
    pts = ax2.collections[0].get_offsets()
    assert sorted(np.asarray(pts)[:, 1].tolist()) == [1.0, 3.0]  # a - control per seed: 11-10, 23-20


def test_image_figures():
    img = np.zeros((16, 12, 3), np.uint8)
    lab = np.zeros((16, 12), np.uint8)
    lab[4:8, 2:5] = 14
    fig = vr.prediction_grid([img, img], {"GT": [lab, lab], "model": [lab, lab]})
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="label maps"):
        vr.prediction_grid([img], {"GT": [lab, lab]})
    att = np.stack([np.full((4, 3), 0.5), np.full((4, 3), 0.3), np.full((4, 3), 0.2)])
    fig = vr.attention_maps(img, att, (1.0, 0.75, 0.5))
    assert "mean 0.50" in fig.axes[1].get_title() and "mean 0.20" in fig.axes[3].get_title()
    with pytest.raises(ValueError, match="scales"):
        vr.attention_maps(img, att[:2], (1.0, 0.75, 0.5))
    joints = np.array([[3, 5], [0, 0]])
    fig = vr.joints_on_parsing(img, {"GT": (lab, joints, np.array([True, False]))}, ["left-arm", "x"],
                               heatmaps={"GT": np.zeros((2, 4, 3))})
    assert len(fig.axes[1].collections) == 1  # the absent joint is not drawn
    logs = {"a": pd.DataFrame({"kind": ["train", "train", "val"], "step": [1, 2, 2], "loss": [2.0, 1.0, np.nan]})}
    fig = vr.training_curves(logs)
    assert fig.axes[0].lines[0].get_ydata().tolist() == [2.0, 1.0]
    fig = vr.group_bars(pd.DataFrame({"baseline": [1.0, 2.0], "ssl": [3.0, 4.0]}, index=["front", "back"]))
    assert [p.get_height() for p in fig.axes[0].patches] == [1.0, 2.0, 3.0, 4.0]


def test_joints_rgb_marks_region_centre():
    lab = np.zeros((40, 40), np.uint8)
    lab[10:21, 4:9] = 14  # left arm: centre x = 6, y = 15
    rgb = vr.joints_rgb(lab)
    assert (rgb[15, 6] == 0).all()  # the joint square is black
    assert (rgb[30, 30] == 0).all() and (rgb[12, 5] != 0).any()  # background black, arm away from the centre coloured
    assert (rgb[15, 4] == 255).all()  # white ring at radius 2 around the centre (r = 1)


def test_prediction_grid_titles_fit_their_panels():
    """Long column names (network + backbone) are wrapped so neighbouring titles do not overlap."""
    img = np.zeros((16, 12, 3), np.uint8)
    lab = np.zeros((16, 12), np.uint8)
    names = ["ground truth", "DeepLabV2 (ResNet-18)", "Attention-to-Scale (ResNet-18)"]
    fig = vr.prediction_grid([img], {n: [lab] for n in names})
    FigureCanvasAgg(fig).draw()  # constrained layout and text extents need a rendered canvas
    renderer = fig.canvas.get_renderer()
    spans = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    for left, right in zip(spans, spans[1:]):
        assert left.x1 <= right.x0, "column titles overlap"
    assert [ax.get_title().replace("\n", " ") for ax in fig.axes[1:]] == names  # wrapped, not shortened
