"""Conventions: modality order, regions, release file names and label mappings."""

from __future__ import annotations

import numpy as np
import pytest

from brats_utils.conventions import (
    CLASS_NAMES,
    GLI2023,
    LEGACY,
    MODALITIES,
    REGIONS,
    classes_to_labels,
    labels_to_classes,
)


def test_modality_order_and_regions_are_the_documented_ones():
    assert MODALITIES == ("t1", "t1ce", "t2", "flair")
    assert CLASS_NAMES == ("background", "necrotic", "edema", "enhancing")
    assert REGIONS == {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


@pytest.mark.parametrize(
    ("release", "kind", "ext", "expected"),
    [
        (LEGACY, "t1ce", ".nii.gz", "BraTS2021_00042_t1ce.nii.gz"),
        (LEGACY, "seg", ".nii", "BraTS2021_00042_seg.nii"),
        (GLI2023, "flair", ".nii.gz", "BraTS2021_00042-t2f.nii.gz"),
        (GLI2023, "t1", ".nii.gz", "BraTS2021_00042-t1n.nii.gz"),
        (GLI2023, "t1ce", ".nii", "BraTS2021_00042-t1c.nii"),
        (GLI2023, "t2", ".nii.gz", "BraTS2021_00042-t2w.nii.gz"),
    ],
)
def test_release_file_names(release, kind, ext, expected):
    assert release.file_name("BraTS2021_00042", kind, ext) == expected


@pytest.mark.parametrize(
    ("release", "labels", "classes"),
    [(LEGACY, [0, 1, 2, 4], [0, 1, 2, 3]), (GLI2023, [0, 1, 2, 3], [0, 1, 2, 3])],
)
def test_labels_map_to_classes_and_back(release, labels, classes):
    rng = np.random.default_rng(0)
    index = rng.integers(0, 4, size=(5, 4, 3))
    seg = np.asarray(labels, dtype=np.int16)[index]
    mapped = labels_to_classes(seg, release)
    assert mapped.dtype == np.uint8
    assert mapped.shape == seg.shape
    np.testing.assert_array_equal(mapped, np.asarray(classes)[index])
    back = classes_to_labels(mapped, release)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, seg)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64])
def test_labels_accept_integer_and_whole_float_dtypes(dtype):
    seg = np.array([[0, 4], [2, 1]], dtype=dtype)
    np.testing.assert_array_equal(labels_to_classes(seg), [[0, 3], [2, 1]])


@pytest.mark.parametrize(
    ("release", "seg", "match"),
    [
        (LEGACY, np.array([0, 3], np.uint8), r"labels \[3\] are not valid for release 'legacy'"),
        (GLI2023, np.array([0, 4], np.uint8), r"labels \[4\] are not valid"),
        (LEGACY, np.array([0, -1], np.int16), r"labels \[-1\]"),
        (LEGACY, np.array([0, 256], np.int16), r"labels \[256\]"),
        (LEGACY, np.array([0.0, 1.5], np.float32), "non-integer values"),
        (LEGACY, np.array([0.0, np.nan], np.float32), "NaN/inf"),
        (LEGACY, np.array(["0", "1"]), "must hold integers"),
    ],
)
def test_invalid_labels_raise(release, seg, match):
    with pytest.raises(ValueError, match=match):
        labels_to_classes(seg, release)


@pytest.mark.parametrize("classes", [np.array([0, 4]), np.array([-1, 0]), np.array([0.0, 2.5])])
def test_invalid_classes_raise(classes):
    with pytest.raises(ValueError):
        classes_to_labels(classes)


def test_empty_arrays_map_to_empty_arrays():
    assert labels_to_classes(np.zeros((0, 3), np.uint8)).shape == (0, 3)
    assert classes_to_labels(np.zeros((0,), np.uint8), GLI2023).shape == (0,)


def test_channel_indices_in_modality_order():
    from brats_utils.conventions import channel_indices

    assert channel_indices(["flair", "t1ce"]) == [3, 1]
    assert channel_indices(MODALITIES) == [0, 1, 2, 3]
    for bad, message in (("flair", "non-empty list"), ([], "non-empty list"), (["pd"], "unknown")):
        with pytest.raises(ValueError, match=message):
            channel_indices(bad)
