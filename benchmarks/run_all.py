"""Run every benchmark script and collect the figures into ``benchmarks/RESULTS.md`` (``make bench``).

Each script runs as a subprocess (its own process: clean peak memory, no shared warm caches) and
prints markdown tables; this runner parses those tables (and, for one script, a line of text),
runs each script ``repeats`` times, and reports every figure as the median over the repeats with
its target and whether it is met. Scripts already take medians over their own inner repeats; the
outer repeats here absorb load from other processes on a shared machine. RESULTS.md records the
machine (CPU model, cores, RAM), python and torch versions, the date, the git commit, the 1-minute
load average before and after, each script's command and its last output verbatim.

    .venv/bin/python benchmarks/run_all.py                     # every script, default repeats
    .venv/bin/python benchmarks/run_all.py --repeats 1         # one run each (quick look)
    .venv/bin/python benchmarks/run_all.py --only ssl,metrics  # some scripts (RESULTS.md still lists all figures)
    .venv/bin/python benchmarks/run_all.py --walltime          # also time `make reproduce` and `make test` (long)
    .venv/bin/python benchmarks/run_all.py --refresh           # re-read walltime.json / gpu_results.md into RESULTS.md

Wall times (``--walltime``, see bench_walltime.py) are stored in ``benchmarks/walltime.json`` and
shown in later RESULTS.md files with the date they were measured. GPU figures come from
``benchmarks/gpu_check.sh`` run on a lent GPU; when its output is saved as
``benchmarks/gpu_results.md`` it is included verbatim. Hand-written notes between the
``<!-- notes -->`` markers of an existing RESULTS.md are kept.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass
class Bench:
    """One script: how to run it and how many times by default."""

    key: str
    script: str
    args: list[str]
    repeats: int
    timeout_s: int
    what: str


@dataclass
class Figure:
    """One number read from a script's output: table row x column, or a regex on the text."""

    name: str
    bench: str
    unit: str
    row: str = ""  # substring of the first cell (case-insensitive)
    col: str = ""  # substring of the header cell
    regex: str = ""  # alternative: group 1 of this pattern on stdout
    section: str = ""  # substring of the text printed between the previous table and this one
    scale: float = 1.0
    target: str = ""  # e.g. "<= 1.05", ">= 10", "< 5"; empty: no target
    values: list[float] = field(default_factory=list)
    error: str = ""


BENCHES: list[Bench] = [
    Bench("ssl", "bench_ssl.py", ["--large"], 3, 1200,
          "SSL joints + heatmaps vs a per-image reference loop (1 thread); step time with the structure term vs plain "
          "CE for the small model and DeepLabV2-ResNet-101 @ 321"),
    Bench("train", "bench_train.py", ["--threads", "2"], 2, 1800,
          "training step as fit runs it (forward, loss on every output, backward, SGD): img/s, peak memory, paper/none"),
    Bench("models", "bench_models.py", ["--threads", "2"], 1, 1800,
          "forward+backward throughput and peak RSS of model configurations (2 threads)"),
    Bench("metrics", "bench_metrics.py", [], 3, 600, "ConfusionMatrix.update throughput on one core"),
    Bench("loading", "bench_loading.py", ["--n", "200"], 3, 900,
          "LIP-format decode + training transforms, images/s per worker"),
    Bench("check_data", "bench_check_data.py", ["--n", "500"], 3, 900, "check-data scan rate on one core"),
    Bench("stats", "bench_stats.py", ["--n", "500"], 3, 900, "dataset statistics rate"),
    Bench("synth", "bench_synth.py", ["--no-stats"], 1, 900, "SynthLIP generation, 2,000 train + 500 val on 2 workers"),
    Bench("score", "bench_score.py", [], 1, 1200,
          "python -m lipkit score: 10,000 LIP-val-sized prediction PNGs and their ground truth decoded and scored"),
]

TRAIN_SMALL, TRAIN_R101 = "small (deeplabv2", "ResNet-101 @ 321"


