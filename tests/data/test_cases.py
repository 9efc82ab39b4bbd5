"""Discovering, validating and loading cases, on tiny NIfTI volumes written to tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import case_files

from brats_utils.conventions import GLI2023, LEGACY, MODALITIES, VOLUME_SHAPE
from brats_utils.data.cases import discover_cases, find_case, load_case, read_case_volumes
from brats_utils.data.validation import (
    Problem,
    has_errors,
    validate_case,
    validate_cases,
)
from brats_utils.errors import BratsError, CaseError

SHAPE = (6, 5, 4)
AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])


def save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def write_case(
    root: Path,
    case_id: str = "BraTS2021_00001",
    *,
    release=LEGACY,
    ext: str = ".nii.gz",
    seg: bool = True,
    skip: tuple[str, ...] = (),
    seed: int = 0,
) -> Path:
    """A tiny case folder: random positive int16 modalities and a uint8 segmentation."""
    rng = np.random.default_rng(seed)
    folder = root / case_id
    folder.mkdir(parents=True)
    for kind in MODALITIES:
        if kind not in skip:
            data = rng.integers(1, 1000, size=SHAPE).astype(np.int16)
            save(folder / release.file_name(case_id, kind, ext), data)
    if seg:
        labels = np.asarray(release.labels, np.uint8)[rng.integers(0, 4, size=SHAPE)]
        save(folder / release.file_name(case_id, "seg", ext), labels)
    return folder


def problems_of(folder: Path, **kwargs) -> list[Problem]:
    (files,) = discover_cases(folder)
    return validate_case(files, expected_shape=kwargs.pop("expected_shape", None), **kwargs)


def messages(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems]


# --- discovery ---------------------------------------------------------------------------


def test_discovers_brats2021_cases_sorted_with_every_file(tmp_path):
    write_case(tmp_path, "BraTS2021_00002")
    write_case(tmp_path, "BraTS2021_00000", seg=False)
    cases = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == ["BraTS2021_00000", "BraTS2021_00002"]
    first, second = cases
    assert first.release is LEGACY and first.seg is None
    assert tuple(second.modalities) == MODALITIES
    assert second.modalities["t1ce"] == tmp_path / "BraTS2021_00002/BraTS2021_00002_t1ce.nii.gz"
    assert second.seg == tmp_path / "BraTS2021_00002/BraTS2021_00002_seg.nii.gz"
    assert second.extra == ()


def test_what_looks_like_a_case_but_cannot_be_read_is_returned_with_its_problem(tmp_path):
    """A leaf folder of NIfTI files named for no case (another case's files), a broken link."""
    write_case(tmp_path, "BraTS2021_00000")
    write_case(tmp_path / "renamed", "BraTS2021_00003")
    (tmp_path / "renamed" / "BraTS2021_00003").rename(tmp_path / "BraTS2021_00005")
    (tmp_path / "notes").mkdir()  # no NIfTI file: not a case
    (tmp_path / "notes" / "readme.txt").write_text("notes\n")
    (tmp_path / "BraTS2021_00009").symlink_to(tmp_path / "gone")
    cases = discover_cases(tmp_path)
    problems = {c.case_id: c.problem for c in cases}
    assert problems == {
        "BraTS2021_00000": None,
        "BraTS2021_00005": "no file named like BraTS2021_00005_flair.nii.gz (found "
        "BraTS2021_00003_flair.nii.gz, BraTS2021_00003_seg.nii.gz, BraTS2021_00003_t1.nii.gz)",
        "BraTS2021_00009": f"broken link to {tmp_path / 'gone'}",
    }
    real_scandir = os.scandir

    def scandir(path):  # what root cannot be refused: a folder it may not list
        if Path(path).name == "BraTS2021_00000":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        unlisted = discover_cases(tmp_path)[0]
    assert unlisted.problem == "cannot list the folder: Permission denied"
    with pytest.raises(CaseError, match="BraTS2021_00009: broken link"):
        read_case_volumes(cases[-1])
    assert [p.message for p in validate_case(cases[1])] == [problems["BraTS2021_00005"]]


def test_discovers_2018_cases_in_hgg_lgg_subfolders_and_2020_names(tmp_path):
    write_case(tmp_path / "HGG", "Brats18_TCIA01_201_1")
    write_case(tmp_path / "LGG", "Brats18_2013_0_1", ext=".nii")
    write_case(tmp_path / "MICCAI_BraTS2020", "BraTS20_Training_001")
    cases = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == [
        "BraTS20_Training_001",
        "Brats18_2013_0_1",
        "Brats18_TCIA01_201_1",
    ]
    assert cases[1].modalities["flair"].name == "Brats18_2013_0_1_flair.nii"
    assert cases[1].folder == tmp_path / "LGG" / "Brats18_2013_0_1"


def test_discovers_2023_gli_cases_with_their_suffixes(tmp_path):
    write_case(tmp_path, "BraTS-GLI-00000-000", release=GLI2023)
    (case,) = discover_cases(tmp_path)
    assert case.release is GLI2023
    assert case.modalities["flair"].name == "BraTS-GLI-00000-000-t2f.nii.gz"
    assert case.modalities["t1"].name == "BraTS-GLI-00000-000-t1n.nii.gz"
    assert case.seg.name == "BraTS-GLI-00000-000-seg.nii.gz"


def test_root_may_be_a_case_folder_and_incomplete_cases_are_discovered(tmp_path):
    folder = write_case(tmp_path, "BraTS2021_00007", skip=("t2",))
    (case,) = discover_cases(folder)
    assert case.case_id == "BraTS2021_00007"
    assert case.modalities["t2"] is None and case.modalities["t1"] is not None


def test_misnamed_and_duplicate_files_are_kept_as_extra(tmp_path):
    folder = write_case(tmp_path, "BraTS20_Training_355", seg=False)
    save(folder / "W39_1998.09.19_Segm.nii", np.zeros(SHAPE, np.uint8))
    save(folder / "BraTS20_Training_355_t1.nii", np.ones(SHAPE, np.int16))
    save(folder / ".BraTS20_Training_355_t2.nii.gz.x1.tmp.nii.gz", np.ones(SHAPE, np.int16))
    (case,) = discover_cases(tmp_path)
    assert case.modalities["t1"].name.endswith(".nii.gz")  # the compressed file wins
    assert [p.name for p in case.extra] == [
        "BraTS20_Training_355_t1.nii",
        "W39_1998.09.19_Segm.nii",
    ]


def test_missing_root_and_duplicate_case_ids_raise(tmp_path):
    with pytest.raises(BratsError, match="data folder not found"):
        discover_cases(tmp_path / "nowhere")
    assert discover_cases(tmp_path) == []
    write_case(tmp_path / "a", "BraTS2021_00001")
    write_case(tmp_path / "b", "BraTS2021_00001")
    with pytest.raises(BratsError, match="BraTS2021_00001 found twice"):
        discover_cases(tmp_path)


def test_find_case(tmp_path):
    write_case(tmp_path / "HGG", "Brats18_2013_2_1")
    assert find_case(tmp_path, "Brats18_2013_2_1").folder == tmp_path / "HGG" / "Brats18_2013_2_1"
    with pytest.raises(CaseError, match="Brats18_2013_9_1: no case folder"):
        find_case(tmp_path, "Brats18_2013_9_1")


# --- validation --------------------------------------------------------------------------


def test_a_clean_case_has_no_problem_and_missing_seg_is_fine_unless_required(tmp_path):
    folder = write_case(tmp_path, seg=False)
    assert problems_of(folder) == []
    (problem,) = problems_of(folder, require_seg=True)
    assert problem.message == "seg file missing (expected BraTS2021_00001_seg.nii.gz)"


def test_missing_modality_is_reported_with_the_expected_name(tmp_path):
    folder = write_case(tmp_path, skip=("t1ce",))
    (problem,) = problems_of(folder)
    assert str(problem) == (
        f"BraTS2021_00001: t1ce file missing (expected BraTS2021_00001_t1ce.nii.gz) ({folder})"
    )
    assert has_errors([problem])


def test_truncated_gzip_is_reported(tmp_path):
    folder = write_case(tmp_path)
    path = folder / "BraTS2021_00001_t2.nii.gz"
    path.write_bytes(path.read_bytes()[:-6])
    (problem,) = problems_of(folder)
    assert problem.path == path
    assert problem.message.startswith("t2: truncated or corrupt gzip")


def test_shape_mismatch_between_modalities_and_against_expected_shape(tmp_path):
    folder = write_case(tmp_path)
    path = save(folder / "BraTS2021_00001_t2.nii.gz", np.ones((6, 5, 3), np.int16))
    (problem,) = problems_of(folder)
    assert problem.message == "t2 has shape (6, 5, 3), expected (6, 5, 4) like t1"
    assert problem.path == path
    tiny = problems_of(folder, expected_shape=VOLUME_SHAPE)
    assert len(tiny) == 5  # every file differs from (240, 240, 155)
    assert tiny[0].message == "t1 has shape (6, 5, 4), expected (240, 240, 155)"


def test_affine_mismatch_is_reported(tmp_path):
    folder = write_case(tmp_path)
    shifted = AFFINE.copy()
    shifted[0, 3] = 2.0
    save(folder / "BraTS2021_00001_flair.nii.gz", np.ones(SHAPE, np.int16), shifted)
    (problem,) = problems_of(folder)
    assert problem.message == "flair affine differs from t1's by up to 2 mm"


@pytest.mark.parametrize(
    ("release", "case_id", "labels", "dtype", "expected"),
    [
        (LEGACY, "BraTS2021_00001", [0, 1, 3], np.uint8, "labels [3] are not valid"),
        (GLI2023, "BraTS-GLI-00001-000", [0, 1, 4], np.uint8, "labels [4] are not valid"),
        (LEGACY, "BraTS2021_00001", [0, 1.5, 4], np.float32, "non-integer values"),
        (LEGACY, "BraTS2021_00001", [0, 2, 4], np.int16, None),
        (LEGACY, "BraTS2021_00001", [0, 2, 4], np.float32, None),
    ],
)
def test_segmentation_labels_are_checked(tmp_path, release, case_id, labels, dtype, expected):
    folder = write_case(tmp_path, case_id, release=release)
    seg = np.asarray(labels, dtype)[np.arange(np.prod(SHAPE)).reshape(SHAPE) % len(labels)]
    save(folder / release.file_name(case_id, "seg"), seg)
    found = messages(problems_of(folder))
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith("seg: ") and expected in found[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_intensities_are_reported(tmp_path, bad):
    folder = write_case(tmp_path)
    data = np.ones(SHAPE, np.float32)
    data[0, 0, :2] = bad
    save(folder / "BraTS2021_00001_t1.nii.gz", data)
    assert messages(problems_of(folder)) == ["t1 has 2 NaN or infinite voxels"]


def test_an_all_zero_modality_is_reported(tmp_path):
    folder = write_case(tmp_path)
    save(folder / "BraTS2021_00001_t1ce.nii.gz", np.zeros(SHAPE, np.int16))
    assert messages(problems_of(folder)) == ["t1ce is all zeros"]


def test_stray_nifti_is_a_warning_only_when_the_segmentation_is_missing(tmp_path):
    folder = write_case(tmp_path, "BraTS20_Training_355", seg=False)
    stray = save(folder / "W39_1998.09.19_Segm.nii", np.zeros(SHAPE, np.uint8))
    (problem,) = problems_of(folder)
    assert problem.warning and problem.path == stray
    assert "misnamed segmentation" in problem.message
    assert not has_errors([problem])
    save(folder / "BraTS20_Training_355_seg.nii.gz", np.zeros(SHAPE, np.uint8))
    assert problems_of(folder) == []


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    folder = write_case(tmp_path, skip=("t1",))
    save(folder / "BraTS2021_00001_t2.nii.gz", np.zeros(SHAPE, np.int16))
    save(folder / "BraTS2021_00001_seg.nii.gz", np.full(SHAPE, 7, np.uint8))
    path = folder / "BraTS2021_00001_flair.nii.gz"
    path.write_bytes(path.read_bytes()[:40])
    found = messages(problems_of(folder, require_seg=True))
    assert len(found) == 4
    assert found[0].startswith("t1 file missing")
    assert found[1] == "t2 is all zeros"
    assert found[2].startswith("flair: ")
    assert found[3].startswith("seg: labels [7]")


def test_serial_and_parallel_validation_agree(tmp_path):
    write_case(tmp_path, "BraTS2021_00001")
    write_case(tmp_path, "BraTS2021_00002", skip=("flair",))
    write_case(tmp_path, "BraTS2021_00003", seg=False)
    cases = discover_cases(tmp_path)
    serial = validate_cases(cases, expected_shape=None, require_seg=True)
    report = {files.case_id: problems for files, problems in serial}
    assert list(report) == ["BraTS2021_00001", "BraTS2021_00002", "BraTS2021_00003"]
    assert [has_errors(p) for p in report.values()] == [False, True, True]
    parallel = validate_cases(cases, expected_shape=None, require_seg=True, workers=2)
    assert {files.case_id: problems for files, problems in parallel} == report


# --- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "case_id"), [(LEGACY, "BraTS2021_00001"), (GLI2023, "BraTS-GLI-00001-000")]
)
def test_load_case_returns_channels_in_modality_order_and_classes(tmp_path, release, case_id):
    folder = write_case(tmp_path, case_id, release=release, ext=".nii")
    case = load_case(case_files(folder), expected_shape=SHAPE)
    assert case.case_id == case_id and case.release is release
    assert case.image.shape == (*SHAPE, 4) and case.image.dtype == np.float32
    for channel, modality in enumerate(MODALITIES):
        on_disk = np.asanyarray(
            nib.load(folder / release.file_name(case_id, modality, ".nii")).dataobj
        )
        np.testing.assert_array_equal(case.image[..., channel], on_disk)
    labels = np.asanyarray(nib.load(folder / release.file_name(case_id, "seg", ".nii")).dataobj)
    assert case.seg.dtype == np.uint8 and case.seg.shape == SHAPE
    np.testing.assert_array_equal(case.seg, np.searchsorted(release.labels, labels))
    assert set(np.unique(case.seg)) == {0, 1, 2, 3}
    np.testing.assert_allclose(case.affine, AFFINE)
    assert case.header.get_data_shape() == SHAPE


def test_load_case_converts_int16_and_float_segmentations_exactly(tmp_path):
    folder = write_case(tmp_path)
    seg = np.zeros(SHAPE, np.float64)
    seg[0], seg[1], seg[2] = 4.0, 2.0, 1.0
    save(folder / "BraTS2021_00001_seg.nii.gz", seg)
    (files,) = discover_cases(tmp_path)
    loaded = load_case(files, expected_shape=None).seg
    np.testing.assert_array_equal(loaded[:3, 0, 0], [3, 2, 1])
    assert loaded.dtype == np.uint8 and loaded[3:].max() == 0


def test_load_case_without_segmentation(tmp_path):
    folder = write_case(tmp_path, seg=False)
    assert load_case(case_files(folder), expected_shape=None).seg is None
    with pytest.raises(CaseError, match="BraTS2021_00001: no segmentation file"):
        load_case(case_files(folder), expected_shape=None, require_seg=True)


def test_load_case_errors_name_case_and_problem(tmp_path):
    folder = write_case(tmp_path, skip=("t2",))
    with pytest.raises(CaseError, match=r"BraTS2021_00001: missing modality t2 \(Bra"):
        load_case(case_files(folder), expected_shape=None)
    save(folder / "BraTS2021_00001_t2.nii.gz", np.ones((6, 5, 3), np.int16))
    with pytest.raises(CaseError, match=r"t2 has shape \(6, 5, 3\), expected \(6, 5, 4\) like t1"):
        load_case(case_files(folder), expected_shape=None)
    with pytest.raises(CaseError, match=r"t1 has shape \(6, 5, 4\), expected \(240, 240, 155\)"):
        load_case(case_files(folder))  # the default expected shape is the BraTS volume
    save(folder / "BraTS2021_00001_t2.nii.gz", np.ones(SHAPE, np.int16))
    save(folder / "BraTS2021_00001_seg.nii.gz", np.full(SHAPE, 3, np.uint8))
    with pytest.raises(CaseError, match=r"seg: labels \[3\] are not valid"):
        load_case(case_files(folder), expected_shape=None)


def test_read_case_volumes_keeps_disk_dtype_and_load_case_converts_it(tmp_path):
    folder = write_case(tmp_path)
    (files,) = discover_cases(tmp_path)
    volumes = read_case_volumes(files, expected_shape=None)
    assert [v.dtype for v in volumes.channels] == [np.dtype(np.int16)] * len(MODALITIES)
    case = load_case(files, expected_shape=None)
    assert case.image.dtype == np.float32
    for channel, volume in enumerate(volumes.channels):
        np.testing.assert_array_equal(case.image[..., channel], volume)
    np.testing.assert_array_equal(case.seg, volumes.seg)
    np.testing.assert_array_equal(case.affine, volumes.image.affine)
    t1 = np.ones(SHAPE, np.float32)
    t1[0, 0, 0] = np.nan
    save(folder / "BraTS2021_00001_t1.nii.gz", t1)
    with pytest.raises(CaseError, match=r"BraTS2021_00001: t1 has NaN or infinite voxels \("):
        read_case_volumes(files, expected_shape=None)
    save(folder / "BraTS2021_00001_t1.nii.gz", np.ones((*SHAPE, 1), np.int16))
    with pytest.raises(
        CaseError, match=r"t1 has shape \(6, 5, 4, 1\), expected \(6, 5, 4\) like t1ce"
    ):
        load_case(files, expected_shape=None)  # even without an expected shape


# --- real data ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.real_data
def test_real_sample_cases_discover_validate_and_load(real_sample_dir):
    cases = discover_cases(real_sample_dir)
    assert len(cases) == 16
    assert all(c.release is LEGACY and c.seg is not None and not c.extra for c in cases)
    report = validate_cases(cases, require_seg=True, workers=2)
    assert {files.case_id: p for files, p in report if p} == {}
    for files in (cases[0], cases[7], cases[-1]):
        case = load_case(files, require_seg=True)
        assert case.image.shape == (*VOLUME_SHAPE, 4) and case.image.dtype == np.float32
        assert case.image.min() >= 0 and all(case.image[..., c].max() > 0 for c in range(4))
        assert case.seg.shape == VOLUME_SHAPE and case.seg.dtype == np.uint8
        assert set(np.unique(case.seg)) <= {0, 1, 2, 3} and case.seg.max() > 0


def test_a_synthetic_folder_says_the_shape_its_cases_must_have(tmp_path):
    """``brats synth --shape`` records the shape; reading expects it in place of BraTS's."""
    from brats_utils.data.synth import write_synthetic_dataset

    write_synthetic_dataset(tmp_path, 1, seed=0, shape=(32, 32, 24), progress=False)
    case = load_case(case_files(tmp_path / "BraTS2021_00000"))
    assert case.image.shape == (32, 32, 24, 4)
    (tmp_path / "synthetic.json").write_text('{"seed": 0, "shape": [32, 32, 25]}')
    with pytest.raises(CaseError, match=r"shape \(32, 32, 24\), expected \(32, 32, 25\)"):
        load_case(case_files(tmp_path / "BraTS2021_00000"))
    assert load_case(case_files(tmp_path / "BraTS2021_00000"), expected_shape=None).seg is not None
