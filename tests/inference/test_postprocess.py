"""Postprocessing: small components removed, small ET called NCR, thresholds chosen on
validation cases, saved in the run and applied by brats predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import SHAPE_SMALL as SHAPE
from helpers import write_case_folder, write_run

from brats_utils.cli.main import main
from brats_utils.conventions import LEGACY
from brats_utils.data.nifti import read_nifti
from brats_utils.data.split import save_split
from brats_utils.errors import BratsError
from brats_utils.inference.postprocess import (
    PostprocessSettings,
    fit_postprocessing,
    load_postprocessing,
    postprocess,
    save_postprocessing,
)
from brats_utils.inference.predict import predict_cases

ONE_MM = (1.0, 1.0, 1.0)


def _tumour() -> np.ndarray:
    """Edema block with a necrotic core holding an enhancing rim piece (classes 0..3)."""
    classes = np.zeros((30, 30, 20), dtype=np.uint8)
    classes[5:20, 5:20, 5:15] = 2
    classes[8:16, 8:16, 7:13] = 1
    classes[8:16, 8:10, 7:13] = 3
    return classes


def test_each_stage_keeps_the_regions_nested():
    truth = _tumour()
    noisy = truth.copy()
    noisy[26:28, 26:28, 2:4] = 2  # an 8 mm^3 WT speck far away
    noisy[5:7, 18:20, 5:7] = 1  # an 8 mm^3 core speck inside the edema
    out = postprocess(noisy, PostprocessSettings(wt_min_mm3=10, tc_min_mm3=10), ONE_MM)
    np.testing.assert_array_equal(out, truth)  # speck gone, core speck back to edema
    assert postprocess(noisy, PostprocessSettings(), ONE_MM).tolist() == noisy.tolist()
    tiny_et = postprocess(truth, PostprocessSettings(et_to_ncr_below_mm3=1000), ONE_MM)
    assert not np.any(tiny_et == 3) and np.count_nonzero(tiny_et == 1) == np.count_nonzero(
        np.isin(truth, (1, 3))
    )
    # The same 96 ET voxels are 288 mm^3 with 3 mm slices: above a 200 mm^3 threshold.
    kept = postprocess(truth, PostprocessSettings(et_to_ncr_below_mm3=200), (1.0, 1.0, 3.0))
    assert np.count_nonzero(kept == 3) == 96


def test_fit_chooses_thresholds_that_remove_false_positive_specks():
    truth = _tumour()
    truth[22:29, 22:29, 14:19] = 2  # a second, true focus: keeping the largest alone is wrong
    cases = []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        noisy = truth.copy()
        for _ in range(5):
            x, y, z = rng.integers(22, 28), rng.integers(0, 28), rng.integers(0, 18)
            noisy[x : x + 2, y : y + 2, z : z + 2] = 2
        cases.append((noisy, truth, ONE_MM))
    settings, trials = fit_postprocessing(cases)
    assert settings.wt_min_mm3 == 25.0  # the smallest threshold that removes the 8 mm^3 specks
    wt = {t["threshold"]: t["score"] for t in trials if t["stage"] == "wt_min_mm3"}
    assert wt[25.0] > wt[0.0]
    assert settings.et_to_ncr_below_mm3 == 0.0  # the true ET is kept
    assert settings.wt_largest_only == 0.0
    with pytest.raises(ValueError, match="at least one validation case"):
        fit_postprocessing([])


def test_keeping_the_largest_component_is_chosen_when_the_tumour_is_one():
    truth = _tumour()
    noisy = truth.copy()
    noisy[24:28, 2:6, 15:19] = 2  # a false focus of 64 mm^3, beyond any size threshold below
    settings, _ = fit_postprocessing([(noisy, truth, ONE_MM)], grid=(0, 25))
    assert settings.wt_largest_only == 1.0 and settings.wt_min_mm3 == 0.0
    np.testing.assert_array_equal(postprocess(noisy, settings, ONE_MM), truth)
    assert "only the largest WT component kept" in settings.describe()


def test_settings_round_trip_and_errors(tmp_path):
    settings = PostprocessSettings(wt_min_mm3=50, et_to_ncr_below_mm3=100)
    save_postprocessing(tmp_path, settings, chosen_on=["a", "b"])
    assert load_postprocessing(tmp_path) == settings
    assert load_postprocessing(tmp_path / "none") is None
    (tmp_path / "postprocessing.json").write_text(json.dumps({"settings": {"wt_min": 1}}))
    with pytest.raises(BratsError, match="invalid postprocessing settings"):
        load_postprocessing(tmp_path)
    with pytest.raises(ValueError, match="finite number >= 0"):
        PostprocessSettings(tc_min_mm3=-1)
    assert "WT components < 50 mm^3 removed" in settings.describe()


def test_predict_applies_the_runs_postprocessing_and_says_so(tmp_path, capsys):
    model = write_run(tmp_path / "run", size=SHAPE[0])
    data = tmp_path / "data"
    for i in range(3):
        write_case_folder(data, f"BraTS2021_0000{i}", LEGACY, index=i)
    stale = tmp_path / "plain" / ".BraTS2021_00000.nii.gz.k9.tmp.nii.gz"  # a killed predict's
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    plain = predict_cases(model, data, tmp_path / "plain", progress=False)
    assert not stale.exists()
    assert plain.postprocessing is None
    assert any(read_nifti(p)[0].any() for p in plain.written)
    everything = PostprocessSettings(wt_min_mm3=1e9)  # removes every component
    save_postprocessing(model.parent, everything, chosen_on=["BraTS2021_00001"])
    report = predict_cases(model, data, tmp_path / "post", progress=False)
    assert report.postprocessing == everything
    assert not any(read_nifti(p)[0].any() for p in report.written)
    unchanged = predict_cases(model, data, tmp_path / "raw", progress=False, postprocessing=None)
    assert any(read_nifti(p)[0].any() for p in unchanged.written)
    args = ["predict", "--model", str(model), "--input", str(data), "--out", str(tmp_path / "c")]
    assert main(args) == 0
    assert "postprocessing (RUN_DIR/postprocessing.json): WT components" in capsys.readouterr().out
    assert main([*args[:-1], str(tmp_path / "d"), "--no-postprocess"]) == 0
    assert "postprocessing" not in capsys.readouterr().out


def test_postprocess_cli_chooses_on_validation_cases_only(tmp_path, capsys):
    model = write_run(tmp_path / "run", size=SHAPE[0])
    data = tmp_path / "data"
    ids = [f"BraTS2021_0000{i}" for i in range(3)]
    for i, case_id in enumerate(ids):
        write_case_folder(data, case_id, LEGACY, index=i)
    save_split(dict(zip(ids, ["train", "validation", "test"], strict=True)), data / "split.csv")
    base = ["postprocess", "--model", str(model), "--input", str(data)]
    assert main(base) == 2 and "--split is required" in capsys.readouterr().err
    split = ["--split", str(data / "split.csv")]
    assert main([*base, *split, "--subset", "test"]) == 2
    assert "leak" in capsys.readouterr().err
    assert main([*base, *split]) == 0
    record = json.loads((model.parent / "postprocessing.json").read_text())
    assert (
        record["chosen_on"] == ["BraTS2021_00001"] and len(record["trials"]) == 4 * 9 + 2
    )  # + largest only: 0, 1
    assert "postprocessing:" in capsys.readouterr().out
    assert main([*base, *split]) == 2  # not replaced without --overwrite
