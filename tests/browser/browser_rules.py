"""What counts as a problem in a notebook a student has just run: pure functions, no browser."""

from __future__ import annotations

import ast
import difflib
import json
import re
from typing import Any

# ----------------------------------------------------------------------------- stderr

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# One tqdm status line, as tqdm's default format writes it (``{l_bar}{bar}{r_bar}``):
#   "train: 40%|████      | 4/10 [00:01<00:02,  3.10it/s, loss=0.3]"   (known total)
#   "train: 12it [00:01,  9.50it/s]"                                   (unknown total)
# The bracket with elapsed time and rate is what tells a progress bar from a warning text.
TQDM_LINE = re.compile(
    r"""^\s*(?:[^\n]*?:\s*)?                                   # description
        (?:\d{1,3}%\|[^|]*\|\s*[\d.]+[kMGT]?/[\d.?]+[kMGT]?     # 40%|bar| 4/10
          |[\d.]+[kMGT]?[A-Za-z/]*)                            # 12it  (no total)
        \s*\[[\d:]+(?:<[\d:?]+)?(?:,[^\]]*)?\]\s*$""",
    re.VERBOSE)

# Expected stderr that is not a progress bar: (pattern matching the whole message, why it is
# acceptable). Each must say why a student can ignore it. Keep it short; a new warning is a
# finding to look at, not something to add here by reflex.
EXPECTED_STDERR: list[tuple[re.Pattern[str], str]] = []


def stderr_problems(text: str) -> list[str]:
    """The parts of one stderr stream that are neither tqdm progress bars nor allow-listed."""
    text = ANSI.sub("", text)
    if "Traceback" in text:
        return [text.strip()]
    leftover = "\n".join(seg for seg in re.split(r"[\r\n]+", text) if seg.strip() and not TQDM_LINE.match(seg))
    for pattern, _why in EXPECTED_STDERR:
        leftover = pattern.sub("", leftover)
    return [leftover.strip()] if leftover.strip() else []


# ----------------------------------------------------------------------------- widgets as text

# What a widget looks like when the browser shows its text/plain repr instead of the widget,
# or the widget manager's own failure message.
WIDGET_AS_TEXT = re.compile(
    r"\b(?:VBox|HBox|GridBox|Box|Tab|Accordion|IntSlider|FloatSlider|SelectionSlider|IntRangeSlider|"
    r"IntProgress|FloatProgress|Button|ToggleButton|Checkbox|Dropdown|RadioButtons|Select|Play|Output|"
    r"IntText|FloatText|Text|Textarea|HTML|Label)\((?:children|value|description|layout|options|max|min|outputs)="
    r"|\bImage\(value="
    r"|Error displaying widget"
    r"|Error rendering output item"
    r"|Failed to (?:load|create) (?:model|view) class"
    r"|Loading widget\.\.\."
)


def widget_text_problem(text: str) -> str | None:
    m = WIDGET_AS_TEXT.search(text)
    if not m:
        return None
    start = max(0, m.start() - 40)
    return text[start:m.end() + 60].replace("\n", " ").strip()


# ----------------------------------------------------------------------------- figures

# A cell's value is a figure when its last top-level statement is one of these calls (the
# project's ``save(fig, name)`` returns the figure, ``viz.compact(...)`` a PNG, ``x.figure(i)`` a
# Figure, ``plt.show()`` draws the current one).
FIGURE_CALLS = {"save", "compact", "figure", "show", "imshow", "savefig"}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _python_only(source: str) -> str:
    """Cell source without IPython magics/shell lines (they are not Python)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def figure_reasons(source: str, committed_outputs: list[dict[str, Any]]) -> list[str]:
    """Why this cell must show an image, if it must (empty list: no image required).

    (a) the committed notebook's output of the cell has an image/png (those outputs were stored
        from a run at the same smoke defaults, so they are what a student should see), or
    (b) the cell's value is a figure: its last top-level statement is a bare call to save(...),
        viz.compact(...), *.figure(...), plt.show() ... A call nested in ``if``/``for`` or in a
        conditional expression does not count (it may legitimately show nothing), and neither
        does ``display(...)`` (it shows tables as often as figures).
    """
    reasons = []
    if any("image/png" in o.get("data", {}) for o in committed_outputs):
        reasons.append("the committed notebook shows an image here")
    try:
        body = ast.parse(_python_only(source)).body
    except SyntaxError:
        body = []
    if body and isinstance(body[-1], ast.Expr) and _call_name(body[-1].value) in FIGURE_CALLS:
        reasons.append(f"its value is a figure ({_call_name(body[-1].value)}(...))")
    return reasons


def widget_expected(committed_outputs: list[dict[str, Any]]) -> bool:
    """Whether the committed cell shows a widget a live run must show too.

    tqdm progress bars (tqdm.auto draws them as widgets) are left out: a training cell shows one only
    when it trains, and says "reused" in one line when the run was already on disk.
    """
    def is_progress_bar(o: dict[str, Any]) -> bool:
        text = "".join(o.get("data", {}).get("text/plain", ""))
        return bool(text) and all(TQDM_LINE.match(line) for line in text.splitlines() if line.strip())

    return any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) and not is_progress_bar(o)
               for o in committed_outputs)


# ----------------------------------------------------------------------------- outputs


def output_problems(cells: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(cell index, problem) for error outputs and unexpected stderr in notebook-JSON cells."""
    found = []
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            kind = out.get("output_type")
            if kind == "error":
                tb = ANSI.sub("", "\n".join(out.get("traceback", [])))
                found.append((i, f"error output {out.get('ename')}: {out.get('evalue')}\n{tb[-1500:]}"))
            elif kind == "stream" and out.get("name") == "stderr":
                text = out.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                for problem in stderr_problems(text):
                    found.append((i, f"stderr output:\n{problem[:1500]}"))
    return found


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:100]
    return source.strip()[:100]


# ----------------------------------------------------------------------------- file changes


def notebook_diff(before: bytes, after: bytes, max_lines: int = 60) -> str:
    """What changed between two notebook files: a structural summary, then a text diff."""
    lines = []
    try:
        a, b = json.loads(before), json.loads(after)
    except ValueError:
        a = b = None
    if a is not None and b is not None:
        for key in sorted(set(a) | set(b)):
            if key != "cells" and a.get(key) != b.get(key):
                if key == "metadata":
                    for mk in sorted(set(a["metadata"]) | set(b.get("metadata", {}))):
                        va, vb = a["metadata"].get(mk), b.get("metadata", {}).get(mk)
                        if va != vb:
                            lines.append(f"metadata.{mk}: {_short(va)} -> {_short(vb)}")
                else:
                    lines.append(f"{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
        ca, cb = a.get("cells", []), b.get("cells", [])
        if len(ca) != len(cb):
            lines.append(f"number of cells: {len(ca)} -> {len(cb)}")
        for i, (x, y) in enumerate(zip(ca, cb)):
            keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            if keys:
                lines.append(f"cell {i}: changed {', '.join(keys)}")
        if not lines:
            lines.append("same JSON content, different bytes (formatting: indentation, key order, escaping or final newline)")
    text = list(difflib.unified_diff(before.decode(errors="replace").splitlines(),
                                     after.decode(errors="replace").splitlines(), "committed", "after open+close",
                                     lineterm="", n=1))
    shown = [t if len(t) < 200 else t[:200] + " ..." for t in text[:max_lines]]
    more = [f"... {len(text) - max_lines} more diff lines"] if len(text) > max_lines else []
    return "\n".join(lines + ["text diff:"] + shown + more)


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + " ..."
