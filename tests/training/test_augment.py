"""nnU-Net-style augmentation: image and label move together, draws are seeded, flips unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from brats_utils.training.augment import augment_batch


def _batch(n: int = 24, size: int = 32, channels: int = 3):
    """Slices whose every channel is a smooth function of position, plus a disc label."""
    rows, cols = np.mgrid[:size, :size].astype(np.float32)
    x = np.stack([np.sin(rows / 5 + k) * np.cos(cols / 7) + k for k in range(channels)], -1)
    y = (((rows - 12) ** 2 + (cols - 18) ** 2) < 36).astype(np.uint8) * 2
    y[10:13, 16:20] = 3
    return np.repeat(x[None], n, 0), np.repeat(y[None], n, 0)


def test_same_seed_same_batch_and_flips_draw_as_before():
    x, y = _batch()
    a, b = (x.copy(), y.copy()), (x.copy(), y.copy())
    augment_batch(*a, np.random.default_rng(7), "nnunet")
    augment_batch(*b, np.random.default_rng(7), "nnunet")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    changed = [not np.array_equal(a[0][i], x[i]) for i in range(len(x))]
    assert 0 < sum(changed)
    # "flips": the first draw of the batch's generator decides every flip, as before nnunet
    f = (x.copy(), y.copy())
    augment_batch(*f, np.random.default_rng(7), "flips")
    flips = np.random.default_rng(7).random((len(x), 2)) < 0.5
    for i, (rows, cols) in enumerate(flips):
        np.testing.assert_array_equal(f[1][i], y[i, :: -1 if rows else 1, :: -1 if cols else 1])


def test_spatial_transform_moves_image_and_label_together():
    """Where the label lies after augmentation, the image must hold what it held under the label:
    the label is drawn from channel 0 (a threshold), so it must still match that threshold."""
    x, _ = _batch(n=64)
    y = (x[..., 0] > 0.5).astype(np.uint8)
    before = y.sum((1, 2))
    augment_batch(x, y, np.random.default_rng(3), "nnunet")
    moved = 0
    for i in range(len(x)):
        if y[i].sum() == 0:
            continue
        # compare inside the field of view, away from interpolation at the label's border
        inside = ndimage.binary_erosion(y[i] == 1, iterations=2)
        outside = ndimage.binary_erosion(y[i] == 0, iterations=2)
        # intensity changes rescale values but keep their order within the slice
        if inside.any() and outside.any():
            assert np.median(x[i, ..., 0][inside]) > np.median(x[i, ..., 0][outside])
        moved += y[i].sum() != before[i]
    assert moved > 0  # some slices were rotated, scaled or deformed


@pytest.mark.parametrize("mode", ["flips", "nnunet"])
def test_labels_keep_their_values_and_images_stay_finite(mode):
    x, y = _batch()
    augment_batch(x, y, np.random.default_rng(1), mode)
    assert set(np.unique(y)) <= {0, 2, 3} and y.dtype == np.uint8
    assert np.isfinite(x).all() and x.dtype == np.float32
