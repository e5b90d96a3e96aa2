"""Each notebook as a student meets it: JupyterLab in Chromium, Run All, look at what shows.

Per notebook (on temporary copies; the repository's notebooks/ are only read):
  1. open the untouched copy, wait for the kernel and autosave, close the tab: the file on disk
     must still be byte-identical to the committed notebook;
  2. open the other copy, Edit > Clear Outputs of All Cells (so that what is checked comes
     from this run, not from the stored outputs), Run > Run All Cells, wait until the kernel is
     idle and every code cell has an execution count;
  3. then collect every problem: error outputs, stderr that is neither a tqdm progress bar nor
     allow-listed (browser_rules.EXPECTED_STDERR), tracebacks in rendered stderr, widgets shown as
     text, figure cells without an image (browser_rules.figure_reasons), browser console errors
     and page errors, and widget controls that do not change their box's image when used.
All problems of a notebook are reported together. Screenshots go to runs/browser/<notebook>/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest
from browser_rules import (figure_reasons, first_line, notebook_diff, output_problems, widget_expected,
                           widget_text_problem)
from browser_lab import NOTEBOOKS, SHOTS, TIMES

RUN_ALL_TIMEOUT = float(os.environ.get("LIPKIT_BROWSER_TIMEOUT", "300"))  # s per notebook
OPEN_TIMEOUT_MS = 120_000  # page load + kernel start on 2 busy cores
SETTLE_S = 6.0  # open/close check: wait after the kernel is idle (autosave runs every 2 s)
CONTROL_TIMEOUT_S = 20.0  # a control's redraw: kernel round trip + matplotlib render
VIEWPORT = {"width": 1400, "height": 900}

JS_READY = """() => {
  const app = window.jupyterapp; const w = app && app.shell.currentWidget;
  if (!w || !w.sessionContext || !w.content || !w.context || !w.context.isReady) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && !!document.querySelector('.jp-NotebookPanel .jp-Cell');
}"""

JS_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {kernel: k ? k.status : 'none',
          prompts: w.content.widgets.map(c => c.model.type === 'code'
            ? (c.node.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim() : null)};
}"""

JS_MODEL = "() => window.jupyterapp.shell.currentWidget.content.model.toJSON()"

