"""Synthetic BraTS-like cases: geometry, determinism, variety, contrast, calibration, CLI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from helpers import ml_frameworks_loaded_by

from brats_utils.cli.main import main
from brats_utils.conventions import LEGACY, MODALITIES, VOLUME_SHAPE, labels_to_classes
from brats_utils.data.synth import (
    REAL_LABEL_RATIOS,
    case_id_for,
    case_is_complete,
    csf_intensity_ratios,
    generate_case,
    label_intensity_ratios,
    write_case,
    write_synthetic_dataset,
)
from brats_utils.data.synth_anatomy import GREY_MATTER, WHITE_MATTER

SMALL = (64, 64, 40)
MEDIUM = (120, 120, 78)
KINDS = (*MODALITIES, "seg")
T1, T1CE, T2, FLAIR = (MODALITIES.index(m) for m in ("t1", "t1ce", "t2", "flair"))
NCR, ED, ET = 0, 1, 2  # columns of label_intensity_ratios


@pytest.fixture(scope="module")
def medium_cases():
    """Six half-resolution cases of seed 0 (contrast and calibration checks)."""
    return [generate_case(0, index, MEDIUM) for index in range(6)]


def _read(path):
    image = nib.load(str(path))
    return np.asanyarray(image.dataobj), image


def test_case_id_for_formats_five_digits_and_rejects_out_of_range():
    assert case_id_for(42) == "BraTS2021_00042"
    assert case_id_for(12345) == "BraTS2021_12345"
    with pytest.raises(ValueError, match="0..99999"):
        case_id_for(100000)


def test_generate_case_small_shape_dtypes_and_brain():
    case = generate_case(0, 1, SMALL)
    assert case.case_id == "BraTS2021_00001"
    assert case.image.shape == (*SMALL, 4) and case.image.dtype == np.int16
    assert case.classes.shape == SMALL and case.classes.dtype == np.uint8
    assert set(np.unique(case.classes)) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(np.diag(case.affine), [-1.0, -1.0, 1.0, 1.0])
    assert case.affine[1, 3] == SMALL[1] - 1
    brain = case.image != 0
    # every modality is nonzero on the same brain mask, zero on the volume border
    assert (brain == brain[..., :1]).all()
    assert not brain[0].any() and not brain[-1].any()
    assert 0.1 < brain[..., 0].mean() < 0.3  # real BraTS: about 0.16
    # the tumour lies inside the brain
    assert brain[..., 0][case.classes > 0].all()
    assert (case.classes > 0).sum() > 100


def test_generate_case_rejects_bad_shape():
    with pytest.raises(ValueError, match="at least 16"):
        generate_case(0, 0, (64, 8, 40))


def test_same_seed_and_index_give_identical_arrays():
    a, b = generate_case(3, 2, SMALL), generate_case(3, 2, SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.classes, b.classes)


def test_different_seeds_and_indices_differ():
    base = generate_case(0, 2, SMALL)
    for other in (generate_case(1, 2, SMALL), generate_case(0, 3, SMALL)):
        assert not np.array_equal(base.image, other.image)
        assert not np.array_equal(base.classes, other.classes)


def test_case_is_identical_whatever_the_number_of_cases(tmp_path):
    four = write_synthetic_dataset(tmp_path / "four", 4, seed=5, shape=SMALL, progress=False)
    six = write_synthetic_dataset(tmp_path / "six", 6, seed=5, shape=SMALL, progress=False)
    assert [p.name for p in four] == [case_id_for(i) for i in range(4)]
    assert len(six) == 6
    for kind in KINDS:
        name = LEGACY.file_name(case_id_for(3), kind)
        a, _ = _read(four[3] / name)
        b, _ = _read(six[3] / name)
        np.testing.assert_array_equal(a, b)


def test_workers_give_the_same_cases(tmp_path):
    serial = write_synthetic_dataset(tmp_path / "a", 2, seed=2, shape=SMALL, progress=False)
    pooled = write_synthetic_dataset(
        tmp_path / "b", 2, seed=2, shape=SMALL, progress=False, workers=2
    )
    for folder_a, folder_b in zip(serial, pooled, strict=True):
        name = LEGACY.file_name(folder_a.name, "flair")
        np.testing.assert_array_equal(_read(folder_a / name)[0], _read(folder_b / name)[0])


def test_tumours_vary_in_size_position_and_composition():
    cases = [generate_case(0, index, SMALL) for index in range(8)]
    whole = np.array([(c.classes > 0).sum() for c in cases])
    centres = np.array([np.argwhere(c.classes > 0).mean(axis=0) for c in cases])
    brain_centre_x = np.mean([np.argwhere(c.image[..., 0] > 0)[:, 0].mean() for c in cases])
    assert whole.max() > 2.5 * whole.min()
    assert centres.std(axis=0).min() > 2.0  # voxels of a 64 x 64 x 40 volume
    sides = np.sign(centres[:, 0] - brain_centre_x)
    assert {-1.0, 1.0} <= set(sides.tolist())  # both hemispheres
    complete = [set(np.unique(c.classes)) == {0, 1, 2, 3} for c in cases]
    assert sum(complete) >= 4  # most have necrosis, enhancement and edema


def test_contrast_ordering_per_modality(medium_cases):
    ratios = np.nanmean([label_intensity_ratios(c.image, c.classes) for c in medium_cases], 0)
    csf = np.mean([csf_intensity_ratios(c.image, c.classes) for c in medium_cases], axis=0)
    # edema bright on FLAIR and T2
    assert ratios[FLAIR, ED] > 1.3 and ratios[T2, ED] > 1.1
    # enhancing rim brightest on T1ce, necrosis dark on T1 and T1ce
    assert ratios[T1CE, ET] > 1.2 * max(ratios[T1CE, ED], ratios[T1CE, NCR], 1.0)
    assert ratios[T1, NCR] < 0.95 and ratios[T1CE, NCR] < 0.95
    assert ratios[T2, NCR] > ratios[T2, ED]
    # CSF dark on T1 and FLAIR, bright on T2
    assert csf[T1] < 0.8 and csf[FLAIR] < 0.8 and csf[T2] > 1.8
    # white matter brighter than grey matter on T1, darker on T2 and FLAIR
    for case in medium_cases:
        normal = case.classes == 0
        wm, gm = normal & (case.tissue == WHITE_MATTER), normal & (case.tissue == GREY_MATTER)
        mean = {m: (case.image[..., m][wm].mean(), case.image[..., m][gm].mean()) for m in (T1, T2)}
        assert mean[T1][0] > 1.15 * mean[T1][1], case.case_id
        assert mean[T2][0] < mean[T2][1], case.case_id


def test_label_ratios_match_real_calibration_within_25_percent(medium_cases):
    ratios = np.nanmean([label_intensity_ratios(c.image, c.classes) for c in medium_cases], 0)
    target = np.array([REAL_LABEL_RATIOS[m] for m in MODALITIES])
    relative = ratios / target - 1.0
    assert np.isfinite(relative).all()
    bad = {
        (MODALITIES[r], ("NCR", "ED", "ET")[c]): round(float(relative[r, c]), 3)
        for r, c in np.argwhere(np.abs(relative) > 0.25)
    }
    assert not bad, f"synthetic/real ratio off by more than 25%: {bad}"


def test_label_intensity_ratios_on_a_hand_made_volume():
    image = np.zeros((4, 1, 1, 4), dtype=np.int16)
    image[:, 0, 0, :] = [[10, 10, 10, 10], [10, 10, 10, 10], [5, 20, 30, 40], [0, 0, 0, 0]]
    classes = np.array([0, 0, 1, 0], dtype=np.uint8).reshape(4, 1, 1)
    ratios = label_intensity_ratios(image, classes)
    np.testing.assert_allclose(ratios[:, 0], [0.5, 2.0, 3.0, 4.0])
    assert np.isnan(ratios[:, 1:]).all()
    with pytest.raises(ValueError, match="matching classes"):
        label_intensity_ratios(image[..., :3], classes)


@pytest.mark.slow
@pytest.mark.real_data
def test_stored_targets_match_the_real_sample(real_sample_dir):
    from brats_utils.data.cases import discover_cases, load_case

    ratios = []
    for files in discover_cases(real_sample_dir):
        case = load_case(files, require_seg=True)
        ratios.append(label_intensity_ratios(case.image, case.seg))
    measured = np.nanmean(ratios, axis=0)
    target = np.array([REAL_LABEL_RATIOS[m] for m in MODALITIES])
    np.testing.assert_allclose(target, measured, atol=0.002)


@pytest.mark.slow
def test_full_size_files_on_disk(tmp_path):
    write_synthetic_dataset(tmp_path, n_cases=1, seed=0, start=3, progress=False)
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name for p in folders] == [case_id_for(3)]  # case 3 has every label
    labels_seen: set[int] = set()
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            LEGACY.file_name(folder.name, kind) for kind in KINDS
        )
        for kind in KINDS:
            image = nib.load(str(folder / LEGACY.file_name(folder.name, kind)))  # header only
            assert image.shape == VOLUME_SHAPE
            assert image.get_data_dtype() == (np.uint8 if kind == "seg" else np.int16)
            np.testing.assert_array_equal(np.diag(image.affine), [-1.0, -1.0, 1.0, 1.0])
            assert image.affine[1, 3] == 239.0
            assert image.header.get_zooms() == (1.0, 1.0, 1.0)
            assert image.header.get_xyzt_units()[0] == "mm"
        seg, _ = _read(folder / LEGACY.file_name(folder.name, "seg"))
        assert set(np.unique(seg).tolist()) <= {0, 1, 2, 4}
        labels_seen |= set(np.unique(seg).tolist())
    assert labels_seen == {0, 1, 2, 4}
    # what is on disk is exactly what generate_case returns
    case = generate_case(0, 3)
    seg, _ = _read(folders[0] / LEGACY.file_name(case.case_id, "seg"))
    np.testing.assert_array_equal(labels_to_classes(seg, LEGACY), case.classes)
    t1ce, _ = _read(folders[0] / LEGACY.file_name(case.case_id, "t1ce"))
    np.testing.assert_array_equal(t1ce, case.image[..., T1CE])
    assert t1ce.min() == 0 and t1ce.max() > 0


def test_write_case_leaves_no_temporary_files(tmp_path):
    folder = write_case(generate_case(0, 0, SMALL), tmp_path)
    assert folder == tmp_path / "BraTS2021_00000"
    assert case_is_complete("BraTS2021_00000", tmp_path)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_cli_writes_readable_cases_and_skips_complete_ones(tmp_path, capsys):
    from brats_utils.data.cases import discover_cases, load_case

    out = tmp_path / "data"
    argv = ["synth", "--out", str(out), "--cases", "2", "--seed", "4", "--no-progress"]
    argv += ["--shape", *map(str, SMALL)]
    assert main(argv) == 0
    found = discover_cases(out)
    assert [f.case_id for f in found] == [case_id_for(0), case_id_for(1)]
    case = load_case(found[1], require_seg=True, expected_shape=SMALL)
    np.testing.assert_array_equal(case.seg, generate_case(4, 1, SMALL).classes)

    flair = out / case_id_for(0) / LEGACY.file_name(case_id_for(0), "flair")
    seg1 = out / case_id_for(1) / LEGACY.file_name(case_id_for(1), "seg")
    before = flair.stat().st_mtime_ns
    seg1.unlink()  # an incomplete case is written again
    assert main(argv) == 0
    assert flair.stat().st_mtime_ns == before
    assert seg1.is_file()
    assert main([*argv, "--overwrite"]) == 0
    assert flair.stat().st_mtime_ns != before
    assert "2 synthetic cases" in capsys.readouterr().out


def test_cli_user_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:  # refused by argparse
        main(["synth", "--out", str(tmp_path), "--cases", "0"])
    assert exited.value.code == 2
    assert "--cases: expected a positive integer, got '0'" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "file"), "--cases", "1"]) == 2
    assert "folder" in capsys.readouterr().err


def test_synth_modules_do_not_import_keras():
    assert ml_frameworks_loaded_by("brats_utils.data.synth", "brats_utils.cli.synth") == []


def test_cases_drawn_with_another_seed_or_shape_are_never_kept_silently(tmp_path, capsys):
    from brats_utils.cli.main import main

    out = tmp_path / "data"
    args = ["synth", "--out", str(out), "--cases", "1", "--shape", "32", "32", "24"]
    assert main([*args, "--no-progress"]) == 0
    assert "1 synthetic cases written, 0 already there (seed 0" in capsys.readouterr().out
    assert main([*args, "--no-progress"]) == 0
    assert "0 synthetic cases written, 1 already there" in capsys.readouterr().out
    before = (out / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz").read_bytes()
    assert main([*args, "--seed", "1", "--no-progress"]) == 2
    assert "drawn with seed 0 and shape (32, 32, 24), not seed 1" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), "--cases", "1", "--shape", "32", "32", "20"]) == 2
    assert (out / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz").read_bytes() == before
    assert main([*args, "--seed", "1", "--overwrite", "--no-progress"]) == 0
    assert (out / "BraTS2021_00000" / "BraTS2021_00000_seg.nii.gz").read_bytes() != before
    assert main([*args, "--seed", "1", "--no-progress"]) == 0  # the new recipe is recorded


def test_a_killed_runs_temporaries_are_removed_from_the_cases_written_again(tmp_path):
    out = tmp_path / "data"
    stale = out / "BraTS2021_00000" / ".BraTS2021_00000_t1.nii.gz.x1y2.tmp.nii.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half-written by a killed run")
    write_synthetic_dataset(out, 1, seed=0, shape=(32, 32, 24), progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == sorted(
        f"BraTS2021_00000_{k}.nii.gz" for k in ("flair", "seg", "t1", "t1ce", "t2")
    )
