"""Interactive browsers for notebooks (ipywidgets): step through samples, overlay labels, show pose and joints.

``browse(dataset_or_items)`` works on anything indexable that yields LIP sample dicts
(``image``, optional ``label``, ``id``, ``pose``): a ``LIPDataset`` or a list of dicts. Extra
panels (e.g. a baseline and an SSL prediction in notebook 05) are callables ``f(sample, index)``
returning a label map (drawn in the palette) or an RGB image. Rendering is a plain matplotlib
figure (``Browser.figure(i)``), so the same view is testable without a browser.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from lipkit import ssl
from lipkit.labels import LIP, LabelSet
from lipkit.viz import colorize, draw_pose, overlay

Panel = Callable[[Mapping[str, Any], int], np.ndarray]


class Browser:
    """State and rendering of one sample browser; ``widget`` is the ipywidgets view.

    Laid out for a notebook column: every view is drawn at ``width_px`` x a fixed height (images
    are letterboxed, so portrait and landscape samples do not make the view jump), shown at its
    own pixel size (no browser rescaling), with titles of ``font_size`` points.
    """

    def __init__(self, items: Any, label_set: LabelSet | None = None, panels: Mapping[str, Panel] | None = None,
                 alpha: float = 0.6, show_overlay: bool = True, show_pose: bool = True, show_joints: bool = False,
                 width_px: int = 900, height_px: int | None = None, font_size: float = 10.0, dpi: int = 100,
                 titles: Callable[[Mapping[str, Any], int], str] | None = None) -> None:
        if len(items) == 0:
            raise ValueError("browse: nothing to show (the dataset or list is empty)")
        self.items = items
        self.label_set = label_set or getattr(items, "label_set", None) or LIP
        self.panels = dict(panels or {})
        self.alpha, self.show_overlay, self.show_pose, self.show_joints = alpha, show_overlay, show_pose, show_joints
        self.has_pose = _has_pose(items[0])
        self.width_px, self.font_size, self.dpi, self.titles = width_px, font_size, dpi, titles
        n_views = 1 + ("label" in items[0]) + len(self.panels)
        self.height_px = height_px or int(min(420, 1.25 * width_px / n_views + 50))
        self.index = 0
        self._widget: Any = None

    def __len__(self) -> int:
        return len(self.items)

    def views(self, index: int) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
        """``(title, RGB image, label map or None)`` of each panel of sample ``index``."""
        sample = self.items[index]
        label = sample.get("label")
        image = np.asarray(sample["image"])
        overlaid = self.show_overlay and label is not None
        views = [("image + labels" if overlaid else "image",
                  overlay(image, label, self.label_set, self.alpha) if overlaid else image, None)]
        if label is not None:
            views.append(("ground truth", colorize(label, self.label_set), np.asarray(label)))
        for name, fn in self.panels.items():
            value = np.asarray(fn(sample, index))
            views.append((name, colorize(value, self.label_set), value) if value.ndim == 2 else (name, value, None))
        return views

    def figure(self, index: int | None = None) -> Figure:
        """The figure the browser shows for sample ``index`` (default: the current one)."""
        index = self.index if index is None else int(index)
        if not 0 <= index < len(self.items):
            raise IndexError(f"browse: index {index} outside 0..{len(self.items) - 1}")
        sample, views = self.items[index], self.views(index)
        fig = Figure(figsize=(self.width_px / self.dpi, self.height_px / self.dpi), dpi=self.dpi, layout="constrained")
        axes = fig.subplots(1, len(views), squeeze=False)[0]
        for ax, (name, rgb, label) in zip(axes, views):
            ax.imshow(rgb, interpolation="nearest")
            ax.set_title(name, fontsize=self.font_size)
            ax.set_xticks([])
            ax.set_yticks([])
            if self.show_joints and label is not None:
                draw_parsing_joints(ax, label, self.label_set)
        if self.show_pose and self.has_pose:
            draw_pose(axes[0], sample["pose"])
        title = self.titles(sample, index) if self.titles else f"sample {index + 1} of {len(self.items)}: id {sample.get('id', index)}"
        fig.suptitle(title, fontsize=self.font_size + 1)
        return fig

    @property
    def widget(self) -> Any:
        """The ipywidgets box: previous/next, a 1-based slider, the toggles that apply, the view."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def toggles(self) -> dict[str, bool]:
        """The checkboxes this browser shows (only controls that change the view)."""
        shown = {}
        if "label" in self.items[0]:
            shown["overlay"] = self.show_overlay
        if self.has_pose:
            shown["pose joints"] = self.show_pose
        if "label" in self.items[0] or self.panels:
            shown["parsing joints"] = self.show_joints
        return shown

    def _build(self) -> Any:
        import ipywidgets as w  # optional: only a live notebook needs ipywidgets

        slider = w.IntSlider(value=self.index + 1, min=1, max=len(self.items), description="sample",
                             continuous_update=False)
        prev = w.Button(description="<", tooltip="previous sample", layout=w.Layout(width="40px"))
        nxt = w.Button(description=">", tooltip="next sample", layout=w.Layout(width="40px"))
        boxes = {name: w.Checkbox(value=value, description=name, indent=False, layout=w.Layout(width="auto"))
                 for name, value in self.toggles().items()}
        # The figure goes into an Image widget as PNG bytes rather than through an Output widget:
        # headless executors (papermill/nbclient) can block on Output-widget capture messages
        # (jupyter/nbclient#312), and a notebook must run unattended in the pipeline.
        image = w.Image(format="png", layout=w.Layout(width=f"{self.width_px}px", height=f"{self.height_px}px"))

        def redraw(*_: Any) -> None:
            self.index = slider.value - 1
            self.show_overlay = boxes["overlay"].value if "overlay" in boxes else self.show_overlay
            self.show_pose = boxes["pose joints"].value if "pose joints" in boxes else self.show_pose
            self.show_joints = boxes["parsing joints"].value if "parsing joints" in boxes else self.show_joints
            image.value = self.png()

        prev.on_click(lambda _: setattr(slider, "value", max(slider.value - 1, slider.min)))
        nxt.on_click(lambda _: setattr(slider, "value", min(slider.value + 1, slider.max)))
        for control in (slider, *boxes.values()):
            control.observe(redraw, names="value")
        redraw()
        return w.VBox([w.HBox([prev, slider, nxt, *boxes.values()]), image])

    def png(self, index: int | None = None) -> bytes:
        """The current (or given) sample's view as PNG bytes of ``width_px`` x ``height_px``."""
        buffer = io.BytesIO()
        self.figure(index).savefig(buffer, format="png", dpi=self.dpi)
        return buffer.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display  # optional: only a live notebook has IPython's display

        display(self.widget)