JS_CELL_DOM = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => {
  if (c.model.type !== 'code') return null;
  const area = c.node.querySelector('.jp-OutputArea');
  if (!area) return {images: 0, broken: 0, canvases: 0, widgets: 0, tracebacks: [], texts: []};
  const imgs = [...area.querySelectorAll('img')];
  return {
    images: imgs.filter(im => im.complete && im.naturalWidth > 0).length,
    broken: imgs.filter(im => im.complete && im.naturalWidth === 0).length,
    canvases: area.querySelectorAll('canvas').length,
    widgets: area.querySelectorAll('.jupyter-widgets').length,
    tracebacks: [...area.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.innerText).filter(t => t.includes('Traceback')),
    texts: [...area.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText),
  };
})"""

# Tag every widget box that holds an Image and at least one control; describe its controls.
JS_TAG_CONTROLS = """() => {
  const CTRL = 'button.widget-button, button.widget-toggle-button, .widget-slider, .widget-checkbox, '
             + '.widget-dropdown, .widget-radio-box, .widget-play';
  const w = window.jupyterapp.shell.currentWidget;
  const boxes = [];
  w.content.widgets.forEach((c, ci) => {
    if (c.model.type !== 'code') return;
    const stop = c.node.querySelector('.jp-OutputArea');
    if (!stop) return;
    stop.querySelectorAll('img.widget-image').forEach(img => {
      let box = img.parentElement;
      while (box && box !== stop && !box.querySelector(CTRL)) box = box.parentElement;
      if (!box || box === stop || box.hasAttribute('data-lipkit-box')) return;
      const b = boxes.length;
      box.setAttribute('data-lipkit-box', String(b));
      const controls = [];
      box.querySelectorAll(CTRL).forEach(el => {
        if (el.parentElement.closest('[data-lipkit-ctl]')) return;
        const k = `${b}-${controls.length}`;
        el.setAttribute('data-lipkit-ctl', k);
        const label = (el.querySelector('.widget-label') || {innerText: ''}).innerText.trim();
        let type = 'control', description = label;
        if (el.matches('button.widget-button')) { type = 'Button'; description = el.innerText.trim() || el.title; }
        else if (el.matches('button.widget-toggle-button')) { type = 'ToggleButton'; description = el.innerText.trim() || el.title; }
        else if (el.matches('.widget-slider')) {
          const readout = (el.querySelector('.widget-readout') || {innerText: ''}).innerText.trim();
          type = /^-?\\d+$/.test(readout) ? 'IntSlider' : 'FloatSlider';
        }
        else if (el.matches('.widget-checkbox')) { type = 'Checkbox'; description = el.innerText.trim() || label; }
        else if (el.matches('.widget-dropdown')) type = 'Dropdown';
        else if (el.matches('.widget-radio-box')) type = 'RadioButtons';
        else if (el.matches('.widget-play')) type = 'Play';
        controls.push({key: k, type, description});
      });
      boxes.push({box: b, cell: ci, images: box.querySelectorAll('img.widget-image').length, controls});
    });
  });
  return boxes;
}"""

# A fingerprint of the pixels of a box's images; null while one of them is still loading.
JS_PIXELS = """(b) => {
  const imgs = [...document.querySelectorAll(`[data-lipkit-box="${b}"] img.widget-image`)];
  const parts = [];
  for (const img of imgs) {
    if (!img.complete || img.naturalWidth === 0) return null;
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let h = 0x811c9dc5;
    for (let i = 0; i < d.length; i++) { h ^= d[i]; h = Math.imul(h, 16777619); }
    parts.push(`${c.width}x${c.height}:${(h >>> 0).toString(16)}`);
  }
  return parts.join('|');
}"""

# Height of the whole notebook, scrolled to its top, file browser folded away (for the screenshot).
JS_SCROLL_TOP = """() => {
  const app = window.jupyterapp; app.shell.collapseLeft();
  const n = app.shell.currentWidget.content.node;
  const outer = n.querySelector('.jp-WindowedPanel-outer') || n;
  outer.scrollTop = 0; n.scrollTop = 0;
  return Math.max(outer.scrollHeight, n.scrollHeight);
}"""

# The order controls are used in: moving the slider first leaves "<" something to step back to.
CONTROL_ORDER = {"IntSlider": 0, "FloatSlider": 0, "Dropdown": 1, "RadioButtons": 2, "Button": 3,
                 "ToggleButton": 4, "Checkbox": 5}


def _menu(page, menu: str, command: str) -> None:
    """Click a main-menu entry the way a student does (menu bar, then the item)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).first.click()
    item = page.locator(f'.lm-Menu-item[data-command="{command}"]').first
    item.wait_for(state="visible", timeout=10_000)
    item.click()


def _open(page, lab, path: str, workspace: str) -> None:
    page.goto(lab.url(path, workspace), wait_until="domcontentloaded")
    page.wait_for_function(JS_READY, timeout=OPEN_TIMEOUT_MS)


def _slug(text: str) -> str:
    text = text.replace("<", "lt").replace(">", "gt")
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:30] or "x"


def check_open_close(page, lab, name: str, committed: bytes, problems: list[str]) -> None:
    _open(page, lab, f"openclose/{name}", f"oc-{_slug(name)}")
    time.sleep(SETTLE_S)
    _menu(page, "File", "application:close")
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(state="visible", timeout=3000)
    except Exception:  # noqa: BLE001 - no dialog: nothing unsaved, as it should be
        pass
    else:
        text = " ".join(dialog.inner_text().split())
        problems.append(f"closing the untouched notebook asked: {text!r} (opening it changed it in memory); "
                        "pressed the dialog's default button, as a student pressing Enter would")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    time.sleep(1.5)
    after = (lab.root / "openclose" / name).read_bytes()
    if after != committed:
        problems.append(f"opening and closing {name} without running it changed the file on disk:\n"
                        + notebook_diff(committed, after))
    lab.shutdown_kernels()


