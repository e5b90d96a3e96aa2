"""Shared fixtures: the real LIP/CIHP samples (skipped when LIPKIT_SAMPLES is unset) and the real
Clothing Co-Parsing clone (skipped when LIPKIT_CCP is unset)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lipkit.paths import ccp_root, samples_root


@pytest.fixture(scope="session")
def samples() -> Path:
    root = samples_root()
    if root is None or not root.is_dir():
        pytest.skip("LIPKIT_SAMPLES is not set to the real LIP samples folder")
    return root


@pytest.fixture(scope="session")
def ccp() -> Path:
    root = ccp_root()
    if root is None or not root.is_dir():
        pytest.skip("LIPKIT_CCP is not set to a Clothing Co-Parsing clone (bearpaw/clothing-co-parsing)")
    return root


@pytest.fixture()
def restore_threads():
    """Tests that set torch's thread count (as a shipped config does) leave it as they found it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