def figures() -> list[Figure]:
    """Every figure RESULTS.md reports (fresh objects)."""
    return [
        # SSL overhead (issue 6 target: <= 1.05). bench_ssl: "paper" against plain CE (no joint computation);
        # bench_train: against mode "none" as fit runs it (which also computes the joint error, for logging).
        Figure("SSL overhead, small CPU model (step time paper / plain CE, 1 thread)", "ssl", "ratio",
               "full step, mode 'paper'", "share", section="resnet18", scale=0.01, target="<= 1.05"),
        Figure("SSL overhead, DeepLabV2-ResNet-101 @ 321, batch 1 (paper / plain CE, 1 thread, one step each)", "ssl",
               "ratio", "full step, mode 'paper'", "share", section="resnet101", scale=0.01, target="<= 1.05"),
        Figure("joint computation alone, share of a small-model step (issue 4 target)", "ssl", "%",
               "joint computation alone", "share", section="resnet18", target="< 5"),
        Figure("joint computation alone, share of a DeepLabV2-ResNet-101 @ 321 step", "ssl", "%",
               "joint computation alone", "share", section="resnet101", target="< 5"),
        Figure("SSL overhead as fit runs it, small CPU model (paper / none-with-joint-logging, 2 threads)", "train",
               "ratio", TRAIN_SMALL, "SSL overhead", target="<= 1.05"),
        Figure("SSL overhead as fit runs it, DeepLabV2-ResNet-101 @ 321 (batch 1, one step each)", "train", "ratio",
               TRAIN_R101, "SSL overhead", target="<= 1.05"),
        # joint extraction vs the per-image loop (target >= 10x)
        Figure("joints + heatmaps speed-up, batch 10, 41x41", "ssl", "x", "joints + heatmaps, batch 10, 41x41", "speed-up", target=">= 10"),
        Figure("joints + heatmaps speed-up, batch 8, 384x384", "ssl", "x", "joints + heatmaps, batch 8, 384x384", "speed-up", target=">= 10"),
        Figure("joints + heatmaps into a reused buffer (out=) speed-up, batch 8, 384x384", "ssl", "x",
               "into a reused buffer (out=), batch 8, 384x384", "speed-up", target=">= 10"),
        Figure("joint error speed-up, batch 10, 41x41", "ssl", "x", "joint error (pred vs gt), batch 10, 41x41", "speed-up"),
        Figure("joint error speed-up, batch 8, 384x384", "ssl", "x", "joint error (pred vs gt), batch 8, 384x384", "speed-up"),
        # confusion matrix (target: 10,000 LIP-val-sized predictions in < 5 s on one core)
        Figure("ConfusionMatrix: 10,000 LIP-val predictions, int64 torch argmax, one image per update", "metrics", "s",
               "int64 torch pred", "projected", target="< 5"),
        Figure("ConfusionMatrix: 10,000 LIP-val predictions, uint8 numpy, one image per update", "metrics", "s",
               "uint8 numpy, one image per update", "projected", target="< 5"),
        Figure("ConfusionMatrix update throughput (int64 torch argmax)", "metrics", "MPx/s", "int64 torch pred", "MPx/s"),
        # data loading
        Figure("decode (JPEG + id PNG), per worker", "loading", "img/s", "decode (JPEG", "per worker"),
        Figure("decode + train transforms @ 321, per worker", "loading", "img/s", "decode + train transforms, 321", "per worker"),
        Figure("decode + train transforms @ 128, per worker", "loading", "img/s", "decode + train transforms, 128", "per worker"),
        Figure("training input path @ 321 (DataLoader, 0 workers)", "loading", "img/s", "0 workers", "images/s |"),
        Figure("training input path @ 321 (DataLoader, 2 workers), per worker", "loading", "img/s", "2 workers", "per worker"),
        # training throughput and memory
        Figure("training img/s, small CPU model (cpu_small.yaml batch and crop, 2 threads, none)", "train", "img/s", TRAIN_SMALL, "img/s (none)"),
        Figure("training img/s, small CPU model (paper)", "train", "img/s", TRAIN_SMALL, "img/s (paper)"),
        Figure("peak memory, small CPU model training", "train", "MiB", TRAIN_SMALL, "peak memory"),
        Figure("training img/s, DeepLabV2-ResNet-101 @ 321 (batch 1, 2 threads)", "train", "img/s", TRAIN_R101, "img/s (none)"),
        Figure("peak memory, DeepLabV2-ResNet-101 @ 321 training", "train", "MiB", TRAIN_R101, "peak memory"),
        Figure("forward+backward img/s, small (r18 w0.25 os8, batch 8 @ 128)", "models", "img/s", "small (deeplabv2", "img/s"),
        Figure("forward+backward img/s, DeepLabV2-ResNet-101 @ 321", "models", "img/s", "DeepLabV2 ResNet-101", "img/s"),
        Figure("peak RSS, DeepLabV2-ResNet-101 @ 321 forward+backward", "models", "MB", "DeepLabV2 ResNet-101", "peak"),
        # data tools
        Figure("check-data scan, 1 core", "check_data", "img/s", "check-data scan", "images/s"),
        Figure("statistics, label threads 0", "stats", "img/s", "0", "images/s"),
        Figure("SynthLIP generation rate (2 workers)", "synth", "img/s", regex=r"([\d.]+) img/s"),
        Figure("SynthLIP 2,000 + 500 ideal wall on 2 free cores", "synth", "s", regex=r"ideal wall on \d+ free cores: ([\d.]+) s",
               target="<= 30"),
        # scoring a folder (issue target: 10,000 LIP-val-sized predictions in < 60 s on 2 cores, PNG decoding included)
        Figure("score: 10,000 LIP-val-sized prediction PNGs, decoding included (default threads)", "score", "s",
               "id PNGs (palette, as predict writes), default threads", "median s", target="< 60"),
        Figure("score: 10,000 prediction PNGs, a decoding thread per core", "score", "s", "a decoding thread per core", "median s"),
        Figure("score: colour prediction PNGs (RGB), projected to 10,000", "score", "s", "colour PNGs", "projected"),
    ]


