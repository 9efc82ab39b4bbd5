"""Every command that reads cases applies the same checks as `brats check`, and names the odd
file (the one that differs from the others), not the first one read."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import case_files, write_tiny_case

from brats_utils.data.cases import read_case_volumes
from brats_utils.data.nifti import read_nifti, write_nifti
from brats_utils.data.validation import validate_case
from brats_utils.errors import CaseError


def _shift_t1(folder, mm: float = 5.0):
    path = next(folder.glob("*_t1.nii*"))
    data, image = read_nifti(path)
    affine = image.affine.copy()
    affine[0, 3] += mm
    write_nifti(path, data, affine)
    return path


def test_a_shifted_t1_is_named_by_check_and_refused_by_reading(tmp_path):
    folder = write_tiny_case(tmp_path, "Case_A")
    t1 = _shift_t1(folder)
    problems = validate_case(case_files(folder), expected_shape=None)
    assert [p.message for p in problems] == ["t1 affine differs from t1ce's by up to 5 mm"]
    assert problems[0].path == t1
    with pytest.raises(CaseError, match=r"Case_A: t1 affine differs from t1ce's by up to 5 mm"):
        read_case_volumes(case_files(folder), expected_shape=None)


def test_the_cache_builder_refuses_the_case_check_rejects(tmp_path):
    from brats_utils.preprocessing.cache_build import build_cache
    from brats_utils.preprocessing.settings import PreprocessSettings

    write_tiny_case(tmp_path / "data", "Case_A")
    _shift_t1(tmp_path / "data" / "Case_A")
    write_tiny_case(tmp_path / "data", "Case_B", seed=1)
    settings = PreprocessSettings(size=16, slice_start=2, slice_stop=10)
    report = build_cache(tmp_path / "data", tmp_path / "c", settings, progress=False,
                         expected_shape=None)  # fmt: skip
    assert report.done == ["Case_B"]
    assert [case for case, _ in report.failed] == ["Case_A"]
    assert "t1 affine differs from t1ce's by up to 5 mm" in report.failed[0][1]


def test_a_modality_with_fewer_slices_is_the_one_named(tmp_path):
    folder = write_tiny_case(tmp_path, "Case_Z")
    path = next(folder.glob("*_t1.nii*"))
    data, image = read_nifti(path)
    write_nifti(path, data[:, :, :-1], image.affine)
    messages = [p.message for p in validate_case(case_files(folder), expected_shape=None)]
    assert len(messages) == 1 and messages[0].startswith("t1 has shape")
    assert messages[0].endswith("like t1ce")
    with pytest.raises(CaseError, match=r"t1 has shape .* like t1ce"):
        read_case_volumes(case_files(folder), expected_shape=None)
    assert np.ndim(data) == 3
