"""Validating BraTS cases (``brats check``): every problem of every file, reported, not raised."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from brats_utils.conventions import VOLUME_SHAPE, labels_to_classes
from brats_utils.data.cases import (
    KINDS,
    CaseFiles,
    Reference,
    affine_problem,
    consensus_reference,
    shape_problem,
)
from brats_utils.data.nifti import nifti_stem, read_nifti
from brats_utils.errors import CaseError
from brats_utils.files import in_workers

__all__ = ["Problem", "validate_case", "validate_cases", "has_errors"]


@dataclass(frozen=True)
class Problem:
    """``case: message (file)``; a ``warning`` (stray or duplicate file) leaves the case valid."""

    case_id: str
    path: Path | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        file_part = f" ({self.path})" if self.path is not None else ""
        return f"{self.case_id}: {self.message}{file_part}"


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(not p.warning for p in problems)


def validate_case(
    files: CaseFiles,
    *,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
    require_seg: bool = False,
) -> list[Problem]:
    """Read every file of a case once and report every problem, in file order; warnings for a
    ``.nii`` duplicate and stray NIfTI files when the seg is missing."""
    problems: list[Problem] = []

    def report(message: str, path: Path | None, warning: bool = False) -> None:
        problems.append(Problem(files.case_id, path, message, warning))

    if files.problem is not None:
        return [Problem(files.case_id, files.folder, files.problem)]
    reference = consensus_reference({kind: files.path(kind) for kind in KINDS}, files.case_id)
    for kind in KINDS:
        path = files.path(kind)
        if path is None:
            if kind != "seg" or require_seg:
                expected_name = files.release.file_name(files.case_id, kind)
                report(f"{kind} file missing (expected {expected_name})", files.folder)
            continue
        try:
            data, image = read_nifti(path, files.case_id)
        except CaseError as exc:
            report(f"{kind}: {exc.message}", path)
            continue
        messages = [
            shape_problem(kind, data.shape, reference, expected_shape),
            affine_problem(kind, image.affine, reference),
            *_content_problems(kind, data, files),
        ]
        for message in filter(None, messages):
            report(message, path)
        reference = reference or Reference(kind, data.shape, image.affine)

    for path, message in _stray_files(files):
        report(message, path, warning=True)
    return problems


def _content_problems(kind: str, data: np.ndarray, files: CaseFiles) -> list[str]:
    if kind == "seg":
        try:
            labels_to_classes(data, files.release)
        except ValueError as exc:
            return [f"seg: {exc}"]
        return []
    problems = []
    if data.dtype.kind == "f":
        n_bad = data.size - np.count_nonzero(np.isfinite(data))
        if n_bad:
            problems.append(f"{kind} has {n_bad} NaN or infinite voxels")
    if not np.any(data):
        problems.append(f"{kind} is all zeros")
    return problems


def _stray_files(files: CaseFiles) -> list[tuple[Path, str]]:
    by_stem = {files.release.file_name(files.case_id, k, ext=""): k for k in KINDS}
    found = []
    for path in files.extra:
        kind = by_stem.get(nifti_stem(path.name) or "")
        if kind is not None:
            found.append((path, f"duplicate {kind} file, using {files.path(kind)}"))
        elif files.seg is None:
            expected = files.release.file_name(files.case_id, "seg")
            message = f"unrecognised NIfTI file; a misnamed segmentation? (expected {expected})"
            found.append((path, message))
    return found


def validate_cases(
    cases: Sequence[CaseFiles],
    *,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
    require_seg: bool = False,
    workers: int = 1,
) -> Iterator[tuple[CaseFiles, list[Problem]]]:
    """``(files, problems)`` of :func:`validate_case` per case, in order, in ``workers``."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    check = partial(validate_case, expected_shape=expected_shape, require_seg=require_seg)
    yield from zip(cases, in_workers(check, cases, workers), strict=True)
