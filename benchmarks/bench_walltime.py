"""Wall time of ``make reproduce`` (cpu profile) and ``make test``; long, so opt-in (``run_all.py --walltime``).

``make reproduce`` runs in a fresh temporary home (``LIPKIT_HOME`` pointing at a copy of
``notebooks/`` and ``configs/``): SynthLIP is generated, every notebook trained and executed, as on a
fresh clone, and the committed ``figures/`` are left alone. ``--in-place`` runs it in the repository
instead (reusing whatever ``data/`` and ``runs/`` hold, and rewriting ``figures/``). ``make test``
runs in the repository (unit tests + nbval over the notebooks). The figures go to
``benchmarks/walltime.json`` (read by run_all.py into RESULTS.md) and are printed as a table.

    .venv/bin/python benchmarks/bench_walltime.py                   # both (tens of minutes)
    .venv/bin/python benchmarks/bench_walltime.py --skip-reproduce  # make test only
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from run_all import load1, machine  # noqa: E402


def timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int, log_path: Path) -> dict:
    load_before, t0 = load1(), time.perf_counter()
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    return {"command": " ".join(cmd), "seconds": time.perf_counter() - t0, "rc": rc, "load_before": load_before,
            "load_after": load1(), "log": str(log_path)}


def reproduce_summary(text: str) -> str:
    rows = re.findall(r"^\| (\d\d_\S+) \| ([^|]+) \| ([\d.]+) \|", text, flags=re.M)
    total = re.search(r"^\| total \| (\w+) \| ([\d.]+) \|", text, flags=re.M)
    parts = [f"{name[:2]} {status.strip()} {float(s):.0f} s" for name, status, s in rows]
    return ", ".join(parts) + (f"; total {total.group(1)}" if total else "; no summary table (see log)")


def test_summary(text: str) -> str:
    found = re.findall(r"^=*\s*(\d+ (?:passed|failed|error)[^=\n]*?)\s*=*$", text, flags=re.M)
    found += re.findall(r"^(no notebooks yet)$", text, flags=re.M)
    return "; ".join(s.strip() for s in found) or "no pytest summary (see log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-reproduce", action="store_true")
    parser.add_argument("--skip-test", action="store_true")
    parser.add_argument("--in-place", action="store_true", help="run make reproduce in the repository itself")
    parser.add_argument("--timeout", type=int, default=4 * 3600, help="seconds per command (default 4 h)")
    parser.add_argument("--out", type=Path, default=HERE / "walltime.json")
    args = parser.parse_args(argv)

    logs = Path(tempfile.mkdtemp(prefix="lipkit-walltime-"))
    results = []
    if not args.skip_reproduce:
        env = dict(os.environ)
        home = None
        if not args.in_place:
            home = Path(tempfile.mkdtemp(prefix="lipkit-home-"))
            for sub in ("notebooks", "configs"):
                if (REPO / sub).is_dir():
                    shutil.copytree(REPO / sub, home / sub)
            env["LIPKIT_HOME"] = str(home)
        print(f"make reproduce PROFILE=cpu ({'in place' if args.in_place else f'fresh home {home}'}), log {logs}/reproduce.log",
              file=sys.stderr, flush=True)
        r = timed(["make", "-C", str(REPO), "reproduce", "PROFILE=cpu"], REPO, env, args.timeout, logs / "reproduce.log")
        r["command"] = "make reproduce PROFILE=cpu" + ("" if args.in_place else "  (fresh LIPKIT_HOME)")
        r["summary"] = reproduce_summary(Path(r["log"]).read_text(errors="replace"))
        results.append(r)
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    if not args.skip_test:
        print(f"make test, log {logs}/test.log", file=sys.stderr, flush=True)
        r = timed(["make", "-C", str(REPO), "test"], REPO, dict(os.environ), args.timeout, logs / "test.log")
        r["command"] = "make test"
        r["summary"] = test_summary(Path(r["log"]).read_text(errors="replace"))
        results.append(r)

    info = machine()
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    for r in results:
        r.update(date=now, commit=info["commit"])
    data = {"date": now, "commit": info["commit"], "cpu": info["cpu"], "cores": info["cores"], "results": results}
    if args.out.is_file():  # keep the other command's last figure when only one was run
        ran = {r["command"] for r in results}
        data["results"] += [r for r in json.loads(args.out.read_text()).get("results", []) if r["command"] not in ran]
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print("| command | measured | wall time | exit code | load before -> after | summary |")
    print("|---|---|---:|---:|---|---|")
    for r in data["results"]:
        print(f"| `{r['command']}` | {r.get('date', '?')} | {r['seconds']:.0f} s | {r['rc']} | {r['load_before']:.1f} -> {r['load_after']:.1f} | "
              f"{r['summary']} |")
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
