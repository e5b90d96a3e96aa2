"""Every folder lipkit reads or writes by default, built in one place.

The repository root is found from this file; ``LIPKIT_HOME`` overrides it (for an installed,
non-editable lipkit). Library functions never write anywhere unless given a path: these are the
defaults the CLI, the pipeline and the notebooks pass in.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("LIPKIT_HOME", Path(__file__).resolve().parent.parent))
DATA_DIR = REPO_ROOT / "data"
RUNS_DIR = REPO_ROOT / "runs"
FIGURES_DIR = REPO_ROOT / "figures"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
CONFIGS_DIR = REPO_ROOT / "configs"
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
RESULTS_DIR = REPO_ROOT / "results"


def resolve(path: str | os.PathLike) -> Path:
    """``path`` itself when absolute (``~`` expanded), else relative to the repository root (as configs write paths)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def synthlip_root(name: str = "synthlip") -> Path:
    """Where a generated SynthLIP dataset lives (``data/<name>``)."""
    return DATA_DIR / name


def run_dir(profile: str, experiment: str | None = None) -> Path:
    """``runs/<profile>`` or ``runs/<profile>/<experiment>``."""
    path = RUNS_DIR / profile
    return path / experiment if experiment else path


def shipped_dir(arch: str) -> Path:
    """``checkpoints/synthlip_<arch>``: a shipped SynthLIP baseline (model.pt, config.yaml, metrics.jsonl, scores.json)."""
    return CHECKPOINTS_DIR / f"synthlip_{arch}"


def results_dir(name: str) -> Path:
    """``results/<name>``: shipped experiment results (per-run config, log, scores), committed."""
    return RESULTS_DIR / name


def figures_dir(profile: str | None = None) -> Path:
    """``figures/`` (committed figures of the cpu profile) or ``figures/<profile>`` for others."""
    return FIGURES_DIR if profile in (None, "", "cpu") else FIGURES_DIR / profile


def samples_root() -> Path | None:
    """The real LIP/CIHP samples named by ``LIPKIT_SAMPLES``, or None when unset."""
    value = os.environ.get("LIPKIT_SAMPLES")
    return Path(value) if value else None


def ccp_root() -> Path | None:
    """The Clothing Co-Parsing folder (a clone of bearpaw/clothing-co-parsing) named by ``LIPKIT_CCP``, or None when unset."""
    value = os.environ.get("LIPKIT_CCP")
    return Path(value) if value else None
