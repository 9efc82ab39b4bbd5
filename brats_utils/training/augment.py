"""Training-time augmentation: flips, or nnU-Net's 2D defaults (rotation, scaling, elastic
deformation, noise, blur, brightness, contrast, gamma, flips) with numpy and scipy.ndimage.

Every draw comes from the ``rng`` of one batch (the loader seeds it with seed, epoch and batch),
so a resumed run sees the same slices as an uninterrupted one. The spatial transform moves image
and label alike (linear for images, nearest for labels); intensity changes touch images only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["AUGMENTATIONS", "augment_batch"]

#: ``none``; ``flips`` (left-right, up-down); ``nnunet``: flips plus nnU-Net's transforms.
AUGMENTATIONS: tuple[str, ...] = ("none", "flips", "nnunet")


def augment_batch(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, mode: str) -> None:
    """Augment ``x`` ``(B, H, W, C)`` float32 and ``y`` ``(B, H, W)`` in place."""
    flips = rng.random((len(x), 2)) < 0.5
    for i, (flip_rows, flip_cols) in enumerate(flips):
        if mode == "nnunet":
            _spatial(x[i], y[i], rng)
        if flip_rows:
            x[i], y[i] = x[i, ::-1].copy(), y[i, ::-1].copy()
        if flip_cols:
            x[i], y[i] = x[i, :, ::-1].copy(), y[i, :, ::-1].copy()
    if mode == "nnunet":
        _intensity(x, rng)


def _spatial(image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """Rotation (any angle), scaling (0.7..1.4) and elastic deformation, each with p = 0.2."""
    rotate, scale, elastic = rng.random(3) < 0.2
    if not (rotate or scale or elastic):
        return
    size = image.shape[0]
    angle = rng.uniform(-np.pi, np.pi) if rotate else 0.0
    zoom = rng.uniform(0.7, 1.4) if scale else 1.0
    centre = (size - 1) / 2
    grid = np.mgrid[:size, :size].astype(np.float32) - centre
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    coords = np.einsum("ij,jhw->ihw", turn / zoom, grid) + centre
    if elastic:  # batchgenerators' form: smoothed noise times alpha, sizes relative to 128
        ratio = size / 128
        noise = rng.uniform(-1, 1, coords.shape)
        sigma = rng.uniform(9, 13) * ratio
        coords += ndimage.gaussian_filter(noise, (0, sigma, sigma)) * rng.uniform(0, 200) * ratio**2
    for k in range(image.shape[-1]):
        image[..., k] = ndimage.map_coordinates(image[..., k], coords, order=1, cval=0.0)
    label[:] = ndimage.map_coordinates(label, coords, order=0, cval=0)


def _intensity(x: np.ndarray, rng: np.random.Generator) -> None:
    """nnU-Net's probabilities and ranges, per slice: noise, blur, brightness, contrast, gamma."""
    n, channels = len(x), x.shape[-1]
    planes = np.ascontiguousarray(np.moveaxis(x, -1, 1))  # (B, C, H, W): fast per-plane stats

    def chosen(p: float) -> np.ndarray:
        return np.flatnonzero(rng.random(n) < p)

    def draw(low: float, high: float, i: np.ndarray, per_channel: int = 1) -> np.ndarray:
        return rng.uniform(low, high, (len(i), per_channel, 1, 1)).astype(np.float32)

    if (i := chosen(0.1)).size:
        noise = rng.standard_normal(planes[i].shape, dtype=np.float32)
        planes[i] += noise * np.sqrt(draw(0.0, 0.1, i))
    blurred = (rng.random((n, 1)) < 0.2) & (rng.random((n, channels)) < 0.5)
    for s, k in np.argwhere(blurred):
        planes[s, k] = ndimage.gaussian_filter(planes[s, k], rng.uniform(0.5, 1.0))
    if (i := chosen(0.15)).size:
        planes[i] *= draw(0.75, 1.25, i)
    if (i := chosen(0.15)).size:  # contrast around the mean, the range kept
        part = planes[i]
        low, high, mean = (f(part, (2, 3), keepdims=True) for f in (np.min, np.max, np.mean))
        planes[i] = np.clip((part - mean) * draw(0.75, 1.25, i) + mean, low, high)
    for sign, p in ((-1.0, 0.1), (1.0, 0.3)):  # gamma of the inverted image, then of the image
        if (i := chosen(p)).size:
            planes[i] = sign * _gamma(sign * planes[i], draw(0.7, 1.5, i, channels))
    x[:] = np.moveaxis(planes, 1, -1)


def _gamma(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Gamma per plane of ``x`` ``(B, C, H, W)`` scaled to [0, 1]; mean and std kept."""
    low, high = x.min((2, 3), keepdims=True), x.max((2, 3), keepdims=True)
    mean, std = x.mean((2, 3), keepdims=True), x.std((2, 3), keepdims=True)
    scaled = ((x - low) / np.maximum(high - low, 1e-7)) ** gamma * (high - low) + low
    new_mean, new_std = scaled.mean((2, 3), keepdims=True), scaled.std((2, 3), keepdims=True)
    return (scaled - new_mean) / (new_std + 1e-8) * std + mean
