"""Coronal and sagittal slicing (triplanar option) and ensembles of runs at inference."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from helpers import rounding_model, run_config, write_run

from brats_utils.conventions import channel_indices
from brats_utils.data.cases import discover_cases, read_case_volumes
from brats_utils.errors import BratsError
from brats_utils.inference.predict import predict_cases, predict_volume
from brats_utils.inference.run_config import load_models, model_files
from brats_utils.preprocessing.cache import open_cache
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.settings import PLANES, PreprocessSettings, from_plane, to_plane

SHAPE = (48, 40, 30)  # not square in any plane: every frame is padded or cropped
CUBE = (slice(10, 30), slice(8, 28), slice(5, 25))


@pytest.mark.parametrize("plane", PLANES)
def test_to_plane_puts_the_slicing_axis_last_and_from_plane_undoes_it(plane):
    volume = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    framed = to_plane(volume, plane)
    axis = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
    assert framed.shape[2] == SHAPE[axis]
    assert np.array_equal(framed[:, :, 7], np.take(volume, 7, axis=axis))
    assert np.array_equal(from_plane(framed, plane), volume)
    assert np.array_equal(from_plane(framed[..., None], plane)[..., 0], volume)


def _cube_volumes() -> list[np.ndarray]:
    """Four modalities: ~100 inside a cube, 0 outside (max-normalised: ~1 and 0)."""
    volume = np.zeros(SHAPE, dtype=np.int16)
    volume[CUBE] = 100
    volume[20, 18, 15] = 90  # not constant (refused as a blank file)
    return [volume.copy() for _ in range(4)]


@pytest.mark.parametrize("crop_brain", [False, True])
@pytest.mark.parametrize("plane", PLANES)
def test_every_plane_puts_its_scores_back_where_they_belong(plane, crop_brain):
    settings = PreprocessSettings(size=32, slice_start=0, slice_stop=None, normalization="max",
                                  crop_brain=crop_brain, plane=plane)  # fmt: skip
    model = rounding_model(32, 2)  # class = round(channel 0): 1 inside the cube, 0 outside
    scores = predict_volume(model, _cube_volumes(), run_config(settings))
    assert scores.shape == (*SHAPE, 4)
    predicted = scores.argmax(-1) == 1
    truth = np.zeros(SHAPE, dtype=bool)
    truth[CUBE] = True
    dice = 2 * np.sum(predicted & truth) / (predicted.sum() + truth.sum())
    assert dice > 0.97, dice
    assert not predicted[~truth].any()  # outside the brain: background, whatever the resize


@pytest.mark.parametrize("plane", ["coronal", "sagittal"])
def test_inference_feeds_a_planes_cached_slices_bit_for_bit(synthetic_root, tmp_path, plane):
    case_id = discover_cases(synthetic_root)[2].case_id
    settings = PreprocessSettings(size=48, slice_start=16, slice_stop=48, plane=plane)
    build_cache(synthetic_root, tmp_path / "cache", settings, case_ids=[case_id],
                progress=False, expected_shape=None)  # fmt: skip
    cache = open_cache(tmp_path / "cache")
    assert cache.settings.plane == plane
    kept = cache.slice_indices(case_id)
    assert kept[0] == 16 and len(kept) == 32
    files = next(f for f in discover_cases(synthetic_root) if f.case_id == case_id)
    fed = []

    class Recording:
        def predict(self, x, batch_size=32, verbose=0):
            fed.append(np.array(x, copy=True))
            return np.full((*x.shape[:3], 4), 0.25, dtype=np.float32)

    channels = ("t2", "flair")
    predict_volume(Recording(), read_case_volumes(files).channels, run_config(settings, channels))
    assert fed[0].shape[0] == 64  # every coronal (Y) or sagittal (X) slice
    cached = np.asarray(cache.images(case_id))[..., channel_indices(channels)]
    assert np.array_equal(fed[0][kept], cached)
    labels = np.asarray(cache.labels(case_id))
    assert labels.any()  # the tumour is seen from the side too


def test_axial_settings_record_what_they_always_did():
    assert "plane" not in PreprocessSettings().to_dict()  # older caches and runs unchanged
    assert PreprocessSettings.from_dict(PreprocessSettings().to_dict()).plane == "axial"
    assert PreprocessSettings(plane="coronal").to_dict()["plane"] == "coronal"
    with pytest.raises(ValueError, match="plane"):
        PreprocessSettings(plane="oblique")


def _write_member(run_dir, plane: str, size: int = 32):
    write_run(run_dir, size)
    config = json.loads((run_dir / "config.json").read_text())
    config["preprocessing"] = PreprocessSettings(size=size, slice_start=0, slice_stop=None,
                                                 plane=plane).to_dict()  # fmt: skip
    (run_dir / "config.json").write_text(json.dumps(config))


def test_an_ensemble_folder_averages_its_runs(tmp_path):
    from helpers import write_tiny_case

    data = tmp_path / "data"
    write_tiny_case(data, "BraTS2021_00001")
    ensemble = tmp_path / "ensemble"
    for plane in PLANES:
        _write_member(ensemble / plane, plane)
    paths, home = model_files(ensemble)
    assert [p.parent.name for p in paths] == sorted(PLANES) and home == ensemble
    members, _ = load_models(ensemble)
    assert [c["preprocessing"].get("plane", "axial") for _, c in members] == sorted(PLANES)
    report = predict_cases(ensemble, data, tmp_path / "pred", progress=False)
    assert report.ok and len(report.written) == 1
    single = predict_cases(ensemble / "axial", data, tmp_path / "pred1", progress=False)
    both = [np.asarray(nib.load(p).dataobj) for p in (report.written[0], single.written[0])]
    assert both[0].shape == both[1].shape
    # a rounding model sees the same intensities from every side: the planes agree closely
    agree = np.mean(both[0] == both[1])
    assert agree > 0.95, agree


def test_an_ensemble_of_class_and_region_models_is_refused(tmp_path):
    import keras

    ensemble = tmp_path / "ensemble"
    _write_member(ensemble / "a", "axial")
    _write_member(ensemble / "b", "coronal")
    inputs = keras.Input((32, 32, 2))
    keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="sigmoid")(inputs)).save(
        ensemble / "b" / "model.keras"
    )
    with pytest.raises(BratsError, match="mixes class and region models"):
        load_models(ensemble)
    with pytest.raises(BratsError, match="a folder of run folders"):
        model_files(tmp_path / "empty_dir_missing")
