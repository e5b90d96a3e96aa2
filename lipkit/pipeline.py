"""Run the numbered notebooks headlessly with papermill, by profile.

``python -m lipkit reproduce --profile smoke|cpu|paper [--data-root DIR] [--only 01,02] [--resume]``
executes ``notebooks/NN_*.ipynb`` in order (kernel ``python3``, working directory ``notebooks/``)
and writes the executed copies to ``runs/<profile>/``. Figures go to ``figures/`` for the cpu
profile (the ones the README shows, committed) and to ``figures/<profile>/`` otherwise.

Parameters come from ``PROFILES`` below: ``common`` goes to every notebook, ``notebooks["NN"]``
adds or overrides per notebook, and the runner adds ``FIGURES_DIR`` (and ``DATA_ROOT`` when
``--data-root`` is given). Every numbered notebook therefore declares, in its ``parameters`` cell,
``FIGURES_DIR``, ``DATA_ROOT`` and every ``common`` name; any name a notebook does not declare is
an error found before anything runs. Notebooks without an entry run with their own defaults only
in the smoke profile; other profiles need an entry (possibly empty) so nothing runs at the wrong size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lipkit import paths
from lipkit.recipe import RECIPES

# ------------------------------------------------------------------------------ the profiles
# Every notebook parameter is a field of the profile's recipe (lipkit.recipe.RECIPES) in capitals:
# notebook 01 takes the data fields, 02-06 all of them, 07 (real photos) only THREADS, so one name
# means one setting everywhere.
DATA_FIELDS = ("DATA_ROOT", "SYNTH_TRAIN", "SYNTH_VAL", "SYNTH_SEED", "SYNTH_MIN_PX", "SYNTH_MAX_PX", "THREADS")


def _notebook_params(profile: str, **notebook01: Any) -> dict[str, dict[str, Any]]:
    params = RECIPES[profile].parameters()
    return {"01": {**{k: params[k] for k in DATA_FIELDS}, **notebook01},
            **{nb: dict(params) for nb in ("02", "03", "04", "05", "06")},
            "07": {"THREADS": params["THREADS"], "VAL_IMAGES": 0}}  # real photos (CCP from LIPKIT_CCP): all 100 val photos


PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "description": "SynthLIP with tens of images, the shipped baselines fine-tuned for a few steps: the "
                       "notebooks' own defaults, what nbval checks in CI. A few minutes on 2 CPU cores.",
        "needs_data_root": False,
        "strict": False,  # notebooks without an entry run with their defaults
        "cell_timeout": 1200,  # seconds; a cell that hangs fails the run instead of blocking CI
        "common": {},
        "notebooks": {"01": {}},
    },
    "cpu": {
        "description": "SynthLIP (2,000 + 500 images), the shipped baselines, 7 SSL settings x 3 fine-tuning "
                       "seeds: `make reproduce` on a laptop; its figures are the committed figures/.",
        "needs_data_root": False,
        "strict": True,
        "cell_timeout": 3600,
        "common": {},
        "notebooks": _notebook_params("cpu", NUM_IMAGES=0),
    },
    "paper": {
        "description": "Real LIP (--data-root DIR, flat or official layout) on a GPU with the paper's recipe "
                       "(Attention-to-Scale VGG-16, DeepLabV2 ResNet-101, ImageNet init).",
        "needs_data_root": True,
        "strict": True,
        "cell_timeout": None,  # training cells run for hours
        "common": {},
        "notebooks": _notebook_params("paper", NUM_IMAGES=0, SPLIT="train"),
    },
}

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_.+\.ipynb$")
STATE_FILE = "pipeline.json"


class PipelineError(Exception):
    """A profile, parameter or notebook problem found before or while running; the message says what to do."""


@dataclass
class NotebookResult:
    notebook: str
    status: str  # "ok", "failed", "skipped (done)", "not run"
    seconds: float = 0.0
    output: str = ""
    fingerprint: str = ""
    error: str = ""


@dataclass
class RunSummary:
    profile: str
    results: list[NotebookResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status in ("ok", "skipped (done)") for r in self.results)

    @property
    def failure(self) -> NotebookResult | None:
        return next((r for r in self.results if r.status == "failed"), None)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    def table(self) -> str:
        """Markdown table: notebook, status, wall time, executed copy."""
        lines = ["| notebook | status | wall time (s) | executed copy |", "|---|---|---|---|"]
        for r in self.results:
            lines.append(f"| {r.notebook} | {r.status} | {r.seconds:.1f} | {_short(r.output)} |")
        lines.append(f"| total | {'ok' if self.ok else 'FAILED'} | {self.seconds:.1f} | |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "ok": self.ok, "results": [asdict(r) for r in self.results]}


def _short(path: str) -> str:
    """A path relative to the repository when it lies inside it."""
    if not path:
        return ""
    try:
        return str(Path(path).resolve().relative_to(paths.REPO_ROOT.resolve()))
    except ValueError:
        return path


# ------------------------------------------------------------------------------ planning
def discover(notebooks_dir: Path, only: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, optionally only the given NN prefixes."""
    found = sorted(p for p in Path(notebooks_dir).glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if isinstance(only, str):
        only = only.split(",")
    if only:
        wanted = [str(o).strip().zfill(2) for o in only if str(o).strip()]
        have = {NOTEBOOK_PATTERN.match(p.name).group(1) for p in found}  # type: ignore[union-attr]
        missing = [w for w in wanted if w not in have]
        if missing:
            raise PipelineError(f"--only {','.join(missing)}: no such notebook in {notebooks_dir} "
                                f"(have {', '.join(sorted(have)) or 'none'})")
        found = [p for p in found if p.name[:2] in wanted]
    if not found:
        raise PipelineError(f"no numbered notebooks (NN_name.ipynb) in {notebooks_dir}")
    return found


def notebook_parameters(profile: Mapping[str, Any], profile_name: str, notebook: Path,
                        figures_dir: Path, data_root: str | None, cwd: Path) -> dict[str, Any]:
    """The parameters the runner passes to one notebook under a profile."""
    key = notebook.name[:2]
    per = profile.get("notebooks", {})
    if key not in per and profile.get("strict", True):
        raise PipelineError(f"profile {profile_name!r} has no entry for {notebook.name}: add "
                            f"\"{key}\": {{...}} to PROFILES[{profile_name!r}]['notebooks'] in lipkit/pipeline.py")
    params = {**profile.get("common", {}), **per.get(key, {})}
    params["FIGURES_DIR"] = os.path.relpath(figures_dir, cwd)
    if data_root:
        params["DATA_ROOT"] = str(Path(data_root).expanduser().resolve())
    return params


def declared_parameters(notebook: Path) -> set[str]:
    """The names the notebook's ``parameters`` cell declares (as papermill reads them)."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; VALUE is a Python literal, else taken as a string."""
    import ast

    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*", name.strip()):
        raise PipelineError(f"--param {text!r}: write NAME=VALUE, e.g. --param DEVICE=cuda")
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.strip(), value


def check_parameters(notebook: Path, params: Mapping[str, Any]) -> None:
    """Raise when ``params`` names something the notebook's ``parameters`` cell does not declare."""
    declared = declared_parameters(notebook)
    if not declared:
        raise PipelineError(f"{notebook.name}: no cell tagged 'parameters'; the pipeline cannot set its parameters")
    for line in _parameter_lines(notebook):
        name = line.split("=", 1)[0].strip()
        if name not in declared:  # papermill skipped the line: its parser is stricter than Python
            raise PipelineError(f"{notebook.name}: papermill cannot parse the parameter line {line!r}; write "
                                "`NAME = literal  # comment` with no '=', '(' or ';' inside the comment")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise PipelineError(f"{notebook.name}: unknown parameter(s) {', '.join(unknown)}; the notebook declares "
                            f"{', '.join(declared)}. Fix PROFILES in lipkit/pipeline.py or the notebook's parameters cell.")


def _parameter_lines(notebook: Path) -> list[str]:
    """The ``NAME = ...`` lines of the notebook's cell tagged ``parameters``."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    source = cell.source if cell is not None else ""
    return [line for line in source.splitlines() if re.match(r"^[A-Za-z_]\w*\s*=", line)]


def fingerprint(notebook: Path, params: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(notebook.read_bytes())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _describe_failure(notebook: Path, output: Path, exc: Exception) -> str:
    index = getattr(exc, "cell_index", None)
    source = str(getattr(exc, "source", "") or "")
    head = "\n".join("    " + line for line in source.splitlines()[:4])
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    where = f"cell {index} of the executed copy {output}" if index is not None else f"executed copy {output}"
    return f"{notebook.name} failed in {where}:\n{head}\n{ename}: {evalue}"


# ------------------------------------------------------------------------------ running
def plan_notebooks(spec: Mapping[str, Any], profile: str, notebooks: Sequence[Path], fig_dir: Path, nb_dir: Path,
                   data_root: str | os.PathLike | None, overrides: Mapping[str, Any]) -> list[tuple[Path, dict]]:
    """Each notebook with its checked parameters; ``overrides`` go to every notebook declaring them.

    Raises PipelineError for parameters a notebook does not declare and overrides no notebook takes.
    """
    plan, used = [], set()
    for nb in notebooks:
        nb_params = notebook_parameters(spec, profile, nb, fig_dir, str(data_root) if data_root else None, nb_dir)
        declared = declared_parameters(nb)
        nb_params.update({k: v for k, v in overrides.items() if k in declared})
        used.update(k for k in overrides if k in declared)
        check_parameters(nb, nb_params)
        plan.append((nb, nb_params))
    unused = sorted(set(overrides) - used)
    if unused:
        raise PipelineError(f"--param {', '.join(unused)}: no notebook of this run declares it; see each "
                            "notebook's parameters cell for the names it takes")
    return plan


def execute_notebook(nb: Path, output: Path, params: Mapping[str, Any], fingerprint_: str, nb_dir: Path,
                     kernel_name: str, cell_timeout: int | None) -> NotebookResult:
    """Run one notebook with papermill into ``output``; a failing cell gives a "failed" result, not an exception."""
    import papermill  # start-up time: papermill loads nbclient and jupyter_client (about a second)

    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(nb), str(output), parameters=dict(params), kernel_name=kernel_name,
                                   cwd=str(nb_dir), progress_bar=False, execution_timeout=cell_timeout)
        return NotebookResult(nb.name, "ok", time.perf_counter() - start, str(output), fingerprint_)
    except Exception as exc:  # papermill raises PapermillExecutionError for a failing cell
        return NotebookResult(nb.name, "failed", time.perf_counter() - start, str(output), fingerprint_,
                              _describe_failure(nb, output, exc))


def reproduce(profile: str, data_root: str | os.PathLike | None = None, only: Sequence[str] | None = None, *,
              resume: bool = False, notebooks_dir: Path | None = None, runs_dir: Path | None = None,
              figures_dir: Path | None = None, profiles: Mapping[str, Mapping[str, Any]] | None = None,
              params: Mapping[str, Any] | None = None, kernel_name: str = "python3", log=print) -> RunSummary:
    """Run the profile's notebooks in order; stop at the first failure and report it.

    Checks every notebook's parameters before running any. ``resume`` skips notebooks whose last
    run under this profile succeeded with the same notebook content and parameters. ``params``
    overrides profile values (e.g. ``{"DEVICE": "cuda"}``) in every notebook that declares the name;
    a name no notebook of the run declares is an error. The other overrides (``notebooks_dir``,
    ``runs_dir``, ``figures_dir``, ``profiles``) exist for tests.
    """
    table = PROFILES if profiles is None else profiles
    if profile not in table:
        raise PipelineError(f"unknown profile {profile!r}; choose one of {', '.join(table)}")
    spec = table[profile]
    if spec.get("needs_data_root") and not data_root:
        raise PipelineError(f"profile {profile!r} runs on real LIP: pass --data-root DIR (a LIP root in the flat "
                            "or official layout; see the README for download and layout)")
    nb_dir = Path(notebooks_dir or paths.NOTEBOOKS_DIR)
    out_dir = Path(runs_dir) if runs_dir is not None else paths.run_dir(profile)
    fig_dir = Path(figures_dir) if figures_dir is not None else paths.figures_dir(profile)
    plan = plan_notebooks(spec, profile, discover(nb_dir, only), fig_dir, nb_dir, data_root, dict(params or {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    previous = json.loads(state_path.read_text()) if (resume and state_path.is_file()) else {}
    done = {r["notebook"]: r["fingerprint"] for r in previous.get("results", []) if r["status"] in ("ok", "skipped (done)")}
    summary = RunSummary(profile)
    for nb, nb_params in plan:
        output, fp = out_dir / nb.name, fingerprint(nb, nb_params)
        if summary.failure is not None:
            summary.results.append(NotebookResult(nb.name, "not run", fingerprint=fp))
            continue
        if resume and done.get(nb.name) == fp and output.is_file():
            summary.results.append(NotebookResult(nb.name, "skipped (done)", output=str(output), fingerprint=fp))
            log(f"[{profile}] {nb.name}: done in an earlier run, skipped (--resume)")
            continue
        log(f"[{profile}] {nb.name}: running with {nb_params}")
        result = execute_notebook(nb, output, nb_params, fp, nb_dir, kernel_name, spec.get("cell_timeout"))
        summary.results.append(result)
        log(f"[{profile}] {nb.name}: {result.status} in {result.seconds:.1f} s")
        state_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    state_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def store_outputs(notebook: str | os.PathLike, timeout: int = 900, kernel_name: str = "python3") -> Path:
    """Execute a notebook with its own (smoke) defaults and save it in place with outputs.

    This is how the committed notebooks get the stored outputs nbval compares against:
    nbclient (no papermill metadata), working directory = the notebook's folder.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(notebook)
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, str(path))
    return path


def profile_table(profiles: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The profiles as markdown: name, description, common and per-notebook parameters.

    Notebooks with the same parameters share one entry, and only values that differ from the
    notebooks' own defaults (the smoke recipe) are listed.
    """
    table = PROFILES if profiles is None else profiles
    defaults = {**RECIPES["smoke"].parameters(), "NUM_IMAGES": 0, "SPLIT": "train"}  # + notebook 01's own
    lines = ["| profile | description | common parameters | per notebook (changes to the defaults) |", "|---|---|---|---|"]
    for name, spec in table.items():
        groups: dict[str, list[str]] = {}
        for nb, params in spec.get("notebooks", {}).items():
            changed = {k: v for k, v in params.items() if defaults.get(k, object()) != v}
            groups.setdefault(str(changed or "defaults"), []).append(nb)
        per = "; ".join(f"{', '.join(nbs)}: {text}" for text, nbs in groups.items())
        lines.append(f"| {name} | {spec['description']} | {spec.get('common') or '-'} | {per} |")
    return "\n".join(lines)
