import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from lipkit import viz
from lipkit.labels import LIP, PASCAL_PERSON_PART
from lipkit.ssl import LIP_JOINT_GROUPS
from lipkit.stats import stats_from_labels
from lipkit.widgets import browse


def _sample(seed=0, h=12, w=9, pose=True):
    rng = np.random.default_rng(seed)
    label = rng.choice([0, 2, 5, 13, 14, 15], size=(h, w)).astype(np.uint8)
    item = {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "label": label, "id": f"s{seed}"}
    if pose:
        p = np.full((16, 3), np.nan, np.float32)
        p[[5, 0, 8], :2] = [[1, 10], [7, 10], [4, 2]]  # L_Ankle, R_Ankle, B_Neck
        item["pose"] = p
    return item


def test_colorize_uses_the_palette_and_white_for_ignore():
    label = np.array([[0, 5], [19, 255]], np.uint8)
    rgb = viz.colorize(label, LIP)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 1]) == LIP.palette[5] and tuple(rgb[1, 0]) == LIP.palette[19]
    assert tuple(rgb[1, 1]) == (255, 255, 255) and tuple(rgb[0, 0]) == (0, 0, 0)
    assert tuple(viz.colorize(np.array([[6]], np.uint8), PASCAL_PERSON_PART)[0, 0]) == (0, 128, 128)
    with pytest.raises(ValueError, match="label map"):
        viz.colorize(np.zeros((2, 2, 3), np.uint8))


def test_overlay_blends_only_person_pixels():
    s = _sample()
    img, lab = s["image"], s["label"]
    np.testing.assert_array_equal(viz.overlay(img, lab, LIP, alpha=0.0), img)
    full = viz.overlay(img, lab, LIP, alpha=1.0)
    person = lab != 0
    np.testing.assert_array_equal(full[person], LIP.palette_array[lab[person]])
    np.testing.assert_array_equal(full[~person], img[~person])
    half = viz.overlay(img, lab, LIP, alpha=0.5).astype(int)
    expect = np.rint(0.5 * img[person].astype(float) + 0.5 * LIP.palette_array[lab[person]]).astype(int)
    assert np.abs(half[person] - expect).max() <= 1
    grey = viz.overlay(img[..., 0], lab, LIP, alpha=0.0)
    np.testing.assert_array_equal(grey[..., 2], img[..., 0])
    with pytest.raises(ValueError, match="sizes differ"):
        viz.overlay(img, lab[:-1], LIP)


def test_class_bars_order_colours_and_groups():
    values = np.array([5, 1, 9, 0, 0, 7] + [2] * 14, float)
    fig = viz.class_bars(values, LIP, sort=True, skip_background=True)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 19 and heights == sorted(heights, reverse=True)
    assert ax.get_xticklabels()[0].get_text() == "Hair"  # 9 is the largest without background
    assert np.allclose(ax.patches[0].get_facecolor()[:3], np.array(LIP.palette[2]) / 255)
    two = viz.class_bars(pd.DataFrame({"baseline": values, "ssl": values + 1}), LIP)
    assert len(two.axes[0].patches) == 40 and two.axes[0].get_legend() is not None
    with pytest.raises(ValueError, match="20 classes"):
        viz.class_bars(np.ones(7), LIP)


