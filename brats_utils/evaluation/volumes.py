"""Per-case BraTS metrics of whole volumes, with the legacy empty-mask rules."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from brats_utils.conventions import (
    AFFINE_TOLERANCE_MM,
    CLASS_NAMES,
    HD95_MAX_MM,
    REGIONS,
    labels_to_classes,
)
from brats_utils.data.cases import discover_cases
from brats_utils.data.nifti import read_nifti, write_nifti
from brats_utils.data.predictions import find_predictions, read_prediction
from brats_utils.errors import BratsError, CaseError
from brats_utils.evaluation.failures import error_map, error_map_path, region_volumes_ml
from brats_utils.evaluation.lesions import LESION_COLUMNS, LesionRules, lesion_metrics
from brats_utils.evaluation.slice_metrics import safe_ratio
from brats_utils.evaluation.surface import hd95

__all__ = [
    "METRIC_COLUMNS",
    "VOLUME_COLUMNS",
    "dice",
    "sensitivity",
    "specificity",
    "region_mask",
    "evaluate_case",
    "failure_metrics",
    "evaluate_folder",
    "summarize",
]

#: Labels scored on their own besides the regions (enhancing is region ET).
_LABEL_CLASSES: dict[str, int] = {
    "NCR": CLASS_NAMES.index("necrotic"),
    "ED": CLASS_NAMES.index("edema"),
}
#: The reference's region volumes in mL, after the lesion-wise columns of the per-case CSV.
VOLUME_COLUMNS: tuple[str, ...] = tuple(f"volume_{r}_ml" for r in REGIONS)
#: The leading columns of the per-case CSV, in this order.
METRIC_COLUMNS: tuple[str, ...] = (
    "case",
    *(f"{m}_{r}" for m in ("dice", "hd95", "sensitivity", "specificity") for r in REGIONS),
    *(f"dice_{name}" for name in _LABEL_CLASSES),
)


def _counts(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int, int, int]:
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(
            f"prediction has shape {pred.shape}, expected {ref.shape} like the reference"
        )
    tp = int(np.count_nonzero(pred & ref))
    n_pred = int(np.count_nonzero(pred))
    n_ref = int(np.count_nonzero(ref))
    return tp, n_pred - tp, n_ref - tp, ref.size - n_pred - n_ref + tp  # tp, fp, fn, tn


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice of two boolean masks; both empty -> 1, one empty -> 0."""
    tp, fp, fn, _ = _counts(pred, ref)
    return float(safe_ratio(2 * tp, 2 * tp + fp + fn))


def sensitivity(pred: np.ndarray, ref: np.ndarray) -> float:
    """TP / (TP + FN); empty reference -> 1 if ``pred`` is empty too, else 0."""
    tp, fp, fn, _ = _counts(pred, ref)
    return tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)


def specificity(pred: np.ndarray, ref: np.ndarray) -> float:
    """TN / (TN + FP) over every voxel (close to 1, as in BraTS tables); no negative -> 1."""
    _, fp, _, tn = _counts(pred, ref)
    return float(safe_ratio(tn, tn + fp))


def region_mask(classes: np.ndarray, region: str) -> np.ndarray:
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; expected one of {sorted(REGIONS)}")
    return np.isin(classes, REGIONS[region])


def evaluate_case(
    pred_classes: np.ndarray, ref_classes: np.ndarray, spacing: Sequence[float]
) -> dict[str, float]:
    """:data:`METRIC_COLUMNS` (but ``case``) of (X, Y, Z) classes 0..3, ``spacing`` in mm."""
    pred_classes = np.asarray(pred_classes)
    ref_classes = np.asarray(ref_classes)
    for name, array in (("prediction", pred_classes), ("reference", ref_classes)):
        if array.size and (array.min() < 0 or array.max() >= len(CLASS_NAMES)):
            raise ValueError(
                f"{name} classes must lie in 0..{len(CLASS_NAMES) - 1}, "
                f"found {array.min()}..{array.max()}"
            )
    result: dict[str, float] = {}
    masks = {r: (region_mask(pred_classes, r), region_mask(ref_classes, r)) for r in REGIONS}
    for region, (pred, ref) in masks.items():
        result[f"dice_{region}"] = dice(pred, ref)
        result[f"hd95_{region}"] = hd95(pred, ref, spacing)
        result[f"sensitivity_{region}"] = sensitivity(pred, ref)
        result[f"specificity_{region}"] = specificity(pred, ref)
    for name, cls in _LABEL_CLASSES.items():
        result[f"dice_{name}"] = dice(pred_classes == cls, ref_classes == cls)
    return {column: result[column] for column in METRIC_COLUMNS[1:]}


