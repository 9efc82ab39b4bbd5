"""Shared fixtures: real sample cases (skipped when absent) and seeded synthetic cases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The 16 real BraTS 2018 cases lent to the project; never copied into the repository.
REAL_SAMPLE_DIR = Path(
    os.environ.get("BRATS_SAMPLE_DIR", REPO_ROOT.parent / "shared" / "data" / "brats2018_sample")
)


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
    from brats_utils.synth import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, n_cases=4, seed=0)
    return root


#: Packages a light import (CLI help, check, synth, preprocessing, run folders) must not load.
ML_FRAMEWORKS = ("keras", "tensorflow", "jax", "torch")


def ml_frameworks_loaded_by(*modules: str) -> list[str]:
    """Import ``modules`` in a fresh interpreter; return the ML frameworks that got loaded."""
    code = (
        f"import sys, {', '.join(modules)}; "
        f"print(','.join(m for m in {ML_FRAMEWORKS!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return [m for m in result.stdout.strip().split(",") if m]
