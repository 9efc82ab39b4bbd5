"""Preprocessing of one case: intensity normalisation, axial slicing and resizing.

The same functions serve the slice cache (:mod:`brats_utils.preprocessing.cache_build` and
:mod:`brats_utils.preprocessing.cache`, whose :func:`build_cache`, :class:`CacheReport`,
:func:`open_cache` and :class:`SliceCache` are re-exported here) and inference, which
must prepare a volume exactly as the training slices were prepared.

Axis conventions: volumes are ``(X, Y, Z[, C])`` as read from NIfTI; slices are
``(Z, X, Y[, C])`` (:func:`to_slices`), so ``slices[k]`` is ``volume[:, :, k]`` with X along
the rows. Channels are always in :data:`~brats_utils.conventions.MODALITIES` order.

Resizing (:mod:`brats_utils.preprocessing.resize`, whose :func:`resize_images` and
:func:`resize_labels` are re-exported here) samples pixel centres like ``cv2.resize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from brats_utils.conventions import MODALITIES, NUM_CLASSES, VOLUME_SHAPE
from brats_utils.data.cases import CaseFiles, read_case_volumes
from brats_utils.errors import CaseError
from brats_utils.preprocessing.cache import CacheReport, SliceCache, build_cache, open_cache
from brats_utils.preprocessing.resize import resize_channel_slab, resize_images, resize_labels

__all__ = [
    "NORMALIZATIONS",
    "PreprocessSettings",
    "normalize_image",
    "to_slices",
    "resize_images",
    "resize_labels",
    "preprocess_channels",
    "preprocess_case",
    "preprocess_files",
    # the cache, from brats_utils.preprocessing.cache
    "CacheReport",
    "SliceCache",
    "build_cache",
    "open_cache",
]

#: Intensity normalisations, per case and modality over the brain mask.
#: ``"zscore"``: (x - mean) / std; ``"max"``: x / max (the seed notebook's choice).
NORMALIZATIONS: tuple[str, ...] = ("zscore", "max")


@dataclass(frozen=True)
class PreprocessSettings:
    """How volumes become training slices; stored in the cache manifest and run configs.

    Attributes:
        size: output slice size in pixels (``size x size``).
        slice_start: first axial slice kept (index into Z).
        slice_stop: one past the last axial slice kept; ``None`` keeps every slice to the end.
            The default 22..121 (100 slices) is the seed notebook's range.
        normalization: one of :data:`NORMALIZATIONS`, per case and modality.
    """

    size: int = 128
    slice_start: int = 22
    slice_stop: int | None = 122
    normalization: str = "zscore"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        if not isinstance(self.slice_start, int) or self.slice_start < 0:
            raise ValueError(f"slice_start must be an integer >= 0, got {self.slice_start!r}")
        if self.slice_stop is not None and (
            not isinstance(self.slice_stop, int) or self.slice_stop <= self.slice_start
        ):
            raise ValueError(
                f"slice_stop must be None or an integer > slice_start={self.slice_start}, "
                f"got {self.slice_stop!r}"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSettings:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing settings {unknown}; expected {sorted(known)}")
        return cls(**d)

    def slice_indices(self, depth: int, case_id: str = "") -> np.ndarray:
        """Axial slice indices kept from a volume with ``depth`` slices.

        Returns:
            ``(S,)`` int64, ``slice_start .. slice_stop - 1`` (or ``.. depth - 1``).

        Raises:
            CaseError: if the volume has fewer slices than the range needs.
        """
        stop = depth if self.slice_stop is None else self.slice_stop
        if stop > depth or self.slice_start >= depth:
            raise CaseError(
                case_id,
                f"volume has {depth} axial slices, but slices {self.slice_start}:{stop} "
                "were asked for (use --slices all or a range inside the volume)",
            )
        return np.arange(self.slice_start, stop, dtype=np.int64)


def _check_image(image: np.ndarray, case_id: str) -> None:
    if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
        raise CaseError(
            case_id,
            f"image must be (X, Y, Z, {len(MODALITIES)}) with channels {MODALITIES}, "
            f"got shape {image.shape}",
        )


def _brain_statistics(
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
    mask = channels[0] > 0
    for channel in channels[1:]:
        mask |= channel > 0
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


def _apply_normalization(
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
    _check_image(image, case_id)
    channels = [image[..., c] for c in range(image.shape[-1])]
    mask, offsets, divisors = _brain_statistics(channels, method, case_id)
    out = np.empty_like(image, dtype=np.float32)
    return _apply_normalization(image, mask, offsets, divisors, out)


def to_slices(volume: np.ndarray) -> np.ndarray:
    """Axial slices first: ``(X, Y, Z[, C]) -> (Z, X, Y[, C])`` (a view, no copy)."""
    volume = np.asarray(volume)
    if volume.ndim not in (3, 4):
        raise ValueError(f"volume must be (X, Y, Z) or (X, Y, Z, C), got shape {volume.shape}")
    return np.moveaxis(volume, 2, 0)


def preprocess_channels(
    channels: Sequence[np.ndarray],
    seg: np.ndarray | None,
    settings: PreprocessSettings | None = None,
    case_id: str = "",
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Turn one case's modality volumes into normalised, resized axial training slices.

    The core of :func:`preprocess_case` and of the cache builder, which passes the on-disk
    int16 volumes straight from nibabel (no float32 copy of the whole case). Normalisation
    statistics come from the whole volume (float64); only the kept slices are resized. As
    resizing is linear with weights summing to 1 and the background is 0,
    ``resize(mask * (x - offset)) == resize(x) - offset * resize(mask)``, so the small
    resized slices are normalised instead of the full-size ones. The result equals
    ``resize_images(to_slices(normalize_image(image)[:, :, kept]), size)`` up to float32
    rounding.

    Args:
        channels: four ``(X, Y, Z)`` arrays in ``MODALITIES`` order, any real dtype; fastest
            Fortran-ordered (as nibabel returns them).
        seg: ``(X, Y, Z)`` uint8 classes 0..3, or ``None``.
        settings: preprocessing settings (default :class:`PreprocessSettings()`).
        case_id: for error messages.

    Returns:
        ``(images, labels, slice_indices)``: ``(S, size, size, 4)`` float32 C-contiguous,
        ``(S, size, size)`` uint8 classes 0..3 or ``None``, and the ``(S,)`` int64 axial
        indices (into Z of the source volume) of the slices.

    Raises:
        CaseError: shapes that differ, too few slices, no brain, a constant modality, NaN,
            labels outside 0..3.
    """
    settings = settings or PreprocessSettings()
    if len(channels) != len(MODALITIES):
        raise CaseError(case_id, f"expected {len(MODALITIES)} modalities, got {len(channels)}")
    shape = np.shape(channels[0])
    for modality, channel in zip(MODALITIES, channels, strict=True):
        if np.ndim(channel) != 3 or np.shape(channel) != shape:
            raise CaseError(
                case_id, f"{modality} has shape {np.shape(channel)}, expected a 3D {shape}"
            )
    kept = settings.slice_indices(shape[2], case_id)
    size = settings.size
    mask, offsets, divisors = _brain_statistics(channels, settings.normalization, case_id)
    zs = slice(int(kept[0]), int(kept[-1]) + 1)
    slab_mask = mask[:, :, zs]
    resized_mask = resize_channel_slab(slab_mask, size)
    images = np.empty((len(kept), size, size, len(channels)), dtype=np.float32)
    for c, channel in enumerate(channels):
        slab = channel[:, :, zs]
        if np.min(channel) < 0:  # the background may not be exactly 0: mask it explicitly
            slab = np.where(slab_mask, slab, 0)
        resized = resize_channel_slab(slab, size)  # (S, size, size) transposed view
        if offsets[c]:
            resized -= offsets[c] * resized_mask
        resized /= divisors[c]
        if settings.normalization == "max":  # rounding must not step past the maximum
            np.minimum(resized, np.float32(1), out=resized)
        images[..., c] = resized

    labels = None
    if seg is not None:
        seg = np.asarray(seg)
        if seg.shape != shape:
            raise CaseError(case_id, f"seg has shape {seg.shape}, expected {shape}")
        labels = resize_labels(to_slices(seg[:, :, zs]), size).astype(np.uint8)
        if labels.size and int(labels.max()) >= NUM_CLASSES:
            raise CaseError(
                case_id, f"seg holds class {int(labels.max())}, expected 0..{NUM_CLASSES - 1}"
            )
    return images, labels, kept


