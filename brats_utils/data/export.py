"""Predictions named and labelled for a BraTS portal (``brats export``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from brats_utils.conventions import GLI2023, LEGACY, VOLUME_SHAPE, Release, classes_to_labels
from brats_utils.data.nifti import read_nifti, write_nifti
from brats_utils.data.predictions import find_predictions, read_prediction
from brats_utils.errors import BratsError, CaseError

__all__ = ["PORTALS", "portal_name", "source_release", "export_predictions"]

#: Portal release -> label convention of its files.
PORTALS: dict[str, Release] = {"2023": GLI2023, "2021": LEGACY}

_ID_2021 = re.compile(r"^BraTS2021_(\d{5})$")
_ID_2023 = re.compile(r"^BraTS-[A-Z]+-(\d{5})-(\d{3})$")


def source_release(case_id: str) -> Release:
    """The label convention of a prediction, from its case id."""
    return GLI2023 if _ID_2023.match(case_id) else LEGACY


def portal_name(case_id: str, portal: str) -> str:
    """The file name ``portal`` expects for ``case_id``; BratsError if it has none."""
    if portal not in PORTALS:
        raise BratsError(f"unknown portal release {portal!r}; expected one of {list(PORTALS)}")
    legacy, modern = _ID_2021.match(case_id), _ID_2023.match(case_id)
    if portal == "2023":
        if modern:
            return f"{case_id}.nii.gz"
        if legacy:
            return f"BraTS-GLI-{legacy.group(1)}-000.nii.gz"
    else:
        if legacy:
            return f"{case_id}.nii.gz"
        if modern and modern.group(2) == "000" and case_id.startswith("BraTS-GLI-"):
            return f"BraTS2021_{modern.group(1)}.nii.gz"
    raise BratsError(
        f"{case_id}: no file name for the {portal} portal (expected a case id like "
        "BraTS2021_00042 or BraTS-GLI-00042-000)"
    )


def export_predictions(
    pred_dir: Path | str,
    out_dir: Path | str,
    portal: str = "2023",
    *,
    overwrite: bool = False,
    expected_shape: tuple[int, int, int] | None = VOLUME_SHAPE,
) -> dict[str, Path]:
    """Export every prediction of ``pred_dir``, all checked first; ``{case_id: exported file}``."""
    predictions = find_predictions(pred_dir)
    if not predictions:
        raise BratsError(f"no predictions (<case>.nii.gz) in {pred_dir}")
    names = {case_id: portal_name(case_id, portal) for case_id in predictions}
    taken: dict[str, str] = {}
    for case_id, name in names.items():
        if name in taken:
            raise BratsError(f"{case_id} and {taken[name]} would both be exported as {name}")
        taken[name] = case_id
    out_dir = Path(out_dir)
    existing = [n for n in names.values() if (out_dir / n).exists()]
    if existing and not overwrite:
        raise BratsError(
            f"{len(existing)} files exist in {out_dir} (e.g. {existing[0]}); pass --overwrite "
            "to replace them"
        )
    for case_id, path in predictions.items():  # a bad file found before anything is written
        read_prediction(path, case_id, source_release(case_id), expected_shape)
    target = PORTALS[portal]
    written = {}
    for case_id, path in predictions.items():
        classes, image = read_prediction(path, case_id, source_release(case_id), expected_shape)
        labels = classes_to_labels(classes, target)
        out = write_nifti(out_dir / names[case_id], labels, image.affine, image.header)
        _check_exported(out, case_id, target, classes)
        written[case_id] = out
    return written


def _check_exported(path: Path, case_id: str, release: Release, classes: np.ndarray) -> None:
    """Read the written file back: the same classes in the portal's labels, uint8."""
    data, _ = read_nifti(path, case_id)
    if data.dtype != np.uint8 or not np.array_equal(data, classes_to_labels(classes, release)):
        raise CaseError(case_id, "the exported file does not read back as written", path)
