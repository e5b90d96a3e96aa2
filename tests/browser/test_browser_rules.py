"""The browser test's rules on their own (no browser): progress bars vs warnings, figures, widget text."""

from __future__ import annotations

import json

from browser_rules import figure_reasons, notebook_diff, output_problems, stderr_problems, widget_text_problem


def test_tqdm_progress_bars_are_not_problems() -> None:
    bars = ("\rtrain:   0%|          | 0/40 [00:00<?, ?it/s]"
            "\rtrain:  50%|█████     | 20/40 [00:01<00:01, 14.2it/s, loss=1.23]"
            "\rtrain: 100%|██████████| 40/40 [00:02<00:00, 15.0it/s, loss=0.98]\n"
            "stats: 12it [00:00, 97.51it/s]\n"
            "\x1b[A\rval: 100%|██████████| 16/16 [00:00<00:00, 120.00img/s]\n")
    assert stderr_problems(bars) == []


def test_warnings_and_tracebacks_between_bars_are_problems() -> None:
    text = ("\rtrain:  50%|█████     | 20/40 [00:01<00:01, 14.2it/s]"
            "\n/x/lipkit/train.py:10: UserWarning: something is off\n  warnings.warn('something is off')\n")
    [problem] = stderr_problems(text)
    assert "UserWarning: something is off" in problem and "it/s" not in problem
    assert stderr_problems("Traceback (most recent call last):\n  File ...\nValueError: x\n")


def test_error_outputs_are_problems() -> None:
    cells = [{"cell_type": "code", "outputs": [
        {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["\x1b[31mValueError\x1b[0m: bad"]},
        {"output_type": "stream", "name": "stdout", "text": "fine\n"}]}]
    [(index, problem)] = output_problems(cells)
    assert index == 0 and "ValueError: bad" in problem


def test_widgets_as_text() -> None:
    assert widget_text_problem("VBox(children=(HBox(children=(Button(description='<'")
    assert widget_text_problem("Image(value=b'\\x89PNG\\r\\n...', format='png')")
    assert widget_text_problem("Error displaying widget: model not found")
    assert widget_text_problem("Text(0.5, 1.0, 'a title')") is None  # a matplotlib repr is not a widget
    assert widget_text_problem("   mean_iou  pixel_accuracy\nHBox  12.0  80.1") is None


def test_figure_cells() -> None:
    png = [{"output_type": "execute_result", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}]
    assert figure_reasons('save(viz.pixel_share(st), "x.png")', [])
    assert figure_reasons("%matplotlib inline\nviz.compact(browser.figure(0))", [])
    assert figure_reasons("x = 1", png)  # the committed notebook showed an image
    assert not figure_reasons('if len(t):\n    save(fig, "x.png")', [])  # conditional: may show nothing
    assert not figure_reasons('grid = save(fig, "x.png")\nprint(1)', [])
    assert not figure_reasons("display(table)", [])


def test_notebook_diff_names_what_changed() -> None:
    a = {"cells": [{"cell_type": "code", "source": "1", "outputs": [], "metadata": {}}],
         "metadata": {"kernelspec": {"display_name": "Python 3", "name": "python3"}}, "nbformat": 4}
    b = json.loads(json.dumps(a))
    b["metadata"]["kernelspec"]["display_name"] = "Python 3 (lipkit)"
    b["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
    diff = notebook_diff(json.dumps(a, indent=1).encode(), json.dumps(b, indent=1).encode())
    assert "metadata.kernelspec" in diff and "Python 3 (lipkit)" in diff and "cell 0: changed outputs" in diff
    same = notebook_diff(b'{"a": 1.0}', b'{"a": 1}')
    assert "same JSON content" in same


def test_progress_bar_widgets_are_not_required_in_a_live_run():
    """A committed tqdm bar (the run was trained when outputs were stored) is not a widget a rerun must show."""
    from browser_rules import widget_expected

    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}}
    bar = {"output_type": "display_data", "data": {**view, "text/plain": ["train:   0%|          | 0/10 [00:00<?, ?it/s]"]}}
    box = {"output_type": "display_data", "data": {**view, "text/plain": ["VBox(children=(HBox(children=(Button(",]}}
    assert not widget_expected([bar]) and widget_expected([box]) and widget_expected([bar, box])