def preprocess_case(
    case: Any, settings: PreprocessSettings | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Turn one loaded case into normalised, resized axial training slices.

    Same result as the cache builder gives for the case's files
    (:func:`preprocess_channels` on the on-disk volumes).

    Args:
        case: a :class:`brats_utils.data.cases.Case` (``.case_id``; ``.image`` ``(X, Y, Z, 4)``
            float in ``MODALITIES`` order; ``.seg`` ``(X, Y, Z)`` uint8 classes 0..3 or None).
        settings: preprocessing settings (default :class:`PreprocessSettings()`).

    Returns:
        ``(images, labels, slice_indices)`` as :func:`preprocess_channels`.
    """
    case_id = str(case.case_id)
    image = np.asarray(case.image)
    _check_image(image, case_id)
    # Fortran-ordered channels, the layout preprocess_channels is fast on.
    channels = [np.asfortranarray(image[..., c]) for c in range(image.shape[-1])]
    return preprocess_channels(channels, case.seg, settings, case_id)


def preprocess_files(
    files: CaseFiles,
    settings: PreprocessSettings | None = None,
    *,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Read a case's files once and preprocess them: what :func:`build_cache` does per case.

    Gives the same arrays as ``preprocess_case(load_case(files), settings)`` but works on
    the on-disk int16 volumes as nibabel returns them, without the float32 copy of the
    whole case that :func:`brats_utils.data.cases.load_case` makes (the cache builder spends
    most of its time decompressing; this keeps the rest small). Files are read and checked
    by :func:`brats_utils.data.cases.read_case_volumes`, as for ``load_case``.

    Args:
        files: a :class:`brats_utils.data.cases.CaseFiles` from ``discover_cases``.
        settings: preprocessing settings (default :class:`PreprocessSettings()`).
        expected_shape: shape every file must have; ``None``: the files must only agree.

    Returns:
        ``(images, labels, slice_indices)`` as :func:`preprocess_channels`.

    Raises:
        CaseError: naming case and file: a missing modality, an unreadable file, a wrong
            shape, NaN/inf, invalid labels, a constant modality, too few slices.
    """
    volumes = read_case_volumes(files, expected_shape=expected_shape)
    return preprocess_channels(volumes.channels, volumes.seg, settings, files.case_id)
