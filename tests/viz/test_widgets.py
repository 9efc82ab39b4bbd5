"""The slice viewer builds without a frontend and every control change redraws."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import nibabel as nib
import numpy as np
import pytest

from brats_utils.conventions import LEGACY, MODALITIES, classes_to_labels
from brats_utils.data.cases import CaseFiles, find_case
from brats_utils.data.nifti import write_nifti
from brats_utils.data.predictions import load_prediction
from brats_utils.data.synth import RECIPE_FILE
from brats_utils.errors import CaseError
from brats_utils.files import write_json
from brats_utils.viz.widgets import VIEWER_CLASS, SliceViewer

matplotlib.use("Agg")
SHAPE = (20, 18, 12)


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.uniform(1.0, 2.0, (*SHAPE, 4)).astype(np.float32)
    seg = np.zeros(SHAPE, np.uint8)
    seg[5:10, 4:9, 2 + seed : 5 + seed] = 2
    seg[6:8, 5:7, 3 + seed] = 3
    return image, seg


def _write_case(root: Path, case_id: str, seed: int) -> CaseFiles:
    """:func:`_case` as a case folder (the recipe file declares the small shape)."""
    image, seg = _case(seed)
    for c, modality in enumerate(MODALITIES):
        write_nifti(root / case_id / LEGACY.file_name(case_id, modality), image[..., c], np.eye(4))
    labels = classes_to_labels(seg, LEGACY)
    write_nifti(root / case_id / LEGACY.file_name(case_id, "seg"), labels, np.eye(4))
    write_json(root / RECIPE_FILE, {"seed": 0, "shape": list(SHAPE)})
    return find_case(root, case_id)


def _write_prediction(folder: Path, case_id: str, classes: np.ndarray) -> Path:
    return write_nifti(folder / f"{case_id}.nii.gz", classes_to_labels(classes, LEGACY), np.eye(4))


@pytest.fixture
def viewer(tmp_path) -> SliceViewer:
    cases = [_write_case(tmp_path / "data", "a", 0), _write_case(tmp_path / "data", "b", 4)]
    _write_prediction(tmp_path / "pred", "a", _case(1)[1])
    return SliceViewer(cases, predictions=tmp_path / "pred")


def test_viewer_builds_and_draws_once(viewer):
    assert viewer.n_draws == 1
    assert viewer.case.options == ("a", "b")
    assert viewer.index.max == SHAPE[2] - 1
    assert viewer.index.value == 2  # first axial slice with the most tumour of case a
    assert len(viewer.figure.axes) == 2  # FLAIR with ground truth | with prediction
    assert viewer.widget.children[-1] is viewer.output
    assert VIEWER_CLASS in viewer.widget._dom_classes  # the browser test finds it by this


def test_every_control_redraws(viewer):
    changes = [
        (viewer.index, 5),
        (viewer.modality, "all"),
        (viewer.alpha, 0.8),
        (viewer.labels[2], False),
        (viewer.show_prediction, False),
    ]
    for count, (control, value) in enumerate(changes, start=2):
        control.value = value
        assert viewer.n_draws == count, control.description
    assert len(viewer.figure.axes) == 4  # all modalities, prediction hidden
    assert viewer.figure._suptitle.get_text() == "a: axial slice 5"


def test_plane_change_resets_the_slider_and_draws_once(viewer):
    viewer.plane.value = "sagittal"
    assert viewer.n_draws == 2
    assert viewer.index.max == SHAPE[0] - 1
    assert viewer.index.value == 5  # first sagittal slice with the most tumour
    assert "sagittal slice 5" in viewer.figure._suptitle.get_text()


def test_case_change_loads_the_case(viewer):
    viewer.case.value = "b"
    assert viewer.n_draws == 2
    assert viewer.index.value == 6
    assert len(viewer.figure.axes) == 1  # no prediction for case b


def test_hidden_labels_are_not_drawn(viewer):
    viewer.show_prediction.value = False
    viewer.labels[3].value = False
    overlay = viewer.figure.axes[0].images[1].get_array()
    assert overlay[..., 3].max() > 0  # edema still shown
    colours = {tuple(np.round(px[:3], 3)) for px in overlay.reshape(-1, 4) if px[3] > 0}
    assert len(colours) == 1


def test_the_shown_case_stays_loaded_and_save(tmp_path, monkeypatch):
    from brats_utils.viz import widgets

    calls = []
    load_case = widgets.load_case
    monkeypatch.setattr(widgets, "load_case", lambda files: calls.append(1) or load_case(files))
    cases = [_write_case(tmp_path / "data", "a", 2), _write_case(tmp_path / "data", "b", 3)]
    viewer = SliceViewer(cases, modality="t1ce")
    assert calls == [1]
    viewer.index.value = 3
    assert calls == [1]  # the shown case stays in memory
    out = viewer.save(tmp_path / "viewer.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    viewer.case.value = "b"
    assert calls == [1, 1] and len(viewer.figure.axes) == 1


def test_displayed_viewer_shows_one_picture_that_controls_update(viewer, monkeypatch):
    """display(viewer): the picture is a display handle; the output area is hidden, not a
    second copy of the figure (what a live JupyterLab showed before)."""
    import IPython
    import IPython.display

    class Handle:
        def __init__(self):
            self.updates = []

        def update(self, figure):
            self.updates.append(figure)

    shown, handle = [], Handle()

    def fake_display(obj, **kwargs):
        shown.append(obj)
        return handle if kwargs.get("display_id") else None

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    viewer._ipython_display_()
    assert shown[0] is viewer.figure and viewer.n_draws == 1
    assert viewer.output.layout.display == "none"
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # as in a kernel
    viewer.index.value = 4
    assert handle.updates == [viewer.figure] and viewer.n_draws == 2


def test_viewer_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least one case"):
        SliceViewer([])
    with pytest.raises(ValueError, match="modality must be"):
        SliceViewer([_write_case(tmp_path, "a", 0)], modality="pd")


def test_predictions_from_a_folder(tmp_path):
    seg = _case(0)[1]
    labels = classes_to_labels(seg, LEGACY)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(tmp_path / "a.nii.gz"))
    np.testing.assert_array_equal(load_prediction(tmp_path, "a"), seg)
    assert load_prediction(tmp_path, "missing") is None
    viewer = SliceViewer([_write_case(tmp_path / "data", "a", 0)], predictions=tmp_path)
    assert len(viewer.figure.axes) == 2
    nib.save(nib.Nifti1Image(np.full(SHAPE, 7, np.uint8), np.eye(4)), str(tmp_path / "b.nii"))
    with pytest.raises(CaseError, match="b: prediction: labels"):
        load_prediction(tmp_path, "b")


def test_error_maps_add_a_panel_row_for_the_chosen_region(tmp_path):
    from brats_utils.evaluation.failures import error_map, error_map_path

    seg = _case(0)[1]
    pred = np.roll(seg, 2, axis=0)
    write_nifti(error_map_path(tmp_path, "a"), error_map(pred, seg), np.eye(4))
    cases = [_write_case(tmp_path / "data", "a", 0)]
    _write_prediction(tmp_path / "pred", "a", pred)
    viewer = SliceViewer(cases, predictions=tmp_path / "pred", error_maps=tmp_path)
    assert len(viewer.figure.axes) == 2 and not viewer.error_region.disabled
    viewer.error_region.value = "WT"
    titles = [axis.get_title() for axis in viewer.figure.axes]
    assert len(titles) == 3 and titles[-1].endswith("+ errors WT")
    assert SliceViewer(cases).error_region.disabled  # no maps: no control
