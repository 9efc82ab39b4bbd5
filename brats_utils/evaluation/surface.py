"""HD95 between binary masks, as MedPy's ``hd95`` in the BraTS tooling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from brats_utils.conventions import HD95_MAX_MM
from brats_utils.errors import check_choice

__all__ = ["HD95_VARIANTS", "mask_surface", "hd95", "joint_bounding_box"]

#: ``"pooled"``: 95th percentile of both directions together (MedPy, legacy BraTS);
#: ``"max_directed"``: the larger of the two directed 95th percentiles (BraTS 2023 tooling).
HD95_VARIANTS: tuple[str, ...] = ("pooled", "max_directed")


def mask_surface(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def joint_bounding_box(
    pred: np.ndarray, ref: np.ndarray, margin: int = 1
) -> tuple[slice, ...] | None:
    """Slices of the box around both masks grown by ``margin`` (clipped); ``None`` if empty."""
    union = np.asarray(pred, dtype=bool) | np.asarray(ref, dtype=bool)
    found = ndimage.find_objects(union.view(np.uint8))
    if not found:
        return None
    return tuple(
        slice(max(s.start - margin, 0), min(s.stop + margin, n))
        for s, n in zip(found[0], union.shape, strict=True)
    )


def hd95(
    pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float], variant: str = "pooled"
) -> float:
    """HD95 in mm (``spacing`` per axis): both masks empty 0, one empty 373.13 (legacy BraTS)."""
    check_choice("variant", variant, HD95_VARIANTS)
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(
            f"prediction has shape {pred.shape}, expected {ref.shape} like the reference"
        )
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ref.ndim:
        raise ValueError(f"spacing has {len(spacing)} values, expected {ref.ndim} (one per axis)")
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be positive finite mm per voxel, got {spacing}")
    pred_empty, ref_empty = not pred.any(), not ref.any()
    if pred_empty and ref_empty:
        return 0.0
    if pred_empty or ref_empty:
        return float(HD95_MAX_MM)
    box = joint_bounding_box(pred, ref, margin=1)
    pred_surface, ref_surface = mask_surface(pred[box]), mask_surface(ref[box])
    # distance_transform_edt measures the distance to the nearest zero voxel.
    pred_to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing)[pred_surface]
    ref_to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)[ref_surface]
    if variant == "max_directed":
        return float(max(np.percentile(pred_to_ref, 95), np.percentile(ref_to_pred, 95)))
    return float(np.percentile(np.concatenate([pred_to_ref, ref_to_pred]), 95))