# ---------------------------------------------------------------------------------------- parsing
def parse_tables(text: str) -> list[tuple[str, list[dict[str, str]]]]:
    """Markdown tables in ``text``: (text printed since the previous table, [{header: cell} rows])."""
    tables, block, before = [], [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            block.append(line.strip())
            continue
        if len(block) >= 2 and re.fullmatch(r"\|[\s:\-|]+\|", block[1]):
            header = [c.strip() for c in block[0].strip("|").split("|")]
            rows = []
            for raw in block[2:]:
                cells = [c.strip() for c in raw.strip("|").split("|")]
                rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)))))
            tables.append(("\n".join(before), rows))
            before = []
        block = []
        before.append(line)
    return tables


def parse_number(cell: str) -> float:
    """'1.032', '12.3x', '103.2%', '1,234', '0.41 s' -> float; ValueError otherwise."""
    m = re.search(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?", cell)
    if not m:
        raise ValueError(f"no number in {cell!r}")
    return float(m.group(0).replace(",", ""))


def extract(fig: Figure, stdout: str) -> float:
    """The figure's value in one run's output; ValueError naming what was not found."""
    if fig.regex:
        m = re.search(fig.regex, stdout)
        if not m:
            raise ValueError(f"pattern {fig.regex!r} not in the output")
        return float(m.group(1)) * fig.scale
    for before, table in parse_tables(stdout):
        if not table or fig.section.lower() not in before.lower():
            continue
        headers = list(table[0])
        col = next((h for h in headers if fig.col.lower() in (h + " |").lower()), None)
        if col is None:
            continue
        for row in table:
            first = row[headers[0]]
            if (first == fig.row if len(fig.row) <= 2 else fig.row.lower() in first.lower()):
                return parse_number(row[col]) * fig.scale
    where = f" after {fig.section!r}" if fig.section else ""
    raise ValueError(f"no table{where} with a row {fig.row!r} and a column {fig.col!r}")


def check(value: float, target: str) -> bool:
    op, num = re.fullmatch(r"\s*(<=|>=|<|>)\s*([\d.]+)\s*", target).groups()  # type: ignore[union-attr]
    bound = float(num)
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound, ">": value > bound}[op]


# ---------------------------------------------------------------------------------------- machine
def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import torch

        torch_version = torch.__version__
        threads = torch.get_num_threads()
    except ImportError:
        torch_version, threads = "not installed", 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "ram": ram, "python": platform.python_version(),
            "torch": torch_version, "torch_default_threads": threads, "os": platform.platform(),
            "commit": commit + (" (with uncommitted changes)" if dirty else "")}


def load1() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# ---------------------------------------------------------------------------------------- running
def run_bench(bench: Bench, repeats: int, log) -> dict[str, Any]:
    script = HERE / bench.script
    cmd = [sys.executable, str(script), *bench.args]
    shown = " ".join([".venv/bin/python", f"benchmarks/{bench.script}", *bench.args])
    result: dict[str, Any] = {"key": bench.key, "command": shown, "what": bench.what, "runs": []}
    if not script.is_file():
        result["error"] = f"{script.relative_to(REPO)} does not exist (yet)"
        log(f"[{bench.key}] skipped: {result['error']}")
        return result
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for k in range(repeats):
        log(f"[{bench.key}] run {k + 1}/{repeats}: {shown}")
        load_before, t0 = load1(), time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=bench.timeout_s, env=env)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = -1
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = f"timed out after {bench.timeout_s} s"
        run = {"rc": rc, "seconds": time.perf_counter() - t0, "load_before": load_before, "load_after": load1(),
               "stdout": out, "stderr_tail": "\n".join((err or "").strip().splitlines()[-15:])}
        result["runs"].append(run)
        log(f"[{bench.key}] rc {rc} in {run['seconds']:.0f} s (load {load_before:.1f} -> {run['load_after']:.1f})")
        if rc != 0:
            break  # a failing script fails the same way again
    return result


