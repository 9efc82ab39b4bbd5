"""brats export: portal names and labels, checked, nothing replaced without --overwrite."""

from __future__ import annotations

import numpy as np
import pytest

from brats_utils.cli.main import main
from brats_utils.conventions import GLI2023, LEGACY, classes_to_labels
from brats_utils.data.export import portal_name, source_release
from brats_utils.data.nifti import read_nifti, write_nifti
from brats_utils.errors import BratsError

SHAPE = (12, 10, 8)


@pytest.mark.parametrize(
    ("case_id", "portal", "name"),
    [
        ("BraTS2021_00042", "2023", "BraTS-GLI-00042-000.nii.gz"),
        ("BraTS2021_00042", "2021", "BraTS2021_00042.nii.gz"),
        ("BraTS-GLI-00042-000", "2021", "BraTS2021_00042.nii.gz"),
        ("BraTS-GLI-00042-001", "2023", "BraTS-GLI-00042-001.nii.gz"),
    ],
)
def test_portal_names(case_id, portal, name):
    assert portal_name(case_id, portal) == name


def test_cases_without_a_portal_name_are_refused():
    with pytest.raises(BratsError, match="Brats18_CBICA_AAB_1: no file name for the 2021 portal"):
        portal_name("Brats18_CBICA_AAB_1", "2021")
    with pytest.raises(BratsError, match="no file name"):
        portal_name("BraTS-GLI-00042-001", "2021")  # only timepoint 000 was in BraTS 2021
    assert source_release("BraTS-GLI-00042-000") is GLI2023
    assert source_release("BraTS2021_00042") is LEGACY


def test_export_cli_relabels_keeps_the_affine_and_never_replaces(tmp_path, capsys):
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 4, SHAPE).astype(np.uint8)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    pred, out = tmp_path / "pred", tmp_path / "out"
    write_nifti(pred / "BraTS2021_00007.nii.gz", classes_to_labels(classes, LEGACY), affine)
    args = ["export", "--pred", str(pred), "--release", "2023", "--out", str(out)]
    # A small test volume: the check for BraTS' 240 x 240 x 155 names the shape.
    assert main(args) == 2
    assert "BraTS2021_00007: prediction has shape (12, 10, 8)" in capsys.readouterr().err
    from brats_utils.data.export import export_predictions

    written = export_predictions(pred, out, "2023", expected_shape=None)["BraTS2021_00007"]
    assert written.name == "BraTS-GLI-00007-000.nii.gz"
    data, image = read_nifti(written)
    np.testing.assert_array_equal(data, classes_to_labels(classes, GLI2023))  # ET is 3 now
    np.testing.assert_array_equal(image.affine, affine)
    with pytest.raises(BratsError, match="exist in .*pass --overwrite"):
        export_predictions(pred, out, "2023", expected_shape=None)
    export_predictions(pred, out, "2023", expected_shape=None, overwrite=True)
    assert main(["export", "--pred", str(tmp_path / "none"), "--release", "2021", "--out",
                 str(out)]) == 2  # fmt: skip