def test_dataset_figures_are_figures_and_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    items = [_sample(i, h=10 + i, w=8 + 2 * i) for i in range(5)]
    st = stats_from_labels([it["label"] for it in items], LIP, ids=[it["id"] for it in items])
    figs = [
        viz.palette_legend(LIP), viz.example_grid(items, LIP, ncols=3, show_pose=True),
        viz.images_per_class(st), viz.pixel_share(st), viz.region_sizes(st), viz.cooccurrence(st),
        viz.size_distribution(st), viz.view_distribution(st), viz.pose_visibility(st),
        viz.learning_curves(pd.DataFrame({"step": [1, 2, 1, 2], "loss": [2, 1, 3, 2], "run": list("aabb")}),
                            "step", ["loss"], hue="run"),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert list(tmp_path.iterdir()) == []
    grid = figs[1]
    assert len([a for a in grid.axes if a.axison]) == 5 * 2  # image + overlay per sample
    assert len(figs[4].axes[0].get_xticklabels()) == 19


def test_example_grid_rejects_unknown_rows():
    with pytest.raises(ValueError, match="unknown row"):
        viz.example_grid([_sample()], rows=("image", "depth"))


def test_draw_pose_colours_left_and_right_joints():
    fig = Figure()
    ax = fig.subplots()
    viz.draw_pose(ax, _sample()["pose"])
    offsets = ax.collections[0].get_offsets()
    colours = ax.collections[0].get_facecolors()
    by_point = {tuple(np.asarray(o).tolist()): tuple(c[:3]) for o, c in zip(offsets, colours)}
    assert len(by_point) == 3  # NaN joints are skipped
    assert np.allclose(by_point[(1.0, 10.0)], to_rgb(viz.POSE_COLORS["left"]))  # L_Ankle
    assert np.allclose(by_point[(7.0, 10.0)], to_rgb(viz.POSE_COLORS["right"]))  # R_Ankle
    assert len(ax.lines) == 0  # no limb has both ends annotated


def test_save_figure_makes_parents_and_saver_can_be_off(tmp_path):
    fig = viz.palette_legend()
    path = viz.save_figure(fig, tmp_path / "a" / "b" / "legend.png", dpi=50)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 10
    small = viz.save_figure(fig, tmp_path / "q.png", dpi=50, max_colors=16)
    with Image.open(small) as im:
        assert im.mode == "P" and len(im.getcolors()) <= 16
    im = viz.compact(fig, dpi=40, max_colors=8)
    assert im.mode == "P" and len(im.getcolors()) <= 8
    assert viz.saver("")(fig, "x.png") is fig
    assert viz.saver(tmp_path / "f")(fig, "x.png") is fig and (tmp_path / "f" / "x.png").is_file()


def test_browser_panels_and_toggles():
    items = [_sample(i) for i in range(3)]
    b = browse(items, LIP, panels={"prediction": lambda s, i: s["label"][::-1]})
    fig = b.figure(1)
    assert [a.get_title() for a in fig.axes] == ["image + labels", "ground truth", "prediction"]
    assert len(fig.axes[0].collections) == 1  # pose joints drawn
    b.show_overlay, b.show_pose = False, False
    fig = b.figure(1)
    assert fig.axes[0].get_title() == "image" and len(fig.axes[0].collections) == 0
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), items[1]["image"])
    assert fig._suptitle.get_text().startswith("sample 2 of 3")  # 1-based, as the slider
    b.show_joints = True  # the SSL joints of the two label panels: one marker per present joint group
    fig = b.figure(1)
    present = {g for g, ids in enumerate(LIP_JOINT_GROUPS) if np.isin(items[1]["label"], ids).any()}
    assert [len(ax.collections[0].get_offsets()) for ax in fig.axes[1:]] == [len(present)] * 2
    with pytest.raises(IndexError):
        b.figure(3)
    b.show_joints = False
    box = b.widget  # builds the ipywidgets view and renders the first sample
    controls = box.children[0].children
    assert [getattr(c, "description", "") for c in controls] == ["<", "sample", ">", "overlay", "pose joints", "parsing joints"]
    slider, image = controls[1], box.children[1]
    assert (slider.min, slider.max, slider.value) == (1, 3, 1)
    first = image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    slider.value = 3
    assert b.index == 2
    assert image.value != first and image.value == b.png(2)  # the view follows the slider
    with Image.open(io.BytesIO(first)) as a, Image.open(io.BytesIO(image.value)) as c:  # a fixed size
        assert a.size == c.size == (b.width_px, b.height_px)
    controls[5].value = True
    assert b.show_joints and image.value == b.png(2)


def test_browser_shows_only_controls_that_change_the_view():
    items = [_sample(i, pose=False) for i in range(2)]  # validation items: no pose
    box = browse(items, LIP).widget
    assert [getattr(c, "description", "") for c in box.children[0].children] == ["<", "sample", ">", "overlay",
                                                                                  "parsing joints"]
    tall, wide = _sample(0, h=30, w=10, pose=False), _sample(1, h=10, w=30, pose=False)
    b = browse([tall, wide], LIP)
    with Image.open(io.BytesIO(b.png(0))) as a, Image.open(io.BytesIO(b.png(1))) as c:
        assert a.size == c.size  # portrait and landscape samples: the same view size


def test_browser_refuses_an_empty_list():
    with pytest.raises(ValueError, match="empty"):
        browse([])


def _stats(items, name, split="train", **kw):
    return stats_from_labels([it["label"] for it in items], LIP, ids=[it["id"] for it in items], split=split,
                             dataset=name, **kw)


def _titles(fig):
    return [ax.get_title() for ax in fig.axes] + ([fig._suptitle.get_text()] if fig._suptitle is not None else [])


@pytest.mark.parametrize("name", ["SynthLIP", "LIP"])
def test_dataset_figures_are_titled_with_the_data_they_show(name):
    items = [_sample(i) for i in range(3)]
    st = _stats(items, name)
    for make in (viz.images_per_class, viz.pixel_share, viz.region_sizes, viz.cooccurrence, viz.size_distribution,
                 viz.view_distribution, viz.pose_visibility):
        text = " | ".join(_titles(make(st)))
        assert f"{name} train, 3 images" in text, (make.__name__, text)
        assert "LIP images" not in text  # no figure makes a claim about LIP over other data
        if name == "LIP":
            assert "SynthLIP" not in text


