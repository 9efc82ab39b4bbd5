"""Lesion-wise Dice and HD95, as the BraTS 2023+ challenges rank segmentations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from brats_utils.conventions import REGIONS
from brats_utils.errors import check_choice
from brats_utils.evaluation.surface import HD95_VARIANTS, hd95, joint_bounding_box

__all__ = [
    "LESION_HD95_MAX_MM",
    "GLI_DILATION",
    "GLI_MIN_VOLUME_MM3",
    "LESION_COLUMNS",
    "LesionRules",
    "LesionScores",
    "lesion_scores",
    "lesion_metrics",
]

#: HD95 of a missed lesion or a false-positive component in the 2023 tooling (mm).
LESION_HD95_MAX_MM: float = 374.0
#: Defaults of the adult glioma (GLI) sub-challenge; MEN uses 1 / 50, MET 1 / 2.
GLI_DILATION: int = 3
GLI_MIN_VOLUME_MM3: float = 50.0

#: Per-case columns of ``brats evaluate`` (after the legacy ones), region by region.
LESION_COLUMNS: tuple[str, ...] = tuple(
    f"lesion_{m}_{r}" for m in ("dice", "hd95", "tp", "fp", "fn") for r in REGIONS
)

_CONNECTIVITY_26 = ndimage.generate_binary_structure(3, 3)
_DILATION_18 = ndimage.generate_binary_structure(3, 2)


@dataclass(frozen=True)
class LesionRules:
    """The sub-challenge's parameters (defaults: GLI; MEN ``dilation=1``, MET ``1`` / ``2``)."""

    dilation: int = GLI_DILATION
    min_volume: float = GLI_MIN_VOLUME_MM3
    hd95_variant: str = "max_directed"

    def __post_init__(self) -> None:
        dilation, min_volume = self.dilation, self.min_volume
        if isinstance(dilation, bool) or not isinstance(dilation, int | np.integer) or dilation < 0:
            raise ValueError(f"dilation must be an integer >= 0, got {dilation!r}")
        if not isinstance(min_volume, int | float | np.number) or not 0 <= min_volume < np.inf:
            raise ValueError(f"min_volume must be a finite number >= 0 mm^3, got {min_volume!r}")
        check_choice("hd95_variant", self.hd95_variant, HD95_VARIANTS)


@dataclass(frozen=True)
class LesionScores:
    """Lesion-wise scores of one region."""

    dice: float
    hd95: float
    tp: int
    fp: int
    fn: int


def _union_box(boxes: Sequence[tuple[slice, ...]]) -> tuple[slice, ...]:
    return tuple(
        slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes))
        for axis in range(len(boxes[0]))
    )


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    total = np.count_nonzero(pred) + np.count_nonzero(ref)
    return 2.0 * np.count_nonzero(pred & ref) / total if total else 1.0


def lesion_scores(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], rules: LesionRules = LesionRules()
) -> LesionScores:
    """Lesion-wise scores of two (X, Y, Z) boolean masks; ``spacing`` in mm per axis.

    As the official 2023 evaluation: 26-connected components; truth components in one component
    of the truth dilated ``rules.dilation`` times form one lesion; predicted components touching
    it are matched to it (an unmatched lesion: Dice 0, HD95 374 mm); lesions of at most
    ``rules.min_volume`` mm^3 are not scored; a predicted component touching no lesion is a false
    positive (Dice 0, HD95 374). Score: sum over kept lesions / (lesions + false positives);
    with neither, Dice 1, HD95 0. Each surface voxel counts once in HD95.
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape or ref.ndim != 3:
        raise ValueError(f"expected two 3D masks of one shape, got {pred.shape} and {ref.shape}")
    dilation, min_volume = rules.dilation, rules.min_volume
    spacing = tuple(float(s) for s in spacing)
    box = joint_bounding_box(pred, ref, margin=int(dilation) + 1)
    if box is None:  # both empty
        return LesionScores(1.0, 0.0, 0, 0, 0)
    pred, ref = pred[box], ref[box]
    pred_cc, n_pred = ndimage.label(pred, structure=_CONNECTIVITY_26)
    dilated = ndimage.binary_dilation(ref, _DILATION_18, iterations=dilation) if dilation else ref
    lesion_cc, n_lesions = ndimage.label(dilated, structure=_CONNECTIVITY_26)
    lesions = np.where(ref, lesion_cc, 0)  # truth voxels labelled by their merged lesion
    voxel_mm3 = float(np.prod(spacing))
    pred_boxes = ndimage.find_objects(pred_cc)
    matched: set[int] = set()
    dices, hd95s, tp, fn = [], [], 0, 0
    for k, box in enumerate(ndimage.find_objects(lesion_cc), start=1):
        hits = np.unique(pred_cc[box][lesion_cc[box] == k])
        hits = [int(h) for h in hits if h]
        matched.update(hits)
        if np.count_nonzero(lesions[box] == k) * voxel_mm3 <= min_volume:
            continue
        if not hits:
            fn += 1
            dices.append(0.0)
            hd95s.append(LESION_HD95_MAX_MM)
            continue
        tp += 1
        region = _union_box([box, *(pred_boxes[h - 1] for h in hits)])
        truth = lesions[region] == k
        predicted = np.isin(pred_cc[region], hits)
        dices.append(_dice(predicted, truth))
        hd95s.append(hd95(predicted, truth, spacing, variant=rules.hd95_variant))
    fp = n_pred - len(matched)
    count = len(dices) + fp
    if count == 0:
        return LesionScores(1.0, 0.0, 0, 0, 0)
    return LesionScores(
        dice=float(sum(dices) / count),
        hd95=float((sum(hd95s) + fp * LESION_HD95_MAX_MM) / count),
        tp=tp,
        fp=fp,
        fn=fn,
    )


def lesion_metrics(
    pred_classes: np.ndarray | None,
    ref_classes: np.ndarray,
    spacing: Sequence[float],
    rules: LesionRules | None = None,
) -> dict[str, float]:
    """The :data:`LESION_COLUMNS` of one case; a missing prediction fails every region."""
    rules = rules or LesionRules()
    ref_classes = np.asarray(ref_classes)
    missing = pred_classes is None
    pred_classes = np.zeros_like(ref_classes) if missing else np.asarray(pred_classes)
    result: dict[str, float] = {}
    for region, classes in REGIONS.items():
        scores = lesion_scores(
            np.isin(pred_classes, classes), np.isin(ref_classes, classes), spacing, rules
        )
        if missing:
            scores = LesionScores(0.0, LESION_HD95_MAX_MM, 0, 0, scores.fn)
        for metric in ("dice", "hd95", "tp", "fp", "fn"):
            result[f"lesion_{metric}_{region}"] = getattr(scores, metric)
    return {column: result[column] for column in LESION_COLUMNS}