def run_all(page, name: str) -> float:
    """Clear outputs, Run All, wait until done; returns seconds. Raises with notebook + cell on timeout."""
    _menu(page, "Edit", "editmenu:clear-all")
    t0 = time.monotonic()
    _menu(page, "Run", "runmenu:run-all")
    deadline, quiet, state = t0 + RUN_ALL_TIMEOUT, 0, None
    time.sleep(1.0)
    while time.monotonic() < deadline:
        state = page.evaluate(JS_STATE)
        running = any(p is not None and "*" in p for p in state["prompts"])
        quiet = quiet + 1 if (state["kernel"] == "idle" and not running) else 0
        if quiet >= 3:
            return time.monotonic() - t0
        time.sleep(1.0)
    model = page.evaluate(JS_MODEL)
    busy = [i for i, p in enumerate(state["prompts"] if state else []) if p is not None and "*" in p]
    where = (f"cell {busy[0]} still running ({first_line(_source(model['cells'][busy[0]]))!r})" if busy
             else f"kernel {state['kernel'] if state else 'unknown'}")
    pytest.fail(f"{name}: Run All did not finish within {RUN_ALL_TIMEOUT:.0f} s: {where}", pytrace=False)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _wait_for(fn, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


def check_outputs(page, name: str, committed_nb: dict, problems: list[str]) -> dict[str, int]:
    """Check every cell's outputs; returns an inventory of what was looked at (printed per notebook)."""
    model = page.evaluate(JS_MODEL)
    cells = model["cells"]
    committed_cells = committed_nb["cells"]
    state = page.evaluate(JS_STATE)
    for i, prompt in enumerate(state["prompts"]):
        if prompt is not None and not re.search(r"\[\d+\]", prompt):
            problems.append(f"cell {i} ({first_line(_source(cells[i]))!r}) has no execution count after Run All "
                            f"(prompt {prompt!r}; the run stops at the first error)")
    errored = set()
    for i, problem in output_problems(cells):
        errored.add(i)
        problems.append(f"cell {i} ({first_line(_source(cells[i]))!r}): {problem}")

    def dom_settled():  # images decoded and widgets rendered (both are asynchronous)
        dom = page.evaluate(JS_CELL_DOM)
        pending = []
        for i, d in enumerate(dom):
            if d is None or i >= len(committed_cells):
                continue
            outs = committed_cells[i].get("outputs", []) if committed_cells[i].get("cell_type") == "code" else []
            if figure_reasons(_source(cells[i]), outs) and not (d["images"] or d["canvases"]):
                pending.append(i)
            if widget_expected(outs) and not d["widgets"]:
                pending.append(i)
        return dom if not pending else None

    dom = _wait_for(dom_settled, timeout=10.0, interval=0.5) or page.evaluate(JS_CELL_DOM)
    seen = {"code cells": sum(d is not None for d in dom), "figure cells": 0, "widget cells": 0,
            "stderr outputs": sum(o.get("output_type") == "stream" and o.get("name") == "stderr"
                                  for c in cells for o in c.get("outputs", []))}
    for i, d in enumerate(dom):
        if d is None:
            continue
        label = f"cell {i} ({first_line(_source(cells[i]))!r})"
        outs = (committed_cells[i].get("outputs", [])
                if i < len(committed_cells) and committed_cells[i].get("cell_type") == "code" else [])
        for tb in d["tracebacks"] if i not in errored else []:  # already reported from the outputs
            problems.append(f"{label}: rendered stderr with a traceback:\n{tb[-1500:]}")
        for text in d["texts"]:
            found = widget_text_problem(text)
            if found:
                problems.append(f"{label}: a widget is shown as text: {found!r}")
        reasons = figure_reasons(_source(cells[i]), outs)
        seen["figure cells"] += bool(reasons)
        seen["widget cells"] += widget_expected(outs)
        if reasons and not (d["images"] or d["canvases"]):
            problems.append(f"{label}: no image in the browser, but one is expected ({'; '.join(reasons)})"
                            + (f"; {d['broken']} broken <img>" if d["broken"] else ""))
        if widget_expected(outs) and not d["widgets"]:
            problems.append(f"{label}: the committed notebook shows a widget here, the browser shows none")
    return seen


def check_controls(page, name: str, out_dir, problems: list[str]) -> int:
    """Use every control of every widget box with an image; the image must change. Returns count used."""
    boxes = page.evaluate(JS_TAG_CONTROLS)
    used = 0
    for box in boxes:
        b = box["box"]
        image = page.locator(f'[data-lipkit-box="{b}"] img.widget-image').first
        before = _wait_for(lambda: page.evaluate(JS_PIXELS, b), timeout=10.0)
        if not before:
            problems.append(f"widget box in cell {box['cell']}: its image is empty or never loaded")
            continue
        controls = sorted(box["controls"], key=lambda c: CONTROL_ORDER.get(c["type"], 9))
        for n, ctl in enumerate(controls):
            what = f"{ctl['type']} {ctl['description']!r} (widget box in cell {box['cell']})"
            loc = page.locator(f'[data-lipkit-ctl="{ctl["key"]}"]')
            stem = f"cell{box['cell']:02d}_box{b}_{n:02d}_{ctl['type']}_{_slug(ctl['description'])}"
            image.scroll_into_view_if_needed()
            image.screenshot(path=str(out_dir / f"{stem}_before.png"))
            before = page.evaluate(JS_PIXELS, b) or before
            action = _use(page, loc, ctl["type"])
            if action is None:
                problems.append(f"{what}: no way to use this control type in the test")
                continue
            after = _wait_for(lambda: (lambda v: v if v and v != before else None)(page.evaluate(JS_PIXELS, b)),
                              timeout=CONTROL_TIMEOUT_S)
            image.screenshot(path=str(out_dir / f"{stem}_after.png"))
            used += 1
            if not after:
                problems.append(f"{what}: {action} did not change the displayed image within "
                                f"{CONTROL_TIMEOUT_S:.0f} s (screenshots {stem}_before/after.png)")
    return used


def _use(page, loc, kind: str) -> str | None:
    """Use a control as a student would; returns what was done (None: unknown kind)."""
    if kind in ("IntSlider", "FloatSlider"):
        handle = loc.locator(".noUi-handle").first
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        key = "ArrowLeft" if now is not None and top is not None and float(now) >= float(top) else "ArrowRight"
        handle.focus()
        page.keyboard.press(key)
        return f"pressing {key} on the focused slider handle"
    if kind in ("Button", "ToggleButton"):
        loc.click()
        return "clicking it"
    if kind == "Checkbox":
        loc.locator("input[type=checkbox]").click()
        return "toggling it"
    if kind == "Dropdown":
        select = loc.locator("select")
        count = select.locator("option").count()
        current = select.evaluate("s => s.selectedIndex")
        select.select_option(index=(current + 1) % max(count, 1))
        return "choosing the next option"
    if kind == "RadioButtons":
        radio = loc.locator("input[type=radio]:not(:checked)").first
        radio.click()
        return "choosing another option"
    return None


def _full_screenshot(page, path) -> None:
    height = page.evaluate(JS_SCROLL_TOP)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(height + 300, 16000))})
    time.sleep(1.0)
    page.evaluate(JS_SCROLL_TOP)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    time.sleep(0.5)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_browser(session, notebook) -> None:
    lab, browser, committed = session
    name = notebook.name
    out_dir = SHOTS / notebook.stem
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    problems: list[str] = []
    console: list[str] = []
    n_console = 0
    t_start, run_s, checked = time.monotonic(), float("nan"), ""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        def on_console(m) -> None:
            nonlocal n_console
            n_console += 1
            if m.type == "error":
                where = m.location.get("url") or ""
                console.append(f"console error: {m.text}" + (f" ({where}:{m.location.get('lineNumber')})" if where else ""))

        page.on("console", on_console)
        page.on("pageerror", lambda e: console.append(f"page error: {e}"))

        check_open_close(page, lab, name, committed[name], problems)

        _open(page, lab, f"run/{name}", f"run-{_slug(name)}")
        try:
            run_s = run_all(page, name)
        finally:
            page.screenshot(path=str(out_dir / "after_run_all_viewport.png"))
        print(f"\n{name}: Run All {run_s:.1f} s")
        seen = check_outputs(page, name, json.loads(committed[name]), problems)
        _full_screenshot(page, out_dir / "after_run_all.png")
        used = check_controls(page, name, out_dir, problems)
        seen["widget controls used"] = used
        checked = (", ".join(f"{v} {k}" for k, v in seen.items())
                   + f", {len(console)} console error(s) of {n_console} console message(s)")
        print(f"{name}: checked {checked}")
    finally:
        whole = time.monotonic() - t_start
        TIMES.append((notebook.stem, run_s, whole, checked))
        print(f"{name}: whole test {whole:.1f} s; screenshots in {out_dir}")
        try:
            context.close()
        finally:
            lab.shutdown_kernels()
    problems += sorted(set(console), key=console.index)
    if problems:
        pytest.fail(f"{name}: {len(problems)} problem(s) a student would meet:\n- " + "\n- ".join(problems),
                    pytrace=False)
