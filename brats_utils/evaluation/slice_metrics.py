"""The baseline's slice metrics from one ``(4, 4)`` confusion matrix ``cm[true, predicted]``."""

from __future__ import annotations

import numpy as np

from brats_utils.conventions import CLASS_NAMES, NUM_CLASSES, REGIONS, TUMOUR_CLASSES

__all__ = [
    "LABEL_METRICS",
    "confusion_matrix",
    "safe_ratio",
    "label_metrics",
    "region_dice_from_cm",
]

#: Keys of :func:`label_metrics`, in the order tables show them.
LABEL_METRICS: tuple[str, ...] = (
    "mean_iou",
    "dice",
    "dice_all",
    "precision",
    "sensitivity",
    "specificity",
    "dice_tumour",
    "precision_tumour",
    "sensitivity_tumour",
    "specificity_tumour",
    *(f"dice_{name}" for name in CLASS_NAMES[1:]),
)


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """``(C, C)`` int64 voxel counts, rows true, columns predicted, of two class arrays."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    for label, array in (("y_true", y_true), ("y_pred", y_pred)):
        if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
            raise ValueError(f"{label} must hold integer classes, got dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(
                f"{label} classes must lie in 0..{num_classes - 1}, "
                f"got {array.min()}..{array.max()}"
            )
    index = y_true.astype(np.int64).ravel() * num_classes + y_pred.astype(np.int64).ravel()
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def safe_ratio(numerator, denominator):
    """``numerator / denominator`` elementwise in float64, 1.0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.ones(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _check_cm(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2:
        raise ValueError(f"expected a square (C, C) confusion matrix, got shape {cm.shape}")
    if np.any(cm < 0):
        raise ValueError("confusion matrix counts must be non-negative")
    return cm.astype(np.float64)


def _binary_cm(cm: np.ndarray, positive: tuple[int, ...]) -> tuple[float, float, float, float]:
    """``(tp, fp, fn, tn)`` of "class in ``positive``" vs the rest."""
    inside = np.zeros(cm.shape[0], dtype=bool)
    inside[list(positive)] = True
    tp = cm[np.ix_(inside, inside)].sum()
    fp = cm[np.ix_(~inside, inside)].sum()
    fn = cm[np.ix_(inside, ~inside)].sum()
    tn = cm[np.ix_(~inside, ~inside)].sum()
    return tp, fp, fn, tn


def _ratios(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    return {
        "dice": safe_ratio(2 * tp, 2 * tp + fp + fn),
        "precision": safe_ratio(tp, tp + fp),
        "sensitivity": safe_ratio(tp, tp + fn),
        "specificity": safe_ratio(tn, tn + fp),
    }


def label_metrics(cm: np.ndarray) -> dict[str, float]:
    """The :data:`LABEL_METRICS` of a ``(4, 4)`` confusion matrix; ``mean_iou``, ``dice_all``
    average 4 classes, other per-class scores the 3 tumour classes."""
    cm = _check_cm(cm)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"expected a ({NUM_CLASSES}, {NUM_CLASSES}) matrix, got {cm.shape}")
    tp, fp, fn, tn = np.array([_binary_cm(cm, (c,)) for c in range(NUM_CLASSES)]).T
    per_class, tumour = _ratios(tp, fp, fn, tn), list(TUMOUR_CLASSES)
    result = {"mean_iou": safe_ratio(tp, tp + fp + fn).mean(), "dice_all": per_class["dice"].mean()}
    result.update({name: values[tumour].mean() for name, values in per_class.items()})
    whole = _ratios(*_binary_cm(cm, TUMOUR_CLASSES))
    result.update({f"{name}_tumour": value for name, value in whole.items()})
    result.update({f"dice_{CLASS_NAMES[c]}": per_class["dice"][c] for c in TUMOUR_CLASSES})
    return {name: float(result[name]) for name in LABEL_METRICS}


def region_dice_from_cm(cm: np.ndarray) -> dict[str, float]:
    """``{"WT": ..., "TC": ..., "ET": ...}`` Dice of the regions from a confusion matrix."""
    cm = _check_cm(cm)
    return {r: float(_ratios(*_binary_cm(cm, c))["dice"]) for r, c in REGIONS.items()}
