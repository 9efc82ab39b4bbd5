"""Keras metrics equal to ``evaluation.slice_metrics.label_metrics`` on all voxels seen."""

from __future__ import annotations

import keras
from keras import ops

from brats_utils.conventions import (
    CLASS_NAMES,
    NUM_CLASSES,
    REGION_OUTPUTS,
    REGIONS,
    TUMOUR_CLASSES,
)
from brats_utils.evaluation.slice_metrics import LABEL_METRICS

__all__ = [
    "CONFUSION_METRICS",
    "ConfusionMatrixMetric",
    "default_metrics",
]

#: Names a :class:`ConfusionMatrixMetric` computes: the label metrics and the region Dice.
CONFUSION_METRICS: tuple[str, ...] = (
    *LABEL_METRICS,
    *(f"dice_{region.lower()}" for region in REGIONS),
)
#: Logged per epoch by ``brats train``; the ET label's Dice is the ET region's: ``dice_et``.
DEFAULT_METRICS: tuple[str, ...] = (
    "mean_iou",
    "dice",
    "precision",
    "sensitivity",
    "specificity",
    "dice_necrotic",
    "dice_edema",
    "dice_wt",
    "dice_tc",
    "dice_et",
)


def batch_confusion_matrix(y_true, y_pred, num_classes: int = NUM_CLASSES, sample_weight=None):
    """``(C, C)`` float32 confusion matrix of one batch, rows true, columns predicted.
    ``y_true`` one-hot or classes; ``y_pred`` probabilities or 3 region sigmoids."""
    if len(y_true.shape) == len(y_pred.shape):
        true_class = ops.argmax(y_true, axis=-1)
    else:
        true_class = ops.cast(y_true, "int32")
    pred_class = _predicted_classes(y_pred, num_classes)
    true_onehot = ops.reshape(
        ops.one_hot(true_class, num_classes, dtype="float32"), (-1, num_classes)
    )
    pred_onehot = ops.reshape(
        ops.one_hot(pred_class, num_classes, dtype="float32"), (-1, num_classes)
    )
    if sample_weight is not None:
        weight = ops.broadcast_to(ops.cast(sample_weight, "float32"), ops.shape(true_class))
        true_onehot = true_onehot * ops.reshape(weight, (-1, 1))
    return ops.matmul(ops.transpose(true_onehot), pred_onehot)


def _predicted_classes(y_pred, num_classes: int):
    if y_pred.shape[-1] == num_classes or y_pred.shape[-1] != REGION_OUTPUTS:
        return ops.argmax(y_pred, axis=-1)
    whole = ops.cast(y_pred[..., 0] > 0.5, "int32")
    core = whole * ops.cast(y_pred[..., 1] > 0.5, "int32")
    enhancing = core * ops.cast(y_pred[..., 2] > 0.5, "int32")
    # edema 2 in WT, necrotic 1 in TC, enhancing 3 in ET
    return 2 * whole - core + 2 * enhancing


def _safe_ratio(numerator, denominator):
    """1.0 where the denominator is 0, as in the numpy metrics."""
    positive = denominator > 0
    return ops.where(positive, numerator / ops.where(positive, denominator, 1.0), 1.0)


def _binary(cm, positive: tuple[int, ...]):
    """``(tp, fp, fn, tn)`` of "class in positive" vs the rest."""
    mask = ops.convert_to_tensor([1.0 if c in positive else 0.0 for c in range(cm.shape[0])])
    rest = 1.0 - mask
    tp = ops.sum(cm * mask[:, None] * mask[None, :])
    fp = ops.sum(cm * rest[:, None] * mask[None, :])
    fn = ops.sum(cm * mask[:, None] * rest[None, :])
    tn = ops.sum(cm * rest[:, None] * rest[None, :])
    return tp, fp, fn, tn


_SCORES = {  # (numerator, denominator) from (tp, fp, fn, tn)
    "dice": lambda tp, fp, fn, tn: (2 * tp, 2 * tp + fp + fn),
    "iou": lambda tp, fp, fn, tn: (tp, tp + fp + fn),
    "precision": lambda tp, fp, fn, tn: (tp, tp + fp),
    "sensitivity": lambda tp, fp, fn, tn: (tp, tp + fn),
    "specificity": lambda tp, fp, fn, tn: (tn, tn + fp),
}
_ALL, _TUMOUR = [(c,) for c in range(NUM_CLASSES)], [(c,) for c in TUMOUR_CLASSES]
#: metric -> (score, the class sets it is averaged over, each set against the rest)
_DEFINITIONS = {
    "mean_iou": ("iou", _ALL),
    "dice_all": ("dice", _ALL),
    **{score: (score, _TUMOUR) for score in ("dice", "precision", "sensitivity", "specificity")},
    **{f"{score}_tumour": (score, [TUMOUR_CLASSES]) for score in _SCORES if score != "iou"},
    **{f"dice_{CLASS_NAMES[c]}": ("dice", [(c,)]) for c in TUMOUR_CLASSES},
    **{f"dice_{region.lower()}": ("dice", [classes]) for region, classes in REGIONS.items()},
}


def metric_from_confusion(cm, metric: str):
    """One of :data:`CONFUSION_METRICS` from a ``(4, 4)`` confusion matrix."""
    if metric not in _DEFINITIONS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {CONFUSION_METRICS}")
    score, class_sets = _DEFINITIONS[metric]
    values = [_safe_ratio(*_SCORES[score](*_binary(cm, s))) for s in class_sets]
    return ops.mean(ops.stack(values))


@keras.saving.register_keras_serializable(package="brats_utils")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """One of :data:`CONFUSION_METRICS` over every batch since the last reset."""

    def __init__(
        self,
        metric: str | None = None,
        name: str | None = None,
        num_classes: int = NUM_CLASSES,
        dtype=None,
    ):
        metric = metric or name
        if metric not in CONFUSION_METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {CONFUSION_METRICS}")
        super().__init__(name=name or metric, dtype=dtype)
        self.metric = metric
        self.num_classes = num_classes
        shape = (num_classes, num_classes)
        self.confusion = self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", name="confusion"
        )
        # Kahan compensation: the low-order part lost when adding a batch to the total.
        self.compensation = self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", name="compensation"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        batch = batch_confusion_matrix(y_true, y_pred, self.num_classes, sample_weight)
        corrected = batch - self.compensation
        total = self.confusion + corrected
        self.compensation.assign((total - self.confusion) - corrected)
        self.confusion.assign(total)

    def result(self):
        return metric_from_confusion(ops.convert_to_tensor(self.confusion), self.metric)

    def reset_state(self):
        shape = (self.num_classes, self.num_classes)
        # Separate arrays: JAX refuses to donate one buffer shared by two variables.
        self.confusion.assign(ops.zeros(shape, dtype="float32"))
        self.compensation.assign(ops.zeros(shape, dtype="float32"))

    def get_config(self):
        return {"metric": self.metric, "num_classes": self.num_classes, **super().get_config()}


def default_metrics() -> list[ConfusionMatrixMetric]:
    """Fresh metric objects for ``model.compile(metrics=default_metrics())``."""
    return [ConfusionMatrixMetric(name) for name in DEFAULT_METRICS]
