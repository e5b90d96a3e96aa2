"""A throwaway JupyterLab (from the project's venv) and a Playwright-driven Debian Chromium.

Both are stopped by process id, never by name: the server is started here with ``Popen`` (its
pid is known), its kernels are its child processes (read from ``/proc`` before it stops), and
the browser's processes are the ones whose command line carries a random marker switch given
to this launch only. Nothing here downloads a browser: Playwright only ever gets
``executable_path`` (Debian's ``/usr/bin/chromium``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path(os.environ.get("LIPKIT_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
# The notebooks a student meets; LIPKIT_BROWSER_NOTEBOOKS=<folder> points the test at others
# (e.g. deliberately broken ones, to see the test fail).
NOTEBOOK_DIR = Path(os.environ.get("LIPKIT_BROWSER_NOTEBOOKS", REPO / "notebooks"))
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SHOTS = REPO / "runs" / "browser"  # runs/ is git-ignored
TIMES: list[tuple[str, float, float, str]] = []  # (notebook, Run All s, whole test s, what was checked)

# User settings of the throwaway JupyterLab (its own settings dir, so a developer's own
# ~/.jupyter settings can neither break nor help the test). Each one is a deliberate deviation
# from a student's defaults:
LAB_SETTINGS = {
    # Every cell attached to the DOM, so that prompts, outputs and images of cells outside the
    # viewport can be read (the default windowing can leave them unrendered).
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # The student's autosave fires after 120 s; 2 s makes "open, wait, close" write whatever
    # opening changed within the few seconds the test waits.
    "@jupyterlab/docmanager-extension/plugin": {"autosaveInterval": 2},
    # No news pop-up and no request to jupyter.org (which is not reachable here).
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


# --------------------------------------------------------------------------- processes by id


@dataclass(frozen=True)
class Proc:
    """A process id together with its start time, so a recycled pid is never signalled."""

    pid: int
    start: int

    def alive(self) -> bool:
        fields = _stat(self.pid)
        return bool(fields) and int(fields[19]) == self.start and fields[0] not in ("Z", "X")  # a zombie has exited

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22: starttime


def proc(pid: int) -> Proc | None:
    start = _start_time(pid)
    return Proc(pid, start) if start is not None else None


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(pid: int) -> list[Proc]:
    """Every live descendant of ``pid`` (children, grandchildren ...), read from /proc."""
    parent: dict[int, int] = {}
    for p in _all_pids():
        fields = _stat(p)
        if fields:
            parent[p] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        cur = frontier.pop()
        for child, ppid in parent.items():
            if ppid == cur:
                found.append(child)
                frontier.append(child)
    return [p for p in (proc(c) for c in found) if p is not None]


def with_marker(marker: str) -> list[Proc]:
    """Processes whose command line contains ``marker`` (a random string given to one launch)."""
    out = []
    for p in _all_pids():
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd:
            found = proc(p)
            if found:
                out.append(found)
    return out


def stop_procs(procs: list[Proc], grace: float = 5.0) -> list[Proc]:
    """SIGTERM, wait up to ``grace`` s, SIGKILL what is left; returns those that needed SIGKILL."""
    for p in procs:
        p.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.alive() for p in procs):
        time.sleep(0.1)
    killed = [p for p in procs if p.alive()]
    for p in killed:
        p.signal(signal.SIGKILL)
    return killed


# --------------------------------------------------------------------------- JupyterLab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """``jupyter lab`` on 127.0.0.1 with a random token, serving ``root`` (a temporary folder)."""

    root: Path
    python: Path = Path(sys.executable)
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    popen: subprocess.Popen | None = None
    server: Proc | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, workspace: str) -> str:
        """The lab URL that opens ``path`` (relative to root) alone in a fresh workspace."""
        return f"{self.base}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def start(self, timeout: float = 90.0) -> None:
        home = self.root.parent / "jupyter-home"
        dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            target = dirs["settings"] / f"{plugin}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        env = dict(os.environ)
        env.update(JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
                   JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
                   JUPYTER_PLATFORM_DIRS="0", PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_TOKEN", None)
        self.log_path = home / "jupyterlab.log"
        last_error = "not started"
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            cmd = [str(self.python), "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.open_browser=False", "--LabApp.expose_app_in_browser=True",
                   "--ServerApp.terminals_enabled=False"]
            if os.geteuid() == 0:
                cmd.append("--allow-root")  # containers and CI run as root
            with open(self.log_path, "ab") as log:
                self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                              cwd=str(self.root), start_new_session=True)
            self.server = proc(self.popen.pid)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.popen.poll() is None:
                try:
                    self.api("GET", "/api/status")
                    return
                except (OSError, urllib.error.URLError) as exc:
                    last_error = str(exc)
                    time.sleep(0.5)
            if self.popen.poll() is None:  # up but not answering: give up
                self.stop()
                break
            last_error = f"jupyter lab exited with {self.popen.returncode}"
            if "already in use" not in self.log_path.read_text(errors="replace"):
                break  # only a port taken meanwhile is worth another try
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        raise RuntimeError(f"JupyterLab did not start ({last_error}); log {self.log_path}:\n{tail}")

    def api(self, method: str, path: str, timeout: float = 10.0):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut every session's kernel down through the REST API (what "Shut Down Kernel" does)."""
        for session in self.api("GET", "/api/sessions") or []:
            try:
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
            except (OSError, urllib.error.URLError):
                pass
        for kernel in self.api("GET", "/api/kernels") or []:
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
            except (OSError, urllib.error.URLError):
                pass

    def stop(self) -> list[Proc]:
        """Stop kernels, then the server, by pid; SIGKILL what does not exit. Returns SIGKILLed."""
        if self.server is None:
            return []
        children = descendants(self.server.pid)  # the kernels (and anything they started)
        try:
            if self.server.alive():
                self.shutdown_kernels()
        except (OSError, urllib.error.URLError, ValueError):
            pass
        killed = stop_procs([self.server], grace=15.0)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        killed += stop_procs([c for c in children if c.alive()], grace=5.0)
        self.server = None
        return killed


# --------------------------------------------------------------------------- Chromium


class Chromium:
    """Playwright driving Debian's Chromium (``executable_path``), with every pid it started."""

    def __init__(self, executable: Path = CHROMIUM) -> None:
        self.executable = executable
        self.marker = f"--lipkit-browser-test={secrets.token_hex(8)}"
        self._pw = None
        self.browser = None
        self.procs: list[Proc] = []

    def start(self):
        from playwright.sync_api import sync_playwright

        before = {p.pid for p in descendants(os.getpid())}
        self._pw = sync_playwright().start()
        args = [self.marker, "--disable-dev-shm-usage"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        try:
            self.browser = self._pw.chromium.launch(executable_path=str(self.executable), headless=True, args=args)
        finally:
            self.procs = [p for p in descendants(os.getpid()) if p.pid not in before]  # driver + browser
        return self.browser

    def stop(self) -> list[Proc]:
        procs = {p.pid: p for p in self.procs}
        for root in with_marker(self.marker):
            procs.setdefault(root.pid, root)
            for child in descendants(root.pid):
                procs.setdefault(child.pid, child)
        try:
            if self.browser is not None:
                self.browser.close()
        except Exception:  # noqa: BLE001 - a crashed browser must not stop the cleanup
            pass
        try:
            if self._pw is not None:
                self._pw.stop()
        except Exception:  # noqa: BLE001
            pass
        return stop_procs([p for p in procs.values() if p.alive()], grace=5.0)


def copy_notebooks(sources: list[Path], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for src in sources:
        shutil.copy2(src, target / src.name)
