"""NIfTI reading/writing: round trips, atomic writes, and every kind of broken file."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from brats_utils.data.nifti import read_nifti, read_nifti_header, write_nifti
from brats_utils.errors import CaseError
from brats_utils.files import atomic_path

AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1]])


def _volume(dtype=np.int16, seed=0):
    return np.random.default_rng(seed).integers(0, 500, size=(7, 6, 5)).astype(dtype)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_write_then_read_keeps_voxels_dtype_and_affine(tmp_path, ext, dtype):
    data = _volume(dtype)
    path = write_nifti(tmp_path / f"case_t1{ext}", data, AFFINE)
    read, image = read_nifti(path, "case")
    assert read.dtype == dtype
    np.testing.assert_array_equal(read, data)
    np.testing.assert_allclose(image.affine, AFFINE)
    assert sorted(os.listdir(tmp_path)) == [f"case_t1{ext}"]  # no temporary left behind


def test_write_with_a_source_header_stores_the_new_dtype_unscaled(tmp_path):
    source = nib.Nifti1Image(_volume(np.int16), AFFINE)
    source.header.set_slope_inter(2.0, 1.0)
    path = write_nifti(tmp_path / "pred.nii.gz", _volume(np.uint8) % 5, AFFINE, source.header)
    image = nib.load(path)
    assert image.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(image.dataobj), _volume(np.uint8) % 5)


def test_written_files_follow_the_umask_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_nifti(tmp_path / "a.nii.gz", _volume(), AFFINE)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_path_leaves_the_destination_alone_when_the_block_fails(tmp_path):
    target = tmp_path / "split.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".csv") as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["split.csv"]


def test_missing_file_names_case_and_path(tmp_path):
    path = tmp_path / "BraTS2021_00042_t2.nii.gz"
    with pytest.raises(CaseError, match="BraTS2021_00042: file not found") as info:
        read_nifti(path, "BraTS2021_00042")
    assert str(path) in str(info.value)
    assert info.value.case_id == "BraTS2021_00042"
    with pytest.raises(CaseError, match="file not found"):
        read_nifti_header(path, "BraTS2021_00042")


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_a_file_that_is_not_nifti_raises(tmp_path, ext):
    path = tmp_path / f"a{ext}"
    payload = b"not a NIfTI file at all" * 30
    path.write_bytes(gzip.compress(payload) if ext == ".nii.gz" else payload)
    with pytest.raises(CaseError, match="not a readable NIfTI"):
        read_nifti(path, "c")


@pytest.mark.parametrize("keep", [0.5, 0.95])
@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_truncated_files_raise(tmp_path, ext, keep):
    path = write_nifti(tmp_path / f"a{ext}", _volume(np.float32), AFFINE)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(CaseError, match="truncated or corrupt"):
        read_nifti(path, "c")


def test_gzip_cut_in_its_trailer_or_with_a_bad_checksum_raises(tmp_path):
    """nibabel alone reads these silently: the voxels decompress before the trailer."""
    path = write_nifti(tmp_path / "a.nii.gz", _volume(np.float32), AFFINE)
    raw = path.read_bytes()
    path.write_bytes(raw[:-4])  # the 4-byte length field is gone
    with pytest.raises(CaseError, match="truncated or corrupt gzip"):
        read_nifti(path, "c")
    bad_crc = bytearray(raw)
    bad_crc[-8] ^= 0xFF  # first byte of the CRC32
    path.write_bytes(bytes(bad_crc))
    with pytest.raises(CaseError, match="truncated or corrupt gzip"):
        read_nifti(path, "c")
