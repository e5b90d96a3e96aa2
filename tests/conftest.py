"""Shared fixtures: the real LIP/CIHP samples (skipped when LIPKIT_SAMPLES is unset)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lipkit.paths import samples_root


@pytest.fixture(scope="session")
def samples() -> Path:
    root = samples_root()
    if root is None or not root.is_dir():
        pytest.skip("LIPKIT_SAMPLES is not set to the real LIP samples folder")
    return root
