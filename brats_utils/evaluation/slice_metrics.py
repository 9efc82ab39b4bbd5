"""Reference segmentation metrics in numpy, all computed from one confusion matrix.

Every metric is derived from a ``(4, 4)`` confusion matrix of *hard* (argmax) predictions that
is accumulated over a whole evaluation (all slices of all cases), never averaged per batch.
:mod:`brats_utils.training.keras_metrics` mirrors these functions inside Keras and is tested against
them.

Conventions:

* Rows are the true class, columns the predicted class (``cm[t, p]``); classes 0..3 in
  :data:`~brats_utils.conventions.CLASS_NAMES` order.
* Per-class scores are one-vs-rest: for class ``c``, ``TP = cm[c, c]``, ``FP`` = voxels
  predicted ``c`` that are not ``c``, ``FN`` = voxels of class ``c`` predicted otherwise,
  ``TN`` = everything else.
* Empty convention: a ratio whose denominator is 0 scores **1.0** (nothing to find and nothing
  found wrongly). For Dice and IoU that happens exactly when the class (or region) is absent
  from both truth and prediction; when it is absent from one only, Dice and IoU are 0.
* ``dice``, ``precision``, ``sensitivity`` and ``specificity`` are means over the 3 tumour
  classes (necrotic, edema, enhancing) of the one-vs-rest scores from the accumulated matrix
  (background is excluded: its specificity/Dice would dominate). ``dice_all`` and ``mean_iou``
  include background. ``*_tumour`` variants score tumour (any class 1-3) against background.
"""

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
    """Count voxels per (true class, predicted class).

    Args:
        y_true: integer classes ``0..num_classes-1``, any shape.
        y_pred: integer classes, the same shape as ``y_true`` (argmax of the probabilities).
        num_classes: size of the matrix.

    Returns:
        ``(num_classes, num_classes)`` int64, rows = true class, columns = predicted class.

    Raises:
        ValueError: for different shapes, non-integer arrays or classes out of range.
    """
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
    """``numerator / denominator`` elementwise, 1.0 where the denominator is 0 (float64)."""
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


def _one_vs_rest(cm: np.ndarray):
    """``(tp, fp, fn, tn)`` per class, each ``(C,)`` float64."""
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return tp, fp, fn, tn


def _binary_cm(cm: np.ndarray, positive: tuple[int, ...]) -> tuple[float, float, float, float]:
    """``(tp, fp, fn, tn)`` of "class in ``positive``" vs the rest."""
    inside = np.zeros(cm.shape[0], dtype=bool)
    inside[list(positive)] = True
    tp = cm[np.ix_(inside, inside)].sum()
    fp = cm[np.ix_(~inside, inside)].sum()
    fn = cm[np.ix_(inside, ~inside)].sum()
    tn = cm[np.ix_(~inside, ~inside)].sum()
    return tp, fp, fn, tn


def label_metrics(cm: np.ndarray) -> dict[str, float]:
    """Per-label scores of an accumulated confusion matrix (4 classes).

    Args:
        cm: ``(4, 4)`` counts from :func:`confusion_matrix` (rows true, columns predicted),
            summed over a whole evaluation.

    Returns:
        Dict with (floats in ``[0, 1]``, keys in :data:`LABEL_METRICS` order):

        * ``mean_iou``: IoU ``TP / (TP + FP + FN)`` averaged over the 4 classes incl.
          background.
        * ``dice``: Dice ``2TP / (2TP + FP + FN)`` averaged over the 3 tumour classes;
          ``dice_all``: averaged over all 4 classes.
        * ``precision`` ``TP / (TP + FP)``, ``sensitivity`` ``TP / (TP + FN)``,
          ``specificity`` ``TN / (TN + FP)``: one-vs-rest per tumour class from the
          accumulated matrix, averaged over the 3 tumour classes.
        * ``dice_tumour``, ``precision_tumour``, ``sensitivity_tumour``,
          ``specificity_tumour``: tumour (any class 1-3) vs background.
        * ``dice_necrotic``, ``dice_edema``, ``dice_enhancing``: Dice of each tumour class.

        A 0/0 ratio scores 1.0 (see the module docstring).

    Raises:
        ValueError: if ``cm`` is not a ``(4, 4)`` non-negative matrix.
    """
    cm = _check_cm(cm)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"expected a ({NUM_CLASSES}, {NUM_CLASSES}) matrix, got {cm.shape}")
    tp, fp, fn, tn = _one_vs_rest(cm)
    iou = safe_ratio(tp, tp + fp + fn)
    dice = safe_ratio(2 * tp, 2 * tp + fp + fn)
    precision = safe_ratio(tp, tp + fp)
    sensitivity = safe_ratio(tp, tp + fn)
    specificity = safe_ratio(tn, tn + fp)
    tumour = list(TUMOUR_CLASSES)
    btp, bfp, bfn, btn = _binary_cm(cm, TUMOUR_CLASSES)
    result = {
        "mean_iou": float(iou.mean()),
        "dice": float(dice[tumour].mean()),
        "dice_all": float(dice.mean()),
        "precision": float(precision[tumour].mean()),
        "sensitivity": float(sensitivity[tumour].mean()),
        "specificity": float(specificity[tumour].mean()),
        "dice_tumour": float(safe_ratio(2 * btp, 2 * btp + bfp + bfn)),
        "precision_tumour": float(safe_ratio(btp, btp + bfp)),
        "sensitivity_tumour": float(safe_ratio(btp, btp + bfn)),
        "specificity_tumour": float(safe_ratio(btn, btn + bfp)),
    }
    for cls in TUMOUR_CLASSES:
        result[f"dice_{CLASS_NAMES[cls]}"] = float(dice[cls])
    return result


def region_dice_from_cm(cm: np.ndarray) -> dict[str, float]:
    """Dice of the BraTS regions (WT, TC, ET from :data:`~brats_utils.conventions.REGIONS`).

    A region's voxels are those whose class is in the region, so its TP/FP/FN follow from the
    class confusion matrix. Empty convention: a region absent from both truth and prediction
    scores 1.0; absent from exactly one, 0.0.

    Args:
        cm: ``(C, C)`` counts, rows true, columns predicted.

    Returns:
        ``{"WT": float, "TC": float, "ET": float}``.
    """
    cm = _check_cm(cm)
    scores = {}
    for region, classes in REGIONS.items():
        tp, fp, fn, _ = _binary_cm(cm, classes)
        scores[region] = float(safe_ratio(2 * tp, 2 * tp + fp + fn))
    return scores