def failure_metrics() -> dict[str, float]:
    """A missing prediction fails every region: Dice 0, HD95 373.13, sensitivity 0, spec. 1."""
    values = {"dice": 0.0, "hd95": float(HD95_MAX_MM), "sensitivity": 0.0, "specificity": 1.0}
    return {col: values[col.split("_")[0]] for col in METRIC_COLUMNS[1:]}


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)  # without breaking a progress bar


def evaluate_folder(
    pred_dir: Path | str,
    ref_dir: Path | str,
    progress: bool = True,
    case_ids: Iterable[str] | None = None,
    lesion_rules: LesionRules | None = None,
    error_maps: Path | str | None = None,
    keep_maps: bool = False,
) -> pd.DataFrame:
    """Score every labelled case of ``ref_dir`` against ``pred_dir``, one row per case with a
    ``status`` (``"ok"`` or ``"missing"``); ``df.attrs`` holds ``missing``, ``extra``,
    ``unlabelled`` and ``warnings``. ``keep_maps``: error maps already written are kept."""
    predictions = find_predictions(pred_dir)
    references = discover_cases(ref_dir)
    by_id = {case.case_id: case for case in references}
    case_ids = sorted(by_id) if case_ids is None else list(case_ids)
    unknown = sorted(set(case_ids) - set(by_id))
    if unknown:
        raise BratsError(f"cases {unknown} are not in the reference folder {ref_dir}")
    unlabelled = sorted(c for c in set(case_ids) if by_id[c].seg is None)
    scored = [c for c in case_ids if by_id[c].seg is not None]
    if not scored:
        raise BratsError(f"no reference case with a segmentation to score in {ref_dir}")
    if not set(scored) & set(predictions):
        raise BratsError(
            f"none of the {len(scored)} reference cases has a prediction in {pred_dir} "
            f"(expected files like {scored[0]}.nii.gz): is it the right prediction folder?"
        )
    extra = sorted(set(predictions) - set(by_id))
    rows, missing, warnings = [], [], []
    for case_id in tqdm(scored, desc="evaluate", unit="case", disable=not progress):
        case = by_id[case_id]
        ref_labels, ref_image = read_nifti(case.seg, case_id)
        try:
            ref_classes = labels_to_classes(ref_labels, case.release)
        except ValueError as exc:
            raise CaseError(case_id, f"reference segmentation: {exc}", case.seg) from exc
        spacing = tuple(float(z) for z in ref_image.header.get_zooms()[:3])
        volumes = region_volumes_ml(ref_classes, spacing)
        if case_id not in predictions:
            missing.append(case_id)
            _say(f"{case_id}: no prediction in {pred_dir}; counted as a failure")
            lesions = lesion_metrics(None, ref_classes, spacing, lesion_rules)
            row = {"case": case_id, **failure_metrics(), **lesions, **volumes}
            rows.append({**row, "status": "missing"})
            continue
        pred_classes, pred_image = read_prediction(
            predictions[case_id], case_id, case.release, ref_classes.shape
        )
        if not np.allclose(pred_image.affine, ref_image.affine, atol=AFFINE_TOLERANCE_MM):
            warnings.append(f"{case_id}: prediction affine differs from the reference's")
        metrics = evaluate_case(pred_classes, ref_classes, spacing)
        lesions = lesion_metrics(pred_classes, ref_classes, spacing, lesion_rules)
        rows.append({"case": case_id, **metrics, **lesions, **volumes, "status": "ok"})
        map_path = error_map_path(error_maps, case_id) if error_maps is not None else None
        if map_path is not None and not (keep_maps and map_path.exists()):
            write_nifti(map_path, error_map(pred_classes, ref_classes), ref_image.affine)
    for message in warnings:
        _say(f"warning: {message}")
    if unlabelled:
        _say(f"reference cases without segmentation, not scored: {', '.join(unlabelled)}")
    if extra:
        _say(f"predictions without a reference case, ignored: {', '.join(extra)}")
    df = pd.DataFrame(rows, columns=[*METRIC_COLUMNS, *LESION_COLUMNS, *VOLUME_COLUMNS, "status"])
    df.attrs.update(missing=missing, extra=extra, unlabelled=unlabelled, warnings=warnings)
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per metric of a per-case table: ``mean, std`` (ddof 1), ``median, q25, q75, n``."""
    columns = (*METRIC_COLUMNS[1:], *LESION_COLUMNS)
    metrics = df[[c for c in columns if c in df.columns]].astype(float)
    names = {"50%": "median", "25%": "q25", "75%": "q75", "count": "n"}
    table = metrics.describe().T.rename(columns=names).astype({"n": int})
    return table[["mean", "std", "median", "q25", "q75", "n"]]
