"""Helpers shared by the tests (importable as ``helpers``: pyproject puts tests/ on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from brats_utils.conventions import LEGACY, MODALITIES
from brats_utils.data.nifti import write_nifti

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The 16 real BraTS 2018 cases lent to the project; never copied into the repository.
REAL_SAMPLE_DIR = Path(
    os.environ.get("BRATS_SAMPLE_DIR", REPO_ROOT.parent / "shared" / "data" / "brats2018_sample")
)

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


def write_tiny_case(
    root: Path,
    case_id: str,
    *,
    shape: tuple[int, int, int] = (20, 18, 12),
    seed: int = 0,
    seg: bool = True,
    tumour_z: tuple[int, int] = (3, 8),
    drop: str | None = None,
    radius: float = 0.45,
) -> Path:
    """Write a BraTS-2018-named case of random int16 scans with an ellipsoid brain.

    The tumour (labels 1, 2, 4) is a block around the centre on slices ``tumour_z``.
    ``drop`` leaves one modality file out; ``radius`` is the brain's, as a fraction of
    the shape.
    """
    rng = np.random.default_rng(seed)
    folder = root / case_id
    folder.mkdir(parents=True)
    x, y, z = np.indices(shape)
    cx, cy, cz = ((np.array(shape) - 1) / 2).tolist()
    radii = [radius * n for n in shape]
    brain = ((x - cx) / radii[0]) ** 2 + ((y - cy) / radii[1]) ** 2 + (
        (z - cz) / radii[2]
    ) ** 2 <= 1
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for modality in MODALITIES:
        if modality != drop:
            data = np.where(brain, rng.integers(50, 1000, shape), 0).astype(np.int16)
            write_nifti(folder / LEGACY.file_name(case_id, modality), data, affine)
    if seg:
        labels = np.zeros(shape, dtype=np.uint8)
        core = brain & (abs(x - cx) <= 3) & (abs(y - cy) <= 3)
        core &= (z >= tumour_z[0]) & (z < tumour_z[1])
        labels[core] = rng.choice(np.array([1, 2, 4], dtype=np.uint8), size=int(core.sum()))
        write_nifti(folder / LEGACY.file_name(case_id, "seg"), labels, affine)
    return folder