def test_example_grid_legend_holds_exactly_the_classes_present():
    items = [_sample(0), _sample(1)]
    items[1]["label"][0, :3] = [19, 255, 40]  # a class, the ignore value and an id outside the label set
    present = sorted(set(np.unique(np.concatenate([it["label"].ravel() for it in items])).tolist()) - {0, 255, 40})
    fig = viz.example_grid(items, LIP, title="SynthLIP train: 2 images")
    assert len(fig.legends) == 1 and fig._suptitle.get_text() == "SynthLIP train: 2 images"
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [LIP.classes[i] for i in present]
    assert 19 in present and 0 not in present  # overlays leave background unpainted: not in the legend
    colours = np.array([h.get_facecolor()[:3] for h in legend.legend_handles])
    np.testing.assert_allclose(colours, LIP.palette_array[present] / 255.0)
    painted = viz.example_grid(items, LIP, rows=("image", "label"))  # a label row paints background black
    assert painted.legends[0].get_texts()[0].get_text() == "Background"
    assert not viz.example_grid(items, LIP, legend=False).legends
    assert not viz.example_grid(items, LIP, rows=("image",)).legends
    assert viz.class_legend(Figure(layout="constrained"), [np.zeros((3, 3), np.uint8)], LIP) is None


def test_cooccurrence_text_keeps_whole_numbers_and_blanks_zeros_and_the_diagonal():
    values = np.array([[100.0, 0.2, np.nan], [33.4, 100.0, 99.6], [0.0, 12.5, 100.0]])
    text = viz.cooccurrence_text(values)
    assert text.tolist() == [["", "", ""], ["33", "", "100"], ["", "12", ""]]
    assert viz.cooccurrence_text(values, hide_zero=False)[0, 1] == "0"


def test_cooccurrence_figure_is_legible_and_rows_give_their_images():
    a, b, c = (np.zeros((4, 4), np.uint8) for _ in range(3))
    a[0, 0], a[1, 1] = 2, 5  # hair + upper-clothes
    b[0, 0], b[1, 1] = 2, 9  # hair + pants
    c[0, 0] = 2  # hair only
    st = stats_from_labels([a, b, c], LIP, split="val", dataset="SynthLIP")
    ax = viz.cooccurrence(st).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    assert rows[:2] == ["Hat (0)", "Hair (3)"] and rows[cols.index("Pants")] == "Pants (1)"
    cells = {}
    for t in ax.texts:
        x, y = t.get_position()
        cells[rows[int(y)].split(" (")[0], cols[int(x)]] = t.get_text()
        assert t.get_fontsize() >= 10
    shown = [v for v in cells.values() if v]
    assert shown and all(v.isdigit() and v != "0" for v in shown)
    assert cells["Hair", "Upper-clothes"] == "33" and cells["Upper-clothes", "Hair"] == "100"
    assert cells.get(("Upper-clothes", "Pants"), "") == ""  # never together: blank
    assert cells.get(("Hair", "Hair"), "") == ""  # the diagonal says nothing


def test_size_histogram_keeps_a_pile_at_one_size_in_one_bar():
    labels = [np.zeros((20 + i, w), np.uint8) for i, w in enumerate([30, 30, 30, 31, 45, 94])]
    st = stats_from_labels(labels, LIP, dataset="SynthLIP")
    sizes = st.image_sizes()
    edges = viz.size_edges(sizes)
    counts = np.histogram(sizes["width"], edges)[0]
    at = np.searchsorted(edges, 30) - 1  # the bin holding 30 px (heights start the shared range at 20)
    assert counts[at] == 3 and counts[at + 1] == 1  # 30 px three times, 31 px once: separate bars
    wide = pd.DataFrame({"width": [10, 2000], "height": [10, 10]})
    assert len(viz.size_edges(wide, max_bins=80)) - 1 <= 80
    fig = viz.size_distribution(st)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["width", "height"]


def test_pose_visibility_says_what_v_means_for_the_data():
    items = [_sample(i) for i in range(2)]
    pose = np.stack([it["pose"] for it in items])
    pose[:, 5, 2] = 1.0
    synth = _stats(items, "SynthLIP", pose=pose)
    synth.generator = {"seed": 0}
    real = _stats(items, "LIP", pose=pose)
    label = lambda fig: [t.get_text() for t in fig.legends[0].get_texts()][-1]
    assert label(viz.pose_visibility(synth)) == "v = 1 (covered by the person's own body)"
    assert label(viz.pose_visibility(real)) == "v = 1 (meaning undocumented)"
