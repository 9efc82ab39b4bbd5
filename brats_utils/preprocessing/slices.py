"""One case becomes model input, bit for bit alike for the cache and inference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from brats_utils.conventions import MODALITIES, NUM_CLASSES, VOLUME_SHAPE, channel_indices
from brats_utils.data.cases import CaseFiles, read_case_volumes
from brats_utils.errors import CaseError
from brats_utils.preprocessing.normalize import brain_statistics, check_image
from brats_utils.preprocessing.resize import resize_channel_slab, resize_labels
from brats_utils.preprocessing.settings import PreprocessSettings, to_plane

__all__ = [
    "brain_box",
    "frame_box",
    "crop_square",
    "window_overlap",
    "preprocess_channels",
    "image_channels",
    "model_input",
    "context_positions",
    "stack_context",
    "preprocess_case",
    "preprocess_files",
]


_BRAIN_MARGIN = 2


def brain_box(mask: np.ndarray, margin: int = _BRAIN_MARGIN) -> tuple[int, int, int]:
    """The in-plane square ``(x0, y0, side)`` around a non-empty brain mask; may leave the frame."""
    xs = np.flatnonzero(mask.any(axis=(1, 2)))
    ys = np.flatnonzero(mask.any(axis=(0, 2)))
    height, width = int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)
    side = max(height, width) + 2 * margin
    return int(xs[0]) - (side - height) // 2, int(ys[0]) - (side - width) // 2, side


def frame_box(mask: np.ndarray, crop_brain: bool) -> tuple[int, int, int] | None:
    """The square each slice of an ``(A, B, S)`` mask is cut to (``None``: a square frame)."""
    if crop_brain:
        return brain_box(mask)
    height, width = mask.shape[:2]
    if height == width:
        return None
    side = max(height, width)
    return (height - side) // 2, (width - side) // 2, side


def window_overlap(start: int, side: int, n: int) -> tuple[slice, slice]:
    """Source and destination slices of a ``side``-long window at ``start`` on an axis of ``n``."""
    lo, hi = max(start, 0), min(start + side, n)
    return slice(lo, hi), slice(lo - start, hi - start)


def crop_square(slab: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """``slab[x0:x0+side, y0:y0+side]``, zero outside ``slab``, Fortran-ordered (fast to resize)."""
    x0, y0, side = box
    out = np.zeros((side, side, *slab.shape[2:]), dtype=slab.dtype, order="F")
    (sx, dx), (sy, dy) = (
        window_overlap(x0, side, slab.shape[0]),
        window_overlap(y0, side, slab.shape[1]),
    )
    out[dx, dy] = slab[sx, sy]
    return out


def image_channels(image: np.ndarray, case_id: str = "") -> list[np.ndarray]:
    """Split a ``(X, Y, Z, 4)`` image into four Fortran-ordered ``(X, Y, Z)`` channels."""
    image = np.asarray(image)
    check_image(image, case_id)
    return [np.asfortranarray(image[..., c]) for c in range(image.shape[-1])]


def model_input(
    channels: Sequence[np.ndarray],
    settings: PreprocessSettings,
    model_channels: Sequence[str],
    case_id: str = "",
) -> np.ndarray:
    """Four ``(X, Y, Z)`` volumes -> every slice as the model sees it, ``(Z, size, size, C)``
    float32; slice ``k`` equals the cached slice ``k``."""
    images, _, _ = preprocess_channels(channels, None, settings.every_slice(), case_id)
    return np.ascontiguousarray(images[..., channel_indices(model_channels)])


def context_positions(positions: np.ndarray, n_slices: int, context: int) -> np.ndarray:
    """``(N,)`` centre positions -> ``(N, context)`` neighbours, clipped to ``0 .. n_slices-1``."""
    if context < 1 or context % 2 == 0:
        raise ValueError(f"context must be an odd positive integer, got {context}")
    offsets = np.arange(context) - context // 2
    return np.clip(np.asarray(positions)[:, None] + offsets[None, :], 0, n_slices - 1)


def stack_context(
    slices: np.ndarray, positions: np.ndarray, context: int, channels: Sequence[int] | None = None
) -> np.ndarray:
    """2.5D input: ``(Z, H, W, C)`` slices -> ``(N, H, W, context * C)`` float32, the neighbours
    of each of the ``(N,)`` centre ``positions`` side by side."""
    index = context_positions(positions, len(slices), context)  # (N, k)
    stacks = np.asarray(slices[index.reshape(-1)], dtype=np.float32)  # (N * k, H, W, C)
    if channels is not None:
        stacks = stacks[..., list(channels)]
    n, (h, w, c) = len(index), stacks.shape[1:]
    stacks = stacks.reshape(n, context, h, w, c)
    return np.ascontiguousarray(np.moveaxis(stacks, 1, 3).reshape(n, h, w, context * c))


def preprocess_channels(
    channels: Sequence[np.ndarray],
    seg: np.ndarray | None,
    settings: PreprocessSettings | None = None,
    case_id: str = "",
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Normalised, resized slices of four ``(X, Y, Z)`` volumes and their uint8 classes or ``None``.

    Statistics come from the whole volume (float64); the kept slices are normalised after
    resizing (equal for a linear resize, up to float32 rounding).

    Returns ``(images, labels, slice_indices)``: ``(S, size, size, 4)`` float32 holding float16
    values (the cache's precision, so training and inference see the same numbers), ``(S, size,
    size)`` uint8 or ``None``, ``(S,)`` int64 indices into Z. ``CaseError``: differing shapes,
    too few slices, no brain, a constant modality, NaN, labels outside 0..3.
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
    if seg is not None and np.shape(seg) != shape:
        raise CaseError(case_id, f"seg has shape {np.shape(seg)}, expected {shape}")
    mask, offsets, divisors = brain_statistics(channels, settings.normalization, case_id)
    channels = [to_plane(np.asarray(channel), settings.plane) for channel in channels]
    mask = to_plane(mask, settings.plane)
    if seg is not None:
        seg = to_plane(np.asarray(seg), settings.plane)
    kept = settings.slice_indices(mask.shape[2], case_id)
    size = settings.size
    box = frame_box(mask, settings.crop_brain)

    def frame(slab: np.ndarray) -> np.ndarray:  # the brain's square, or the whole slice
        return slab if box is None else crop_square(slab, box)

    zs = slice(int(kept[0]), int(kept[-1]) + 1)
    slab_mask = frame(mask[:, :, zs])
    resized_mask = resize_channel_slab(slab_mask, size)
    images = np.empty((len(kept), size, size, len(channels)), dtype=np.float32)
    for c, channel in enumerate(channels):
        slab = frame(channel[:, :, zs])
        if np.min(channel) < 0:  # the background may not be exactly 0: mask it explicitly
            slab = np.where(slab_mask, slab, 0)
        resized = resize_channel_slab(slab, size)  # (S, size, size) transposed view
        if offsets[c]:
            resized -= offsets[c] * resized_mask
        resized /= divisors[c]
        if settings.normalization == "max":  # rounding must not step past the maximum
            np.minimum(resized, np.float32(1), out=resized)
        images[..., c] = resized.astype(np.float16)  # what the cache stores, exactly
    if not np.isfinite(images).all():
        raise CaseError(case_id, "normalised intensities exceed float16's range (65504)")

    labels = None
    if seg is not None:
        labels = resize_labels(np.moveaxis(frame(seg[:, :, zs]), 2, 0), size).astype(np.uint8)
        if labels.size and int(labels.max()) >= NUM_CLASSES:
            raise CaseError(
                case_id, f"seg holds class {int(labels.max())}, expected 0..{NUM_CLASSES - 1}"
            )
    return images, labels, kept


def preprocess_case(
    case: Any, settings: PreprocessSettings | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`preprocess_channels` of a loaded ``Case`` (``case_id``, ``image``, ``seg``)."""
    case_id = str(case.case_id)
    return preprocess_channels(image_channels(case.image, case_id), case.seg, settings, case_id)


def preprocess_files(
    files: CaseFiles,
    settings: PreprocessSettings | None = None,
    *,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``preprocess_case(load_case(files))`` from the on-disk volumes, without a float32 copy."""
    volumes = read_case_volumes(files, expected_shape=expected_shape)
    return preprocess_channels(volumes.channels, volumes.seg, settings, files.case_id)
