"""Tiny notebooks for pipeline tests: a ``parameters`` cell plus code cells, python3 kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

PARAMS = 'FIGURES_DIR = ""  # where figures go\nDATA_ROOT = ""  # dataset\nSIZE = 1  # a number\n'


def make_notebook(path: Path, *cells: str, params: str = PARAMS) -> Path:
    first = new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[first] + [new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path
