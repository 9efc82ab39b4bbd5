"""Training losses: categorical cross-entropy (the seed's) and soft Dice + cross-entropy.

For a region-output network (``head="regions"``, three sigmoids WT, TC, ET) the same names
mean their region forms, as nnU-Net and MONAI train BraTS: ``"ce"`` is the binary
cross-entropy of each region, ``"dice_ce"`` adds the batch soft Dice of each region. The
targets stay the loader's one-hot classes; the regions are derived from them here.

``keras.ops`` only, so they run on every Keras backend. The functions are registered with
``keras.saving.register_keras_serializable`` so a saved ``.keras`` model compiled with them
reloads (import this module before ``keras.saving.load_model``).

All losses take ``y_true`` ``(B, H, W, C)`` one-hot float32 and ``y_pred`` ``(B, H, W, C)``
softmax probabilities float32 (classes in
:data:`~brats_utils.conventions.CLASS_NAMES` order) and return per-voxel values ``(B, H, W)``
that Keras averages.
"""

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
    """``1 - mean soft Dice`` over ``classes``, with sums over the whole batch.

    For each class ``c``: ``dice_c = (2 * sum(p_c * t_c) + smooth) / (sum(p_c) + sum(t_c) +
    smooth)``, sums over batch, height and width (so slices without tumour do not each
    contribute a noisy ratio). A class absent from both truth and prediction scores ~1.

    Returns:
        Scalar float32 in ``[0, 1]``.
    """
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
    """Soft Dice over the 3 tumour classes (batch-wise) + per-voxel categorical cross-entropy.

    Returns:
        ``(B, H, W)`` float32: cross-entropy per voxel plus the batch's Dice loss, so that the
        Keras mean equals ``mean CE + (1 - mean tumour soft Dice)``.
    """
    return categorical_crossentropy(y_true, y_pred) + soft_dice_loss(y_true, y_pred)


def region_targets(y_true):
    """One-hot classes ``(B, H, W, 4)`` -> ``(B, H, W, 3)`` float32 masks of WT, TC, ET."""
    y_true = ops.cast(y_true, "float32")
    masks = [
        ops.sum(ops.take(y_true, list(classes), axis=-1), axis=-1) for classes in REGIONS.values()
    ]
    return ops.stack(masks, axis=-1)


@keras.saving.register_keras_serializable(package="brats_utils")
def region_bce(y_true, y_pred):
    """Binary cross-entropy of the WT, TC, ET sigmoids, averaged over the regions: ``(B, H, W)``."""
    return keras.losses.binary_crossentropy(region_targets(y_true), ops.cast(y_pred, "float32"))


@keras.saving.register_keras_serializable(package="brats_utils")
def region_dice_bce(y_true, y_pred):
    """Batch soft Dice of WT, TC and ET (mean over the regions) + their binary cross-entropy."""
    regions = region_targets(y_true)
    dice = soft_dice_loss(regions, y_pred, classes=tuple(range(len(REGIONS))))
    return region_bce(y_true, y_pred) + dice


def get_loss(name: str, head: str = "classes"):
    """The loss called ``name`` (one of :data:`~brats_utils.training.settings.LOSSES`) for a head.

    Args:
        name: ``"ce"`` or ``"dice_ce"``.
        head: ``"classes"`` (softmax) or ``"regions"`` (sigmoids; see the module docstring).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if head == "regions":
        losses = dict(zip(LOSSES, (region_bce, region_dice_bce), strict=True))
    else:
        losses = dict(zip(LOSSES, (categorical_crossentropy, dice_ce), strict=True))
    try:
        return losses[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}") from None
