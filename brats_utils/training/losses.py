"""Training losses (``keras.ops``) of class softmax or region sigmoid networks."""

from __future__ import annotations

import keras
from keras import ops

from brats_utils.conventions import REGIONS, TUMOUR_CLASSES
from brats_utils.training.settings import LOSSES

__all__ = [
    "categorical_crossentropy",
    "soft_dice_loss",
    "dice_ce",
    "region_targets",
    "region_bce",
    "region_dice_bce",
    "get_loss",
]


@keras.saving.register_keras_serializable(package="brats_utils")
def categorical_crossentropy(y_true, y_pred):
    """Per-voxel categorical cross-entropy of probabilities: ``(B, H, W)`` float32."""
    return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=False)


def soft_dice_loss(y_true, y_pred, classes: tuple[int, ...] = TUMOUR_CLASSES, smooth: float = 1.0):
    """Scalar ``1 - mean over classes of (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)``,
    sums over the whole batch (a slice without tumour adds no noisy ratio of its own)."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    index = list(classes)
    t = ops.take(y_true, index, axis=-1)
    p = ops.take(y_pred, index, axis=-1)
    axes = tuple(range(len(t.shape) - 1))
    intersection = ops.sum(t * p, axis=axes)
    total = ops.sum(t, axis=axes) + ops.sum(p, axis=axes)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - ops.mean(dice)


@keras.saving.register_keras_serializable(package="brats_utils")
def dice_ce(y_true, y_pred):
    """Per-voxel cross-entropy + the batch's soft Dice loss over the 3 tumour classes."""
    return categorical_crossentropy(y_true, y_pred) + soft_dice_loss(y_true, y_pred)


def region_targets(y_true):
    """``(B, H, W, 4)`` one-hot classes -> ``(B, H, W, 3)`` float32 masks of WT, TC, ET."""
    y_true = ops.cast(y_true, "float32")
    masks = [
        ops.sum(ops.take(y_true, list(classes), axis=-1), axis=-1) for classes in REGIONS.values()
    ]
    return ops.stack(masks, axis=-1)


@keras.saving.register_keras_serializable(package="brats_utils")
def region_bce(y_true, y_pred):
    """Binary cross-entropy of the WT, TC, ET sigmoids, averaged over the regions."""
    return keras.losses.binary_crossentropy(region_targets(y_true), ops.cast(y_pred, "float32"))


@keras.saving.register_keras_serializable(package="brats_utils")
def region_dice_bce(y_true, y_pred):
    """Batch soft Dice of WT, TC and ET (mean over the regions) + their binary cross-entropy."""
    regions = region_targets(y_true)
    dice = soft_dice_loss(regions, y_pred, classes=tuple(range(len(REGIONS))))
    return region_bce(y_true, y_pred) + dice


def get_loss(name: str, head: str = "classes"):
    if head == "regions":
        losses = dict(zip(LOSSES, (region_bce, region_dice_bce), strict=True))
    else:
        losses = dict(zip(LOSSES, (categorical_crossentropy, dice_ce), strict=True))
    try:
        return losses[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}") from None
