"""Shared fixtures: real sample cases (skipped when absent) and seeded synthetic cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REAL_SAMPLE_DIR


@pytest.fixture(scope="session")
def real_sample_dir() -> Path:
    """Folder of real BraTS cases; skips the test with a reason when it is absent."""
    if not REAL_SAMPLE_DIR.is_dir():
        pytest.skip(
            f"real BraTS sample cases not found at {REAL_SAMPLE_DIR} (set BRATS_SAMPLE_DIR)"
        )
    return REAL_SAMPLE_DIR


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Four full-size synthetic BraTS 2021 cases (seed 0), written once per test session."""
    from brats_utils.data.synth import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, n_cases=4, seed=0)
    return root
