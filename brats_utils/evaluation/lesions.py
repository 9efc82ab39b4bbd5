"""Lesion-wise Dice and HD95, as the BraTS 2023+ challenges rank segmentations.

Per case and region (a binary mask of truth and one of prediction), following the official
2023 evaluation (the GLI sub-challenge's defaults: ``dilation=3``, ``min_volume=50``):

1. Connected components of the truth and of the prediction, 26-connectivity.
2. The truth mask is dilated ``dilation`` times with the 18-connected structuring element
   (``scipy.ndimage.generate_binary_structure(3, 2)``); truth components that fall in one
   component of the dilated mask are merged into one **lesion**.
3. Every predicted component that touches a lesion's *dilated* mask is matched to it; the
   lesion's Dice and HD95 are computed between the union of those components and the
   *undilated* lesion. A lesion that nothing touches scores Dice 0 and HD95
   :data:`LESION_HD95_MAX_MM` (374 mm).
4. Lesions of at most ``min_volume`` mm^3 are left out of the score, and the components that
   touch them are not false positives.
5. Every predicted component that touches no dilated lesion is a **false positive**: Dice 0,
   HD95 374 mm.
6. The case's score is the sum over the kept lesions divided by (kept lesions + false
   positives). With neither: Dice 1, HD95 0.

HD95 here is the official tooling's: the **larger of the two directed 95th percentiles**
(prediction to truth, truth to prediction) of surface distances in mm
(``hd95_variant="max_directed"``). The legacy whole-volume HD95 of
:mod:`brats_utils.evaluation.surface` is the 95th percentile of both directions *pooled*
(MedPy's, ``"pooled"``), which is never larger; either may be chosen. The 2023 code measures
surface distances with DeepMind's ``surface_distance`` package, which weights every surface
element by its area; here every surface voxel counts once (the same surface as the legacy
HD95), so values differ by a fraction of a voxel on smooth lesions.

Every step is local: the masks are cropped to their joint bounding box grown by
``dilation + 1`` voxels, which changes no component, no dilation and no distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
    f"lesion_{metric}_{region}"
    for metric in ("dice", "hd95", "tp", "fp", "fn")
    for region in ("WT", "TC", "ET")
)

_CONNECTIVITY_26 = ndimage.generate_binary_structure(3, 3)
_DILATION_18 = ndimage.generate_binary_structure(3, 2)


@dataclass(frozen=True)
class LesionRules:
    """The sub-challenge's parameters (defaults: GLI; MEN ``dilation=1``, MET ``1`` / ``2``).

    Attributes:
        dilation: dilations of the truth mask that merge nearby truth components.
        min_volume: lesions of at most this volume (mm^3) are not scored.
        hd95_variant: ``"max_directed"`` (the 2023 tooling's) or ``"pooled"`` (legacy).
    """

    dilation: int = GLI_DILATION
    min_volume: float = GLI_MIN_VOLUME_MM3
    hd95_variant: str = "max_directed"

    def __post_init__(self) -> None:
        if isinstance(self.dilation, bool) or not isinstance(self.dilation, int | np.integer):
            raise ValueError(f"dilation must be an integer >= 0, got {self.dilation!r}")
        if self.dilation < 0:
            raise ValueError(f"dilation must be an integer >= 0, got {self.dilation!r}")
        if not (isinstance(self.min_volume, int | float) and np.isfinite(self.min_volume)):
            raise ValueError(f"min_volume must be a finite number of mm^3, got {self.min_volume!r}")
        if self.min_volume < 0:
            raise ValueError(f"min_volume must be >= 0 mm^3, got {self.min_volume!r}")
        if self.hd95_variant not in HD95_VARIANTS:
            raise ValueError(
                f"hd95_variant must be one of {HD95_VARIANTS}, got {self.hd95_variant!r}"
            )


@dataclass(frozen=True)
class LesionScores:
    """Lesion-wise scores of one region of one case.

    Attributes:
        dice: lesion-wise Dice (see the module docstring).
        hd95: lesion-wise HD95 in mm.
        tp: kept lesions matched by at least one predicted component.
        fp: predicted components touching no dilated lesion.
        fn: kept lesions no predicted component touches.
        lesion_dice: Dice of every kept lesion, in lesion order (``fp`` zeros not included).
        lesion_volumes: volume in mm^3 of every kept lesion.
    """

    dice: float
    hd95: float
    tp: int
    fp: int
    fn: int
    lesion_dice: tuple[float, ...] = ()
    lesion_volumes: tuple[float, ...] = ()


def _union_box(boxes: Sequence[tuple[slice, ...]]) -> tuple[slice, ...]:
    return tuple(
        slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes))
        for axis in range(len(boxes[0]))
    )


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    total = np.count_nonzero(pred) + np.count_nonzero(ref)
    return 2.0 * np.count_nonzero(pred & ref) / total if total else 1.0


def lesion_scores(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    *,
    dilation: int = GLI_DILATION,
    min_volume: float = GLI_MIN_VOLUME_MM3,
    hd95_variant: str = "max_directed",
) -> LesionScores:
    """Lesion-wise Dice and HD95 of one region (see the module docstring for every rule).

    Args:
        pred: (X, Y, Z) boolean mask of the predicted region.
        ref: (X, Y, Z) boolean mask of the reference region, same shape.
        spacing: voxel size in mm per axis (the reference header's zooms).
        dilation: dilations of the truth mask that merge nearby truth components (>= 0).
        min_volume: lesions of at most this volume (mm^3) are not scored.
        hd95_variant: ``"max_directed"`` (the 2023 tooling's) or ``"pooled"`` (the legacy).

    Returns:
        The :class:`LesionScores`.

    Raises:
        ValueError: shapes that differ, a mask that is not 3D, a negative ``dilation`` or
            ``min_volume``, an unknown ``hd95_variant``.
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape or ref.ndim != 3:
        raise ValueError(f"expected two 3D masks of one shape, got {pred.shape} and {ref.shape}")
    if not isinstance(dilation, int | np.integer) or dilation < 0:
        raise ValueError(f"dilation must be an integer >= 0, got {dilation!r}")
    if not min_volume >= 0:
        raise ValueError(f"min_volume must be >= 0 mm^3, got {min_volume!r}")
    if hd95_variant not in HD95_VARIANTS:
        raise ValueError(f"hd95_variant must be one of {HD95_VARIANTS}, got {hd95_variant!r}")
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
    dices, hd95s, volumes, tp, fn = [], [], [], 0, 0
    for k, box in enumerate(ndimage.find_objects(lesion_cc), start=1):
        hits = np.unique(pred_cc[box][lesion_cc[box] == k])
        hits = [int(h) for h in hits if h]
        matched.update(hits)
        volume = np.count_nonzero(lesions[box] == k) * voxel_mm3
        if volume <= min_volume:
            continue
        volumes.append(volume)
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
        hd95s.append(hd95(predicted, truth, spacing, variant=hd95_variant))
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
        lesion_dice=tuple(float(d) for d in dices),
        lesion_volumes=tuple(float(v) for v in volumes),
    )


def lesion_metrics(
    pred_classes: np.ndarray | None,
    ref_classes: np.ndarray,
    spacing: Sequence[float],
    rules: LesionRules | None = None,
) -> dict[str, float]:
    """The :data:`LESION_COLUMNS` of one case, region by region.

    Args:
        pred_classes: (X, Y, Z) internal classes 0..3, or ``None`` for a missing prediction:
            then every region scores Dice 0 and HD95 374 mm (a failure, as for the legacy
            metrics), with every kept lesion a false negative.
        ref_classes: (X, Y, Z) internal classes 0..3.
        spacing: voxel size in mm per axis.
        rules: the sub-challenge's parameters (default GLI).
    """
    from brats_utils.conventions import REGIONS

    rules = rules or LesionRules()
    ref_classes = np.asarray(ref_classes)
    missing = pred_classes is None
    pred_classes = np.zeros_like(ref_classes) if missing else np.asarray(pred_classes)
    result: dict[str, float] = {}
    for region, classes in REGIONS.items():
        scores = lesion_scores(
            np.isin(pred_classes, classes),
            np.isin(ref_classes, classes),
            spacing,
            dilation=rules.dilation,
            min_volume=rules.min_volume,
            hd95_variant=rules.hd95_variant,
        )
        if missing:
            scores = LesionScores(0.0, LESION_HD95_MAX_MM, 0, 0, scores.fn)
        values = {"dice": scores.dice, "hd95": scores.hd95}
        values.update({"tp": scores.tp, "fp": scores.fp, "fn": scores.fn})
        for metric, value in values.items():
            result[f"lesion_{metric}_{region}"] = value
    return {column: result[column] for column in LESION_COLUMNS}
