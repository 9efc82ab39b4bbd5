"""Intensity normalisation of one case, per modality over the brain mask.

Axis conventions: volumes are ``(X, Y, Z[, C])`` as read from NIfTI; slices are
``(Z, X, Y[, C])`` (:func:`to_slices`), so ``slices[k]`` is ``volume[:, :, k]`` with X along
the rows. Channels are always in :data:`~brats_utils.conventions.MODALITIES` order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brats_utils.conventions import MODALITIES
from brats_utils.errors import CaseError
from brats_utils.preprocessing.settings import NORMALIZATIONS

__all__ = [
    "check_image",
    "brain_mask",
    "brain_statistics",
    "apply_normalization",
    "normalize_image",
    "to_slices",
]


def check_image(image: np.ndarray, case_id: str) -> None:
    if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
        raise CaseError(
            case_id,
            f"image must be (X, Y, Z, {len(MODALITIES)}) with channels {MODALITIES}, "
            f"got shape {image.shape}",
        )


def brain_mask(channels: Sequence[np.ndarray]) -> np.ndarray:
    """``(X, Y, Z)`` bool: voxels where any modality is > 0, the brain every step uses."""
    mask = np.asarray(channels[0]) > 0
    for channel in channels[1:]:
        mask |= np.asarray(channel) > 0
    return mask


def brain_statistics(
    channels: Sequence[np.ndarray], method: str, case_id: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brain mask and per-channel ``offsets``/``divisors``: normalised = (x - offset) / divisor.

    Args:
        channels: one ``(X, Y, Z)`` array per modality (any real dtype and layout).
        method: one of :data:`NORMALIZATIONS`.
        case_id: for error messages.

    Returns:
        ``(mask, offsets, divisors)``: ``(X, Y, Z)`` bool brain mask (any channel > 0) and
        two ``(C,)`` float32 arrays. Statistics are computed in float64.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {method!r}")
    mask = brain_mask(channels)
    order = "F" if mask.flags.f_contiguous and not mask.flags.c_contiguous else "C"
    index = np.flatnonzero(mask.ravel(order=order))
    if index.size == 0:
        raise CaseError(case_id, "image has no brain voxels (no channel is > 0 anywhere)")
    offsets = np.zeros(len(channels), dtype=np.float32)
    divisors = np.ones(len(channels), dtype=np.float32)
    for c, (modality, channel) in enumerate(zip(MODALITIES, channels, strict=True)):
        brain = np.take(channel.ravel(order=order), index).astype(np.float64)
        mean, std, peak = float(brain.mean()), float(brain.std()), float(brain.max())
        if not (np.isfinite(mean) and np.isfinite(std)):
            raise CaseError(case_id, f"{modality} holds NaN or infinite values in the brain")
        if std == 0.0:
            raise CaseError(
                case_id,
                f"{modality} is constant ({mean:g}) over the {index.size} brain voxels; "
                "expected varying intensities (is the file blank or a copy of a mask?)",
            )
        if method == "zscore":
            offsets[c], divisors[c] = mean, std
        elif peak <= 0.0:
            raise CaseError(case_id, f"{modality} has maximum {peak:g} <= 0 in the brain")
        else:
            divisors[c] = peak
    return mask, offsets, divisors


def apply_normalization(
    image: np.ndarray, mask: np.ndarray, offsets: np.ndarray, divisors: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``out[..., c] = (image[..., c] - offsets[c]) / divisors[c]`` inside ``mask``, else 0."""
    for c in range(image.shape[-1]):
        channel = out[..., c]
        np.subtract(image[..., c], offsets[c], out=channel, dtype=np.float32)
        channel /= divisors[c]
        np.multiply(channel, mask, out=channel)
    return out


def normalize_image(image: np.ndarray, method: str = "zscore", case_id: str = "") -> np.ndarray:
    """Normalise each modality of one case over its brain voxels.

    The brain mask is every voxel where any channel is > 0. ``"zscore"`` maps each channel
    to mean 0 and standard deviation 1 over the mask; ``"max"`` divides each channel by its
    maximum (values in [0, 1] for non-negative scans). Voxels outside the mask are exactly 0.

    Args:
        image: ``(X, Y, Z, 4)`` float, channels in ``MODALITIES`` order, scanner units.
        method: one of :data:`NORMALIZATIONS`.
        case_id: for error messages.

    Returns:
        ``(X, Y, Z, 4)`` float32, a new array.

    Raises:
        CaseError: no brain voxels, NaN/inf inside the brain, or a channel constant over the
            brain (named), which would otherwise give NaN.
        ValueError: unknown ``method``.
    """
    image = np.asarray(image)
    check_image(image, case_id)
    channels = [image[..., c] for c in range(image.shape[-1])]
    mask, offsets, divisors = brain_statistics(channels, method, case_id)
    out = np.empty_like(image, dtype=np.float32)
    return apply_normalization(image, mask, offsets, divisors, out)


def to_slices(volume: np.ndarray) -> np.ndarray:
    """Axial slices first: ``(X, Y, Z[, C]) -> (Z, X, Y[, C])`` (a view, no copy)."""
    volume = np.asarray(volume)
    if volume.ndim not in (3, 4):
        raise ValueError(f"volume must be (X, Y, Z) or (X, Y, Z, C), got shape {volume.shape}")
    return np.moveaxis(volume, 2, 0)