def collect(figs: list[Figure], results: dict[str, dict[str, Any]]) -> None:
    for fig in figs:
        res = results.get(fig.bench)
        if res is None:
            fig.error = "not run (--only)"
            continue
        if res.get("error"):
            fig.error = res["error"]
            continue
        errors = []
        for run in res["runs"]:
            if run["rc"] != 0:
                errors.append(f"script exited {run['rc']}")
                continue
            try:
                fig.values.append(extract(fig, run["stdout"]))
            except ValueError as exc:
                errors.append(str(exc))
        if not fig.values:
            fig.error = errors[0] if errors else "no output"


# ---------------------------------------------------------------------------------------- report
def fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    a = abs(v)
    return f"{v:.3f}" if a < 10 else f"{v:.1f}" if a < 1000 else f"{v:,.0f}"


def walltime_section(path: Path) -> list[str]:
    if not path.is_file():
        return ["Not measured yet: `.venv/bin/python benchmarks/run_all.py --walltime` (or "
                "`benchmarks/bench_walltime.py`) times `make reproduce` (cpu profile) and `make test`."]
    data = json.loads(path.read_text())
    lines = [f"On {data.get('cpu', '?')} ({data.get('cores', '?')} cores); 1-minute load average before/after each command.",
             "", "| command | measured (commit) | wall time | exit code | load before -> after | notebooks / tests |",
             "|---|---|---:|---:|---|---|"]
    for r in data.get("results", []):
        lines.append(f"| `{r['command']}` | {r.get('date', data.get('date', '?'))} ({r.get('commit', data.get('commit', '?'))}) | "
                     f"{r['seconds'] / 60:.1f} min ({r['seconds']:.0f} s) | {r['rc']} | "
                     f"{r['load_before']:.1f} -> {r['load_after']:.1f} | {r.get('summary', '')} |")
    return lines


def gpu_section(path: Path) -> list[str]:
    if not path.is_file():
        return ["Not measured: no GPU here. `benchmarks/gpu_check.sh` is the prepared script for a lent GPU; save "
                "its `gpu_results.md` as `benchmarks/gpu_results.md` and run `benchmarks/run_all.py --refresh`."]
    text = re.sub(r"^(#+) ", r"#\1 ", path.read_text().strip(), flags=re.M)  # nest its headings here
    return ["From `benchmarks/gpu_results.md` (output of `benchmarks/gpu_check.sh` on a lent GPU):", "", text]


def refresh(path: Path) -> None:
    """Rewrite only the wall-time and GPU sections of an existing RESULTS.md from their files."""
    text = path.read_text()
    head, rest = text.split("## Wall times of `make reproduce` and `make test`", 1)
    tail = rest.split("## Each script's output", 1)[1]
    body = (["## Wall times of `make reproduce` and `make test`", ""] + walltime_section(HERE / "walltime.json")
            + ["", "## GPU", ""] + gpu_section(HERE / "gpu_results.md") + ["", "## Each script's output"])
    path.write_text(head + "\n".join(body) + tail)


