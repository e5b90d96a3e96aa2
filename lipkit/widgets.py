"""Interactive browsers for notebooks (ipywidgets): step through samples, overlay labels, show pose.

``browse(dataset_or_items)`` works on anything indexable that yields LIP sample dicts
(``image``, optional ``label``, ``id``, ``pose``): a ``LIPDataset`` or a list of dicts. Extra
panels (e.g. a baseline and an SSL prediction in notebook 05) are callables ``f(sample, index)``
returning a label map (drawn in the palette) or an RGB image. Rendering is a plain matplotlib
figure (``Browser.figure(i)``), so the same view is testable without a browser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lipkit.labels import LIP, LabelSet
from lipkit.viz import colorize, draw_pose, overlay

Panel = Callable[[Mapping[str, Any], int], np.ndarray]


class Browser:
    """State and rendering of one sample browser; ``widget`` is the ipywidgets view."""

    def __init__(self, items: Any, label_set: LabelSet | None = None, panels: Mapping[str, Panel] | None = None,
                 alpha: float = 0.6, show_overlay: bool = True, show_pose: bool = True,
                 panel_size: float = 3.2, titles: Callable[[Mapping[str, Any], int], str] | None = None) -> None:
        if len(items) == 0:
            raise ValueError("browse: nothing to show (the dataset or list is empty)")
        self.items = items
        self.label_set = label_set or getattr(items, "label_set", None) or LIP
        self.panels = dict(panels or {})
        self.alpha = alpha
        self.show_overlay = show_overlay
        self.show_pose = show_pose
        self.panel_size = panel_size
        self.titles = titles
        self.index = 0
        self._widget: Any = None

    def __len__(self) -> int:
        return len(self.items)

    def _panel_image(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        return colorize(value, self.label_set) if value.ndim == 2 else value

    def figure(self, index: int | None = None) -> Figure:
        """The figure the browser shows for sample ``index`` (default: the current one)."""
        index = self.index if index is None else int(index)
        if not 0 <= index < len(self.items):
            raise IndexError(f"browse: index {index} outside 0..{len(self.items) - 1}")
        sample = self.items[index]
        label = sample.get("label")
        image = np.asarray(sample["image"])
        shown = overlay(image, label, self.label_set, self.alpha) if (self.show_overlay and label is not None) else image
        views: list[tuple[str, np.ndarray]] = [("image + labels" if shown is not image else "image", shown)]
        if label is not None:
            views.append(("ground truth", colorize(label, self.label_set)))
        for name, fn in self.panels.items():
            views.append((name, self._panel_image(fn(sample, index))))
        fig = Figure(figsize=(self.panel_size * len(views), self.panel_size * 1.3), layout="constrained")
        axes = fig.subplots(1, len(views), squeeze=False)[0]
        for ax, (name, img) in zip(axes, views):
            ax.imshow(img, interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        pose = sample.get("pose")
        if self.show_pose and pose is not None:
            draw_pose(axes[0], pose)
        title = self.titles(sample, index) if self.titles else f"{index + 1}/{len(self.items)}  id {sample.get('id', index)}"
        fig.suptitle(title, fontsize=10)
        return fig

    @property
    def widget(self) -> Any:
        """The ipywidgets box: slider, previous/next, overlay and pose toggles, figure output."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self) -> Any:
        import ipywidgets as w

        slider = w.IntSlider(value=self.index, min=0, max=len(self.items) - 1, description="sample", continuous_update=False)
        prev, nxt = w.Button(description="<", layout=w.Layout(width="40px")), w.Button(description=">", layout=w.Layout(width="40px"))
        over = w.Checkbox(value=self.show_overlay, description="overlay")
        pose = w.Checkbox(value=self.show_pose, description="pose joints")
        # The figure goes into an Image widget as PNG bytes rather than through an Output widget:
        # headless executors (papermill/nbclient) can block on Output-widget capture messages
        # (jupyter/nbclient#312), and a notebook must run unattended in the pipeline.
        image = w.Image(format="png")

        def redraw(*_: Any) -> None:
            self.index, self.show_overlay, self.show_pose = slider.value, over.value, pose.value
            image.value = self.png()

        prev.on_click(lambda _: setattr(slider, "value", max(slider.value - 1, 0)))
        nxt.on_click(lambda _: setattr(slider, "value", min(slider.value + 1, slider.max)))
        for control in (slider, over, pose):
            control.observe(redraw, names="value")
        redraw()
        return w.VBox([w.HBox([prev, slider, nxt, over, pose]), image])

    def png(self, index: int | None = None, dpi: int = 90) -> bytes:
        """The current (or given) sample's figure as PNG bytes."""
        import io

        buffer = io.BytesIO()
        self.figure(index).savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def browse(dataset_or_items: Any, label_set: LabelSet | None = None, panels: Mapping[str, Panel] | None = None,
           **options: Any) -> Browser:
    """A sample browser over a dataset or a list of sample dicts; display it as a cell's value.

    ``panels`` maps a title to ``f(sample, index) -> label map or RGB image`` for extra columns.
    Options: ``alpha``, ``show_overlay``, ``show_pose``, ``panel_size``, ``titles``.
    """
    return Browser(dataset_or_items, label_set=label_set, panels=panels, **options)


def subset(items: Any, indices: Sequence[int]) -> list[Mapping[str, Any]]:
    """Materialise a few samples (e.g. failure cases) as a list a browser can step through."""
    return [items[int(i)] for i in indices]
