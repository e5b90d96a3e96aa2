"""The browser test runs only from ``make test-browser`` (LIPKIT_BROWSER_TEST=1), never in ``make test``.

``make test`` collects tests/ and so reaches this folder: here it ignores the browser test files
and says in one line why, and how to run them. ``make test-browser`` sets LIPKIT_BROWSER_TEST=1;
the session fixture then starts one JupyterLab and one Chromium for all notebooks and stops
both by process id whatever happens.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_lab import CHROMIUM, NOTEBOOKS, REPO, SHOTS, TIMES, Chromium, Lab  # noqa: E402

ENABLED = os.environ.get("LIPKIT_BROWSER_TEST") == "1"
_SESSION_START = time.monotonic()

if not ENABLED:
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter) -> None:
    write = terminalreporter.write_line
    if not ENABLED:
        if not CHROMIUM.exists():
            write("browser test skipped: no Chromium found (make test-browser after apt-get install chromium)")
        else:
            write(f"browser test skipped: not part of make test (Chromium at {CHROMIUM}: make test-browser runs it)")
        return
    if TIMES:
        for name, run_all, whole, checked in TIMES:
            write(f"browser wall time {name}: Run All {run_all:.1f} s, whole test {whole:.1f} s"
                  + (f" (checked {checked})" if checked else ""))
        write(f"browser wall time total: {time.monotonic() - _SESSION_START:.1f} s "
              f"(notebooks {sum(t[2] for t in TIMES):.1f} s, rest is JupyterLab/Chromium start and stop)")
        write(f"browser screenshots: {SHOTS}")


def _venv_python() -> Path:
    venv = REPO / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


@pytest.fixture(scope="session")
def session(tmp_path_factory):
    """(lab, browser, committed bytes per notebook): one JupyterLab on a temporary copy, one Chromium."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (Playwright's own download is not used)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed in this environment: make venv (it is in the dev extra)")
    committed = {p.name: p.read_bytes() for p in NOTEBOOKS}  # read once: others may edit notebooks/ meanwhile
    root = tmp_path_factory.mktemp("lab") / "root"
    for sub in ("openclose", "run"):  # untouched copies for the open/close check, copies to run
        (root / sub).mkdir(parents=True)
        for name, data in committed.items():
            (root / sub / name).write_bytes(data)
    lab, chromium = Lab(root=root, python=_venv_python()), Chromium()
    try:
        lab.start()
        browser = chromium.start()
        yield lab, browser, committed
    finally:
        leftovers = chromium.stop() + lab.stop()
        if leftovers:
            print(f"browser test: SIGKILLed {[p.pid for p in leftovers]} after SIGTERM was not enough")
