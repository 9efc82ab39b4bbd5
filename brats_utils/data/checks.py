"""Checks shared by reading a case (:mod:`.cases`: raises) and validating it (:mod:`.validation`).

Each check returns a message naming the file kind and what was expected, or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brats_utils.conventions import AFFINE_TOLERANCE_MM, MODALITIES
from brats_utils.data.nifti import NIFTI_EXTS, read_nifti_header
from brats_utils.errors import CaseError

__all__ = [
    "KINDS",
    "Reference",
    "nifti_stem",
    "consensus_reference",
    "shape_problem",
    "affine_problem",
]

#: File kinds of a case: the modalities in channel order, then the segmentation.
KINDS: tuple[str, ...] = (*MODALITIES, "seg")


def nifti_stem(name: str) -> str | None:
    """``"X_flair"`` for ``"X_flair.nii.gz"`` or ``"X_flair.nii"``; else ``None``."""
    for ext in NIFTI_EXTS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


@dataclass(frozen=True)
class Reference:
    """The first file read of a case: the shape and affine the others must match."""

    kind: str
    shape: tuple[int, ...]
    affine: np.ndarray


def consensus_reference(paths: Mapping[str, Path | None], case_id: str = "") -> Reference | None:
    """The geometry (from the headers) most files of a case share, so the odd one is reported.

    Ties go to the earliest kind in :data:`KINDS` order; unreadable files are left out.
    ``None`` if no file is readable.
    """
    groups: list[tuple[Reference, int]] = []
    for kind in KINDS:
        path = paths.get(kind)
        if path is None:
            continue
        try:
            image = read_nifti_header(path, case_id)
        except CaseError:
            continue
        shape, affine = tuple(int(s) for s in image.shape), np.asarray(image.affine)
        for i, (reference, count) in enumerate(groups):
            same_affine = np.allclose(affine, reference.affine, atol=AFFINE_TOLERANCE_MM)
            if reference.shape == shape and same_affine:
                groups[i] = (reference, count + 1)
                break
        else:
            groups.append((Reference(kind, shape, affine), 1))
    if not groups:
        return None
    return max(groups, key=lambda group: group[1])[0]  # max keeps the first of equal counts


def shape_problem(
    kind: str,
    shape: tuple[int, ...],
    reference: Reference | None,
    expected_shape: Sequence[int] | None,
) -> str | None:
    """Message if ``shape`` is not ``expected_shape`` (or the reference's), else None."""
    expected = tuple(expected_shape) if expected_shape is not None else None
    if expected is None and reference is not None:
        expected = reference.shape
    if expected is None or shape == expected:
        return None
    like = f" like {reference.kind}" if reference and reference.shape == expected else ""
    return f"{kind} has shape {shape}, expected {expected}{like}"


def affine_problem(kind: str, affine: np.ndarray, reference: Reference | None) -> str | None:
    """Message if ``affine`` differs from the reference's by more than the tolerance, else None."""
    if reference is None or np.allclose(affine, reference.affine, atol=AFFINE_TOLERANCE_MM):
        return None
    difference = float(np.max(np.abs(affine - reference.affine)))
    return f"{kind} affine differs from {reference.kind}'s by up to {difference:.3g} mm"
