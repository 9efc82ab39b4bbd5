"""Prediction files ``OUT_DIR/<case_id>.nii.gz`` (uint8, release labels) and their one reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.conventions import LEGACY, Release, labels_to_classes
from brats_utils.data.nifti import NIFTI_EXTS, nifti_stem, read_nifti
from brats_utils.errors import BratsError, CaseError

__all__ = ["prediction_path", "find_predictions", "read_prediction", "load_prediction"]


def prediction_path(out_dir: Path | str, case_id: str) -> Path:
    """``OUT_DIR/<case_id>.nii.gz``, the name BraTS submission portals expect."""
    return Path(out_dir) / f"{case_id}.nii.gz"


def read_prediction(
    path: Path | str,
    case_id: str,
    release: Release = LEGACY,
    expected_shape: Sequence[int] | None = None,
) -> tuple[np.ndarray, nib.Nifti1Image]:
    """``(classes, image)``: (X, Y, Z) uint8 classes 0..3 and the file's image (affine, header);
    ``CaseError`` on a shape other than ``expected_shape`` or bad labels."""
    data, image = read_nifti(path, case_id)
    if data.ndim != 3:
        raise CaseError(case_id, f"prediction has shape {data.shape}, expected 3D", path)
    if expected_shape is not None and tuple(data.shape) != tuple(expected_shape):
        raise CaseError(
            case_id,
            f"prediction has shape {tuple(data.shape)}, expected {tuple(expected_shape)} "
            "like the reference segmentation",
            path,
        )
    if not np.issubdtype(data.dtype, np.integer) and not np.array_equal(data, np.round(data)):
        raise CaseError(case_id, f"prediction holds non-integer values (dtype {data.dtype})", path)
    try:
        classes = labels_to_classes(data.astype(np.int64), release)
    except ValueError as exc:
        raise CaseError(case_id, f"prediction: {exc}", path) from exc
    return classes, image


def find_predictions(pred_dir: Path | str) -> dict[str, Path]:
    """``{case_id: path}`` of ``<case_id>.nii[.gz]`` files; BratsError if a case has both."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise BratsError(f"prediction folder {pred_dir} does not exist")
    found: dict[str, Path] = {}
    for path in sorted(pred_dir.iterdir()):
        case_id = nifti_stem(path.name)
        if case_id is None or path.name.startswith(".") or not path.is_file():
            continue  # not NIfTI, temporary files of atomic writes, sub-folders
        if case_id in found:
            raise BratsError(
                f"{case_id}: two predictions, {found[case_id].name} and {path.name}; keep one"
            )
        found[case_id] = path
    return found


def load_prediction(
    folder: Path | str, case_id: str, release: Release = LEGACY
) -> np.ndarray | None:
    """``folder/<case_id>.nii[.gz]`` as (X, Y, Z) uint8 classes, or ``None`` if there is none."""
    for ext in NIFTI_EXTS:
        path = Path(folder) / f"{case_id}{ext}"
        if path.is_file():
            return read_prediction(path, case_id, release)[0]
    return None
