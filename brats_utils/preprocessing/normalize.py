"""Intensity normalisation of one case, per modality over the brain (any modality > 0)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brats_utils.conventions import MODALITIES
from brats_utils.errors import CaseError, check_choice
from brats_utils.preprocessing.settings import NORMALIZATIONS

__all__ = ["check_image", "brain_mask", "brain_statistics", "normalize_image"]


def check_image(image: np.ndarray, case_id: str) -> None:
    if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
        raise CaseError(
            case_id,
            f"image must be (X, Y, Z, {len(MODALITIES)}) with channels {MODALITIES}, "
            f"got shape {image.shape}",
        )


def brain_mask(channels: Sequence[np.ndarray]) -> np.ndarray:
    """``(X, Y, Z)`` bool: voxels where any modality is > 0."""
    mask = np.asarray(channels[0]) > 0
    for channel in channels[1:]:
        mask |= np.asarray(channel) > 0
    return mask


def brain_statistics(
    channels: Sequence[np.ndarray], method: str, case_id: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mask, offsets, divisors)``, ``(C,)`` float32, of ``(X, Y, Z)`` channels (in float64)."""
    check_choice("normalization", method, NORMALIZATIONS)
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


def normalize_image(image: np.ndarray, method: str = "zscore", case_id: str = "") -> np.ndarray:
    """``(X, Y, Z, 4)`` -> float32, each modality normalised over the brain, 0 outside;
    ``CaseError``: no brain voxels, NaN/inf in the brain, or a modality constant over it."""
    image = np.asarray(image)
    check_image(image, case_id)
    channels = [image[..., c] for c in range(image.shape[-1])]
    mask, offsets, divisors = brain_statistics(channels, method, case_id)
    out = np.empty_like(image, dtype=np.float32)
    for c, channel in enumerate(channels):
        np.subtract(channel, offsets[c], out=out[..., c], dtype=np.float32)
        out[..., c] /= divisors[c]
        out[..., c] *= mask
    return out