def _has_pose(sample: Mapping[str, Any]) -> bool:
    pose = sample.get("pose")
    return pose is not None and bool(np.isfinite(np.asarray(pose, dtype=np.float32)[:, :2]).any())


def draw_parsing_joints(ax: Any, label: np.ndarray, label_set: LabelSet = LIP, size: float = 30.0) -> None:
    """Mark the SSL joints of a label map (centres of its merged part regions, lipkit.ssl) on ``ax``."""
    if label_set.name not in ssl.LABEL_SET_JOINTS:
        return
    groups = ssl.joint_groups_for(label_set)
    joints, present = ssl.parsing_to_joints(torch.from_numpy(np.asarray(label, dtype=np.int64))[None], groups)
    xy = joints[0][present[0]].numpy()
    ax.scatter(xy[:, 0], xy[:, 1], s=size, c="black", marker="s", edgecolors="white", linewidths=1.0, zorder=3)


def browse(dataset_or_items: Any, label_set: LabelSet | None = None, panels: Mapping[str, Panel] | None = None,
           **options: Any) -> Browser:
    """A sample browser over a dataset or a list of sample dicts; display it as a cell's value.

    ``panels`` maps a title to ``f(sample, index) -> label map or RGB image`` for extra columns.
    Options: ``alpha``, ``show_overlay``, ``show_pose``, ``show_joints`` (the SSL joints of every label
    panel), ``width_px``, ``height_px``, ``font_size``, ``titles``.
    """
    return Browser(dataset_or_items, label_set=label_set, panels=panels, **options)


def subset(items: Any, indices: Sequence[int]) -> list[Mapping[str, Any]]:
    """Materialise a few samples (e.g. failure cases) as a list a browser can step through."""
    return [items[int(i)] for i in indices]