def render(info: dict[str, Any], figs: list[Figure], results: dict[str, dict[str, Any]], loads: tuple[float, float],
           started: str, seconds: float, notes: str) -> str:
    out = ["# lipkit benchmarks", "",
           f"Generated by `make bench` (`benchmarks/run_all.py`) on {started}, {seconds / 60:.1f} min in total.", "",
           "| machine | |", "|---|---|",
           f"| CPU | {info['cpu']} |", f"| cores | {info['cores']} ({info['usable_cores']} usable by this process) |",
           f"| RAM | {info['ram']} |", f"| OS | {info['os']} |", f"| python | {info['python']} |",
           f"| torch | {info['torch']} (default threads {info['torch_default_threads']}) |",
           f"| commit | {info['commit']} |",
           f"| 1-minute load average | {loads[0]:.2f} before, {loads[1]:.2f} after |", "",
           "The machine may be shared: every figure is the median over the runs listed (each run itself reports "
           "medians over its own repeats), and each script's section below gives the load average around each run.",
           "", "## Figures and targets", "",
           "| figure | median | unit | runs | values | target | status |", "|---|---:|---|---:|---|---|---|"]
    for f in figs:
        if f.values:
            med = statistics.median(f.values)
            status = ("met" if check(med, f.target) else "**missed**") if f.target else "-"
            vals = ", ".join(fmt(v) for v in f.values)
            out.append(f"| {f.name} | {fmt(med)} | {f.unit} | {len(f.values)} | {vals} | {f.target or '-'} | {status} |")
        else:
            out.append(f"| {f.name} | - | {f.unit} | 0 | not measured: {f.error} | {f.target or '-'} | not measured |")
    out += ["", "<!-- notes -->", notes.strip() or "_(no notes yet: write them between these markers; run_all keeps them)_",
            "<!-- /notes -->", "", "## Wall times of `make reproduce` and `make test`", ""]
    out += walltime_section(HERE / "walltime.json")
    out += ["", "## GPU", ""] + gpu_section(HERE / "gpu_results.md")
    out += ["", "## Each script's output", ""]
    for key, res in results.items():
        out += [f"### {key}: {res['what']}", "", f"`{res['command']}`", ""]
        if res.get("error"):
            out += [f"Not run: {res['error']}", ""]
            continue
        loads_txt = "; ".join(f"run {i + 1}: {r['seconds']:.0f} s, rc {r['rc']}, load {r['load_before']:.1f} -> "
                              f"{r['load_after']:.1f}" for i, r in enumerate(res["runs"]))
        out += [loads_txt, "", "Output of the last run:", ""]
        last = res["runs"][-1]
        body = last["stdout"].strip() or "(no output)"
        body = re.sub(r"^(#+) ", r"\\\1 ", body, flags=re.M)
        out += [body, ""]
        if last["rc"] != 0:
            out += ["stderr (tail):", "", "```", last["stderr_tail"], "```", ""]
    return "\n".join(out).rstrip() + "\n"


def old_notes(path: Path) -> str:
    if not path.is_file():
        return ""
    m = re.search(r"<!-- notes -->\n(.*?)<!-- /notes -->", path.read_text(), flags=re.S)
    if not m or m.group(1).strip().startswith("_(no notes yet"):
        return ""
    return m.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="runs per script (default: per script, 1-3)")
    parser.add_argument("--only", default="", help=f"comma-separated keys: {', '.join(b.key for b in BENCHES)}")
    parser.add_argument("--walltime", action="store_true", help="also time `make reproduce` (cpu) and `make test` (long)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="machine-readable copy of the figures")
    parser.add_argument("--refresh", action="store_true", help="only rewrite the wall-time and GPU sections of --out "
                        "from walltime.json / gpu_results.md (no benchmark runs)")
    args = parser.parse_args(argv)
    if args.refresh:
        refresh(args.out)
        return 0
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in {b.key for b in BENCHES}]
    if unknown:
        parser.error(f"--only {','.join(unknown)}: unknown; choose from {', '.join(b.key for b in BENCHES)}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    info, load_start, t0 = machine(), load1(), time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for bench in BENCHES:
        if keys and bench.key not in keys:
            continue
        results[bench.key] = run_bench(bench, args.repeats or bench.repeats, log)
    if args.walltime:
        log("[walltime] timing `make reproduce` (cpu profile) and `make test`: this takes a while")
        subprocess.run([sys.executable, str(HERE / "bench_walltime.py")], cwd=REPO)
    figs = figures()
    collect(figs, results)
    loads = (load_start, load1())
    text = render(info, figs, results, loads, started, time.perf_counter() - t0, old_notes(args.out))
    args.out.write_text(text)
    args.json.write_text(json.dumps({
        "date": started, "machine": info, "load_1min": loads,
        "figures": [{"name": f.name, "unit": f.unit, "values": f.values,
                     "median": statistics.median(f.values) if f.values else None, "target": f.target,
                     "met": (check(statistics.median(f.values), f.target) if f.values and f.target else None),
                     "error": f.error} for f in figs]}, indent=1) + "\n")
    summary = render(info, figs, {}, loads, started, time.perf_counter() - t0, "").split("## Figures and targets")[1]
    print("## Figures and targets" + summary.split("<!-- notes -->")[0])
    log(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    missing = [f.name for f in figs if not f.values and f.bench in results]
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
