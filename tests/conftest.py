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
    """Four small synthetic BraTS 2021 cases (seed 0, 64 x 64 x 40: the folder records the
    shape, which reading then expects), written once per test session. Full-size volumes
    are made only by the tests about full size."""
    from brats_utils.data.synth import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, n_cases=4, seed=0, shape=(64, 64, 40), progress=False)
    return root


@pytest.fixture(scope="session")
def backend_env(tmp_path_factory) -> dict[str, str]:
    """Environment variables for the processes and kernels that run a Keras backend.

    JAX runs on the CPU and keeps one persistent compilation cache for the test session:
    JAX compiles every operation for each new shape (building a 4-filter U-Net compiles for
    30 s on the shared 2 cores, 2 s from the cache), and the notebooks and commands that run
    on JAX build the same networks again and again. The cache only skips recompiling what
    is compiled identically (XLA's own key: the computation, its shapes, the versions); what
    runs is the same.
    """
    return {
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_compilation_cache")),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
