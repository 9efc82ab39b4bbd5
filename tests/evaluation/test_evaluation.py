"""Tests of per-case BraTS metrics, HD95 and folder evaluation (``brats evaluate``)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from brats_utils.cli.main import main
from brats_utils.conventions import (
    GLI2023,
    HD95_MAX_MM,
    LEGACY,
    MODALITIES,
    REGIONS,
    classes_to_labels,
)
from brats_utils.data.nifti import write_nifti
from brats_utils.data.split import save_split
from brats_utils.data.synth import generate_case
from brats_utils.errors import CaseError
from brats_utils.evaluation.lesions import LESION_COLUMNS
from brats_utils.evaluation.surface import hd95, joint_bounding_box, mask_surface
from brats_utils.evaluation.volumes import (
    METRIC_COLUMNS,
    VOLUME_COLUMNS,
    dice,
    evaluate_case,
    evaluate_folder,
    failure_metrics,
    sensitivity,
    specificity,
    summarize,
)


def cube(shape, start, side):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + side) for s in start)] = True
    return mask


def brute_force_hd95(pred, ref, spacing, variant="pooled"):
    """HD95 from all pairwise distances between surface voxels, without cropping."""
    p = np.argwhere(mask_surface(pred)) * np.asarray(spacing)
    r = np.argwhere(mask_surface(ref)) * np.asarray(spacing)
    d = cdist(p, r)
    if variant == "max_directed":
        return float(max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95)))
    return float(np.percentile(np.concatenate([d.min(axis=1), d.min(axis=0)]), 95))


# ---------------------------------------------------------------- HD95 and surfaces


def test_mask_surface_of_cube_is_its_shell():
    mask = cube((12, 12, 12), (2, 2, 2), 5)
    surface = mask_surface(mask)
    assert surface.sum() == 5**3 - 3**3
    assert not surface[4, 4, 4]  # the centre is interior
    assert surface[2, 4, 4] and surface[6, 4, 4]


def test_surface_counts_array_border_as_surface():
    mask = np.ones((4, 4, 4), dtype=bool)
    assert mask_surface(mask).sum() == 4**3 - 2**3


@pytest.mark.parametrize("shift", [1, 2, 4])
def test_hd95_of_shifted_cubes_equals_shift_isotropic(shift):
    ref = cube((40, 40, 40), (10, 10, 10), 10)
    pred = cube((40, 40, 40), (10 + shift, 10, 10), 10)
    assert hd95(pred, ref, (1.0, 1.0, 1.0)) == pytest.approx(shift)
    assert hd95(ref, pred, (1.0, 1.0, 1.0)) == pytest.approx(shift)


def test_hd95_anisotropic_shift_along_z_is_in_mm():
    ref = cube((30, 30, 30), (8, 8, 8), 10)
    pred = cube((30, 30, 30), (8, 8, 10), 10)  # 2 voxels along z
    assert hd95(pred, ref, (1.0, 1.0, 2.5)) == pytest.approx(5.0)
    # the same shift along x is 2 mm with this spacing
    pred_x = cube((30, 30, 30), (10, 8, 8), 10)
    assert hd95(pred_x, ref, (1.0, 1.0, 2.5)) == pytest.approx(2.0)


def test_hd95_identical_masks_is_zero():
    ref = cube((20, 20, 20), (3, 4, 5), 6)
    assert hd95(ref, ref.copy(), (1.0, 1.0, 1.0)) == 0.0


def test_hd95_empty_mask_conventions():
    empty = np.zeros((10, 10, 10), dtype=bool)
    full = cube((10, 10, 10), (2, 2, 2), 3)
    assert hd95(empty, empty, (1, 1, 1)) == 0.0
    assert hd95(full, empty, (1, 1, 1)) == HD95_MAX_MM
    assert hd95(empty, full, (1, 1, 1)) == HD95_MAX_MM


@pytest.mark.parametrize("seed", range(4))
def test_hd95_matches_brute_force_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    shape = (24, 20, 16)
    pred = rng.random(shape) > 0.97
    ref = rng.random(shape) > 0.97
    pred[0, 5, 5] = True  # touches the array border: cropping must keep it surface
    spacing = (1.0, 0.8, 2.0)
    assert hd95(pred, ref, spacing) == pytest.approx(brute_force_hd95(pred, ref, spacing))
    directed = brute_force_hd95(pred, ref, spacing, "max_directed")
    assert hd95(pred, ref, spacing, "max_directed") == pytest.approx(directed)


def test_joint_bounding_box_clips_to_array():
    a = cube((10, 10, 10), (0, 3, 3), 2)
    b = cube((10, 10, 10), (5, 8, 3), 2)
    assert joint_bounding_box(a, b, margin=1) == (slice(0, 8), slice(2, 10), slice(2, 6))
    assert joint_bounding_box(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) is None


def test_hd95_rejects_bad_inputs():
    a = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="expected"):
        hd95(a, np.zeros((4, 4, 5), dtype=bool), (1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        hd95(a, a, (1, 1))
    with pytest.raises(ValueError, match="spacing"):
        hd95(a, a, (1, 0, 1))


# ---------------------------------------------------------------- binary metrics


def test_dice_sensitivity_specificity_hand_computed():
    ref = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    # tp 3, fp 1, fn 1, tn 5
    assert dice(pred, ref) == pytest.approx(6 / 8)
    assert sensitivity(pred, ref) == pytest.approx(3 / 4)
    assert specificity(pred, ref) == pytest.approx(5 / 6)


def test_dice_of_shifted_cubes():
    ref = cube((40, 40, 40), (10, 10, 10), 10)
    pred = cube((40, 40, 40), (12, 10, 10), 10)
    assert dice(pred, ref) == pytest.approx(2 * 800 / 2000)


def test_empty_mask_conventions_for_dice_sensitivity_specificity():
    empty = np.zeros(8, dtype=bool)
    some = np.array([1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    everything = np.ones(8, dtype=bool)
    assert dice(empty, empty) == 1.0
    assert dice(some, empty) == 0.0 and dice(empty, some) == 0.0
    assert sensitivity(empty, empty) == 1.0
    assert sensitivity(some, empty) == 0.0
    assert sensitivity(empty, some) == 0.0
    assert specificity(empty, empty) == 1.0
    assert specificity(some, empty) == pytest.approx(7 / 8)
    assert specificity(everything, everything) == 1.0  # no reference negative


# ---------------------------------------------------------------- evaluate_case


def two_region_case():
    ref = np.zeros((30, 30, 30), dtype=np.uint8)
    ref[5:15, 5:15, 5:15] = 2  # edema
    ref[8:12, 8:12, 8:12] = 3  # enhancing
    ref[9:11, 9:11, 9:11] = 1  # necrotic
    return ref


def test_evaluate_case_perfect_prediction():
    ref = two_region_case()
    result = evaluate_case(ref.copy(), ref, (1.0, 1.0, 1.0))
    assert list(result) == list(METRIC_COLUMNS[1:])
    for key, value in result.items():
        expected = 0.0 if key.startswith("hd95") else 1.0
        assert value == pytest.approx(expected), key


def test_evaluate_case_regions_and_labels():
    ref = two_region_case()
    pred = ref.copy()
    pred[pred == 1] = 3  # necrotic predicted as enhancing: WT, TC unchanged
    result = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert result["dice_WT"] == 1.0 and result["dice_TC"] == 1.0
    n_et, n_ncr = 4**3 - 2**3, 2**3
    assert result["dice_ET"] == pytest.approx(2 * n_et / (n_et + n_et + n_ncr))
    assert result["dice_NCR"] == 0.0  # reference NCR non-empty, predicted empty
    assert result["sensitivity_ET"] == 1.0
    # both ET masks have the same 56 surface voxels (the reference's is a hollow cube)
    assert result["hd95_ET"] == 0.0
    assert result["dice_ED"] == 1.0


def test_evaluate_case_absent_enhancing_tumour_both_empty():
    ref = two_region_case()
    ref[ref == 3] = 2
    pred = ref.copy()
    result = evaluate_case(pred, ref, (1, 1, 1))
    assert result["dice_ET"] == 1.0 and result["hd95_ET"] == 0.0
    assert result["sensitivity_ET"] == 1.0 and result["specificity_ET"] == 1.0
    pred[10, 10, 10] = 3  # one false-positive ET voxel
    result = evaluate_case(pred, ref, (1, 1, 1))
    assert result["dice_ET"] == 0.0 and result["hd95_ET"] == HD95_MAX_MM
    assert result["sensitivity_ET"] == 0.0


def test_evaluate_case_rejects_shape_and_class_errors():
    ref = two_region_case()
    with pytest.raises(ValueError, match="shape"):
        evaluate_case(ref[:-1], ref, (1, 1, 1))
    bad = ref.copy()
    bad[0, 0, 0] = 4
    with pytest.raises(ValueError, match="0..3"):
        evaluate_case(bad, ref, (1, 1, 1))


def test_failure_metrics_values():
    values = failure_metrics()
    assert list(values) == list(METRIC_COLUMNS[1:])
    assert values["dice_WT"] == 0.0 and values["dice_ED"] == 0.0
    assert values["hd95_ET"] == HD95_MAX_MM
    assert values["sensitivity_TC"] == 0.0 and values["specificity_TC"] == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_dice_and_specificity_are_the_plain_ratios(seed):
    rng = np.random.default_rng(seed)
    pred, ref = rng.random((9, 8, 7)) < seed / 10, rng.random((9, 8, 7)) < 0.3 * (seed % 2)
    tp, fp = int((pred & ref).sum()), int((pred & ~ref).sum())
    fn, tn = int((~pred & ref).sum()), int((~pred & ~ref).sum())
    assert dice(pred, ref) == (2.0 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    assert specificity(pred, ref) == (tn / (tn + fp) if tn + fp else 1.0)
    assert specificity(np.ones((2, 2), bool), np.ones((2, 2), bool)) == 1.0  # no negative


@pytest.mark.parametrize("seed", range(4))
def test_error_map_codes_each_voxel_by_its_masks(seed):
    from brats_utils.evaluation.failures import error_map

    rng = np.random.default_rng(seed)
    pred, ref = rng.integers(0, 4, (2, 9, 8, 7), dtype=np.uint8)
    maps = error_map(pred, ref)
    assert maps.dtype == np.uint8
    for channel, classes in enumerate(REGIONS.values()):
        p, r = np.isin(pred, classes), np.isin(ref, classes)
        expected = np.zeros(p.shape, np.uint8)
        expected[p & r], expected[p & ~r], expected[~p & r] = 1, 2, 3  # TP, FP, FN
        np.testing.assert_array_equal(maps[..., channel], expected)


def test_summarize_statistics():
    rows = [{"case": f"c{i}", **failure_metrics()} for i in range(4)]
    for i, row in enumerate(rows):
        row["dice_WT"] = float(i)  # 0, 1, 2, 3
    summary = summarize(pd.DataFrame(rows))
    assert summary.loc["dice_WT", "mean"] == pytest.approx(1.5)
    assert summary.loc["dice_WT", "median"] == pytest.approx(1.5)
    assert summary.loc["dice_WT", "q25"] == pytest.approx(0.75)
    assert summary.loc["dice_WT", "q75"] == pytest.approx(2.25)
    assert summary.loc["dice_WT", "std"] == pytest.approx(np.std([0, 1, 2, 3], ddof=1))
    assert list(summary.index) == list(METRIC_COLUMNS[1:])


@pytest.mark.parametrize("seed", range(3))
def test_summarize_is_the_plain_pandas_statistics(seed):
    rng = np.random.default_rng(seed)
    columns = [*METRIC_COLUMNS[1:], *LESION_COLUMNS]
    values = rng.random((int(rng.integers(1, 9)), len(columns)))
    values[rng.random(values.shape) < 0.2] = np.nan  # a column may even be all NaN
    df = pd.DataFrame(values, columns=columns)
    metrics = df.astype(float)
    expected = pd.DataFrame(
        {
            "mean": metrics.mean(),
            "std": metrics.std(ddof=1),
            "median": metrics.median(),
            "q25": metrics.quantile(0.25),
            "q75": metrics.quantile(0.75),
            "n": metrics.count(),
        }
    )
    actual = summarize(df.assign(case="c", status="ok"))
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


# ---------------------------------------------------------------- folders and the CLI

SHAPE = (24, 24, 16)


def write_reference(root, case_id, release=LEGACY, index=0, spacing=(1.0, 1.0, 1.0)):
    """A small synthetic case folder in ``release``'s naming; returns (folder, classes)."""
    case = generate_case(seed=5, index=index, shape=SHAPE)
    affine = np.diag([*spacing, 1.0])
    folder = root / case_id
    for c, modality in enumerate(MODALITIES):
        write_nifti(folder / release.file_name(case_id, modality), case.image[..., c], affine)
    labels = classes_to_labels(case.classes, release)
    write_nifti(folder / release.file_name(case_id, "seg"), labels, affine)
    return folder, case.classes


