"""Resizing slices as ``scipy.ndimage.zoom(grid_mode=True, mode="nearest")`` (faster)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["resize_images", "resize_labels", "resize_channel_slab"]


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(lower, upper, lower_weight, upper_weight)`` of linear interpolation along one axis."""
    source = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    source = np.clip(source, 0.0, n_in - 1)
    lower = np.floor(source).astype(np.intp)
    upper = np.minimum(lower + 1, n_in - 1)
    upper_weight = (source - lower).astype(np.float32)
    return lower, upper, 1.0 - upper_weight, upper_weight


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
    """Linear resize along axis 1 of ``(S, H, W)`` into float32, without copying ``x`` first."""
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
    """``(X, Y, S)`` any real dtype, fastest Fortran-ordered -> ``(S, size, size)`` float32."""
    by_row = slab.T  # (S, Y, X): rows of X are contiguous for Fortran-ordered volumes
    resized = by_row.astype(np.float32) if by_row.shape[1] == size else _resize_rows(by_row, size)
    return _resize_axis(resized, size, 2).transpose(0, 2, 1)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, size, size, C)`` float32, linear (probabilities sum to 1)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be a float array, got dtype {images.dtype}")
    x = images.astype(np.float32, copy=False)
    return np.ascontiguousarray(_resize_axis(_resize_axis(x, size, 1), size, 2))


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W)`` integer -> ``(N, size, size)`` of the same dtype, nearest neighbour."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be (N, H, W), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    zoom = (1, size / labels.shape[1], size / labels.shape[2])
    return ndimage.zoom(labels, zoom, order=0, grid_mode=True, mode="nearest")
