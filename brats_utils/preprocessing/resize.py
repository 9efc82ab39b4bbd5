"""Resizing stacks of slices: linear for images and probabilities, nearest for labels.

Convention (both resizers): *pixel centres*. Output pixel ``j`` of ``n_out`` samples the
input at the continuous coordinate ``(j + 0.5) * n_in / n_out - 0.5``, the same convention
as OpenCV's ``INTER_LINEAR`` and ``scipy.ndimage.zoom(grid_mode=True, mode="nearest")``.
Linear interpolation mixes the two neighbouring input pixels (coordinates outside
``[0, n_in - 1]`` are clamped to the edge), without anti-aliasing; nearest neighbour takes
the input pixel whose centre is closest, ``floor((j + 0.5) * n_in / n_out)``. Both are
separable, so a resize is two gathers (two-tap blends) along the row and column axes over
every slice and channel at once: several times faster than ``scipy.ndimage.zoom`` per slice.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize_images", "resize_labels", "resize_channel_slab"]


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two-tap linear interpolation along one axis (pixel-centre sampling, edge clamped)."""
    source = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    source = np.clip(source, 0.0, n_in - 1)
    lower = np.floor(source).astype(np.intp)
    upper = np.minimum(lower + 1, n_in - 1)
    upper_weight = (source - lower).astype(np.float32)
    return lower, upper, 1.0 - upper_weight, upper_weight


def _nearest_taps(n_in: int, n_out: int) -> np.ndarray:
    """Input index whose pixel centre is closest to each output pixel centre."""
    source = np.floor((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out))
    return np.minimum(source.astype(np.intp), n_in - 1)


def _resize_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    if x.shape[axis] == size:
        return x
    lower, upper, lower_weight, upper_weight = _linear_taps(x.shape[axis], size)
    shape = [1] * x.ndim
    shape[axis] = size
    out = np.take(x, lower, axis=axis)
    out *= lower_weight.reshape(shape)
    upper_part = np.take(x, upper, axis=axis)
    upper_part *= upper_weight.reshape(shape)
    out += upper_part
    return out


def _resize_rows(x: np.ndarray, size: int) -> np.ndarray:
    """Linear resize along axis 1 of ``(S, H, W)``, one output row at a time.

    Blends the two source rows of each output row straight from ``x`` (any dtype and
    strides; contiguous rows are fastest), instead of copying ``x`` first as ``np.take``
    would. Returns a new ``(S, size, W)`` float32 array.
    """
    lower, upper, lower_weight, upper_weight = _linear_taps(x.shape[1], size)
    out = np.empty((x.shape[0], size, x.shape[2]), dtype=np.float32)
    scratch = np.empty((x.shape[0], x.shape[2]), dtype=np.float32)
    for i in range(size):
        np.multiply(x[:, lower[i]], lower_weight[i], out=out[:, i])
        if upper_weight[i] != 0:
            np.multiply(x[:, upper[i]], upper_weight[i], out=scratch)
            out[:, i] += scratch
    return out


def resize_channel_slab(slab: np.ndarray, size: int) -> np.ndarray:
    """Linear resize of one channel's slab of slices.

    Args:
        slab: ``(X, Y, S)`` any real dtype; fastest when ``slab.T`` is C-contiguous, as for
            a slice range of a Fortran-ordered volume straight from nibabel.
        size: output height and width.

    Returns:
        ``(S, size, size)`` float32 view ``[s, x, y]`` (a transposed new array).
    """
    by_row = slab.T  # (S, Y, X): rows of X are contiguous for Fortran-ordered volumes
    resized = by_row.astype(np.float32) if by_row.shape[1] == size else _resize_rows(by_row, size)
    return _resize_axis(resized, size, 2).transpose(0, 2, 1)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a stack of multichannel slices by linear interpolation.

    Pixel-centre sampling (see the module docstring), no anti-aliasing, like
    ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)``. Also used to bring predicted
    probabilities back to 240 x 240 (each output pixel stays a convex combination, so
    probabilities still sum to 1).

    Args:
        images: ``(N, H, W, C)`` float.
        size: output height and width in pixels.

    Returns:
        ``(N, size, size, C)`` float32 (a new array, or ``images`` as float32 if already
        ``size x size``).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be a float array, got dtype {images.dtype}")
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    x = images.astype(np.float32, copy=False)
    return np.ascontiguousarray(_resize_axis(_resize_axis(x, size, 1), size, 2))


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Resize a stack of label slices by nearest neighbour (never mixes classes).

    Args:
        labels: ``(N, H, W)`` integer classes (uint8 0..3 in this project).
        size: output height and width in pixels.

    Returns:
        ``(N, size, size)`` of the same dtype; every value also occurs in ``labels``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (N, H, W), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    rows = _nearest_taps(labels.shape[1], size)
    cols = _nearest_taps(labels.shape[2], size)
    return labels[:, rows[:, None], cols[None, :]]