def write_prediction(pred_dir, case_id, classes, release=LEGACY, ext=".nii.gz", spacing=(1, 1, 1)):
    affine = np.diag([*map(float, spacing), 1.0])
    return write_nifti(pred_dir / f"{case_id}{ext}", classes_to_labels(classes, release), affine)


def test_reference_labels_as_prediction_score_perfectly(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    for i in range(2):
        case_id = f"BraTS2021_0000{i}"
        folder, classes = write_reference(ref, case_id, index=i)
        pred.mkdir(exist_ok=True)
        shutil.copy(folder / f"{case_id}_seg.nii.gz", pred / f"{case_id}.nii.gz")
        assert {2, 3} <= set(np.unique(classes).tolist())  # a tumour (NCR may be absent)
    df = evaluate_folder(pred, ref, progress=False)
    assert list(df["case"]) == ["BraTS2021_00000", "BraTS2021_00001"]
    assert (df["status"] == "ok").all()
    for column in METRIC_COLUMNS[1:]:
        expected = 0.0 if column.startswith("hd95") else 1.0
        np.testing.assert_allclose(df[column], expected, err_msg=column)
    for region in ("WT", "TC", "ET"):
        np.testing.assert_allclose(df[f"lesion_dice_{region}"], 1.0)
        np.testing.assert_allclose(df[f"lesion_hd95_{region}"], 0.0)
        assert (df[f"lesion_fp_{region}"] == 0).all() and (df[f"lesion_fn_{region}"] == 0).all()


def test_evaluate_folder_uses_header_spacing_and_2023_labels(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    spacing = (1.0, 1.0, 2.5)
    _, classes = write_reference(ref, "BraTS-GLI-00001-000", GLI2023, spacing=spacing)
    shifted = np.zeros_like(classes)
    shifted[:, :, 2:] = classes[:, :, :-2]  # two slices along z = 5 mm
    assert not classes[:, :, -2:].any()
    write_prediction(pred, "BraTS-GLI-00001-000", shifted, GLI2023, spacing=spacing)
    df = evaluate_folder(pred, ref, progress=False)
    row = df.iloc[0]
    expected = evaluate_case(shifted, classes, spacing)
    for column in METRIC_COLUMNS[1:]:
        assert row[column] == pytest.approx(expected[column]), column
    assert 0 < row["hd95_WT"] <= 5.0 and row["dice_WT"] < 1.0


def test_missing_and_extra_predictions_are_reported(tmp_path, capsys):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    _, classes = write_reference(ref, "BraTS2021_00000", index=0)
    write_reference(ref, "BraTS2021_00001", index=1)
    write_prediction(pred, "BraTS2021_00000", classes, ext=".nii")
    write_prediction(pred, "BraTS2021_00099", classes)
    df = evaluate_folder(pred, ref, progress=False)
    assert list(df["status"]) == ["ok", "missing"]
    missing = df.set_index("case").loc["BraTS2021_00001"]
    for column, value in failure_metrics().items():
        assert missing[column] == value, column
    assert missing["lesion_dice_WT"] == 0.0 and missing["lesion_hd95_WT"] == 374.0
    assert missing["lesion_tp_WT"] == 0 and missing["lesion_fn_WT"] >= 1
    assert df.attrs["missing"] == ["BraTS2021_00001"]
    assert df.attrs["extra"] == ["BraTS2021_00099"]
    err = capsys.readouterr().err
    assert "BraTS2021_00001: no prediction" in err and "BraTS2021_00099" in err
    assert summarize(df).loc["dice_WT", "mean"] == pytest.approx(0.5)


def test_prediction_with_wrong_labels_names_case_and_file(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    _, classes = write_reference(ref, "BraTS2021_00000")
    path = write_prediction(pred, "BraTS2021_00000", classes, GLI2023)  # ET as 3, not 4
    with pytest.raises(CaseError, match=r"BraTS2021_00000: prediction: labels \[3\]") as info:
        evaluate_folder(pred, ref, progress=False)
    assert str(path) in str(info.value)


def test_prediction_with_wrong_shape_or_fractions_is_refused(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    _, classes = write_reference(ref, "BraTS2021_00000")
    write_prediction(pred, "BraTS2021_00000", classes[:, :, :-1])
    with pytest.raises(CaseError, match=r"shape \(24, 24, 15\), expected \(24, 24, 16\)"):
        evaluate_folder(pred, ref, progress=False)
    write_nifti(pred / "BraTS2021_00000.nii.gz", classes * np.float32(0.5), np.eye(4))
    with pytest.raises(CaseError, match="non-integer"):
        evaluate_folder(pred, ref, progress=False)


def test_evaluate_cli_writes_exact_columns_and_summary(tmp_path, capsys):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    for i in range(3):
        _, classes = write_reference(ref, f"BraTS2021_0000{i}", index=i)
        if i < 2:
            write_prediction(pred, f"BraTS2021_0000{i}", classes)
    save_split(
        {"BraTS2021_00000": "train", "BraTS2021_00001": "test", "BraTS2021_00002": "train"},
        tmp_path / "split.csv",
    )
    out = tmp_path / "results" / "metrics.csv"
    args = ["evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(out)]
    assert main(args) == 1  # BraTS2021_00002 has no prediction
    df = pd.read_csv(out)
    expected_columns = (
        "case, dice_WT, dice_TC, dice_ET, hd95_WT, hd95_TC, hd95_ET, sensitivity_WT, "
        "sensitivity_TC, sensitivity_ET, specificity_WT, specificity_TC, specificity_ET, "
        "dice_NCR, dice_ED"
    ).split(", ")
    assert list(df.columns[: len(expected_columns)]) == expected_columns
    assert list(df.columns[len(expected_columns) :]) == [*LESION_COLUMNS, *VOLUME_COLUMNS, "status"]
    assert len(df) == 3
    summary = pd.read_csv(tmp_path / "results" / "metrics_summary.csv", index_col=0)
    assert list(summary.columns[:5]) == ["mean", "std", "median", "q25", "q75"]
    assert summary.loc["dice_WT", "mean"] == pytest.approx(2 / 3)
    assert "dice_WT" in capsys.readouterr().out

    assert main([*args, "--split", str(tmp_path / "split.csv")]) == 2  # never replaced silently
    assert "exists; pass --overwrite" in capsys.readouterr().err
    args.append("--overwrite")
    assert main([*args, "--split", str(tmp_path / "split.csv")]) == 0  # test part only
    assert list(pd.read_csv(out)["case"]) == ["BraTS2021_00001"]
    # The other sub-challenges' rules: MET's minimum volume of 2 mm^3 keeps small lesions.
    met = [*args, "--split", str(tmp_path / "split.csv"), "--lesion-dilation", "1"]
    assert main([*met, "--lesion-min-volume", "2", "--lesion-hd95", "pooled"]) == 0
    with pytest.raises(SystemExit) as info:  # argparse's usage error, no traceback
        main([*met, "--lesion-min-volume", "-1"])
    assert info.value.code == 2
    assert "--lesion-min-volume: expected a number >= 0, got '-1'" in capsys.readouterr().err
    assert (
        main(["evaluate", "--pred", str(tmp_path / "nope"), "--ref", str(ref), "--out", str(out)])
        == 2
    )


def test_evaluation_does_not_import_keras():
    import subprocess
    import sys

    code = (
        "import sys, brats_utils.evaluation.volumes, brats_utils.cli.evaluate, "
        "brats_utils.cli.predict; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_error_maps_and_the_failure_table(tmp_path, capsys):
    from brats_utils.data.nifti import read_nifti
    from brats_utils.evaluation.failures import ERROR_CODES, error_map, failure_table

    ref, pred, maps = tmp_path / "ref", tmp_path / "pred", tmp_path / "maps"
    _, good = write_reference(ref, "BraTS2021_00000", index=0)
    _, truth = write_reference(ref, "BraTS2021_00001", index=1)
    write_prediction(pred, "BraTS2021_00000", good)
    worse = np.where(truth == 3, 1, truth).astype(np.uint8)  # enhancing called necrotic
    write_prediction(pred, "BraTS2021_00001", worse)
    out = tmp_path / "m.csv"
    args = ["evaluate", "--pred", str(pred), "--ref", str(ref), "--out", str(out)]
    assert main([*args, "--error-maps", str(maps)]) == 0
    per_case = pd.read_csv(out)
    errors, image = read_nifti(maps / "BraTS2021_00001_errors.nii.gz")
    assert errors.shape == (*SHAPE, 3) and errors.dtype == np.uint8
    np.testing.assert_array_equal(errors, error_map(worse, truth))
    et = errors[..., 2]
    assert np.all(et[truth == 3] == ERROR_CODES["FN"]) and not np.any(et == ERROR_CODES["FP"])
    assert np.all(errors[..., 0][truth > 0] == ERROR_CODES["TP"])  # WT unchanged
    assert main([*args, "--error-maps", str(maps), "--overwrite"]) == 0
    capsys.readouterr()
    assert main([*args, "--error-maps", str(maps)]) == 2  # the CSV exists: refused
    assert "m.csv exists; pass --overwrite" in capsys.readouterr().err
    out.unlink()
    (tmp_path / "m_summary.csv").unlink()
    assert main([*args, "--error-maps", str(maps)]) == 0  # maps but no CSV (a kill): resumed

    table = failure_table(per_case, "ET")
    assert list(table["case"]) == ["BraTS2021_00001", "BraTS2021_00000"]  # worst first
    assert table.loc[0, "dice"] == 0.0 and table.loc[0, "fp_lesions"] == 0
    assert table.loc[0, "fn_lesions"] == table.loc[0, "lesions"]  # every scored ET lesion missed
    assert table.loc[1, "dice"] == 1.0 and table.loc[1, "volume_ml"] > 0
    assert list(table.columns) == [
        "case", "dice", "hd95", "lesion_dice", "volume_ml", "fp_lesions", "fn_lesions",
        "lesions", "status",
    ]  # fmt: skip
