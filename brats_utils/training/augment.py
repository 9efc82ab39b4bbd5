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
            _intensity(x[i], rng)
        if flip_rows:
            x[i], y[i] = x[i, ::-1].copy(), y[i, ::-1].copy()
        if flip_cols:
            x[i], y[i] = x[i, :, ::-1].copy(), y[i, :, ::-1].copy()


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


def _intensity(image: np.ndarray, rng: np.random.Generator) -> None:
    """nnU-Net's probabilities and ranges: noise, blur, brightness, contrast, gamma."""
    channels = image.shape[-1]
    if rng.random() < 0.1:
        image += rng.normal(0.0, np.sqrt(rng.uniform(0, 0.1)), image.shape).astype(np.float32)
    if rng.random() < 0.2:
        for k in np.flatnonzero(rng.random(channels) < 0.5):
            image[..., k] = ndimage.gaussian_filter(image[..., k], rng.uniform(0.5, 1.0))
    if rng.random() < 0.15:
        image *= rng.uniform(0.75, 1.25)
    if rng.random() < 0.15:  # contrast around the mean, the range kept
        low, high, mean = image.min((0, 1)), image.max((0, 1)), image.mean((0, 1))
        image[:] = np.clip((image - mean) * rng.uniform(0.75, 1.25) + mean, low, high)
    for sign, p in ((-1.0, 0.1), (1.0, 0.3)):  # gamma of the inverted image, then of the image
        if rng.random() < p:
            image[:] = sign * _gamma(sign * image, rng.uniform(0.7, 1.5, channels))


def _gamma(image: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Gamma per channel on the image scaled to [0, 1]; mean and std kept."""
    low, high = image.min((0, 1)), image.max((0, 1))
    mean, std = image.mean((0, 1)), image.std((0, 1))
    scaled = ((image - low) / np.maximum(high - low, 1e-7)) ** gamma * (high - low) + low
    return (scaled - scaled.mean((0, 1))) / (scaled.std((0, 1)) + 1e-8) * std + mean
