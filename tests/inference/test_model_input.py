"""What inference feeds the model is, bit for bit, what the model was trained on (the cache)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_config

from brats_utils.conventions import NUM_CLASSES, channel_indices
from brats_utils.data.cases import discover_cases, load_case, read_case_volumes
from brats_utils.inference.predict import predict_volume
from brats_utils.model.experiments import EXPERIMENTS
from brats_utils.preprocessing.cache import open_cache
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.settings import PreprocessSettings


class RecordingModel:
    """Stands in for a Keras model: keeps every batch it is given, predicts uniform classes."""

    def __init__(self):
        self.inputs: list[np.ndarray] = []

    def predict(self, x, batch_size=32, verbose=0):
        self.inputs.append(np.array(x, copy=True))
        return np.full((*x.shape[:3], NUM_CLASSES), 1.0 / NUM_CLASSES, dtype=np.float32)


def _assert_inference_input_equals_cache(data_dir, case_id, settings, tmp_path):
    build_cache(data_dir, tmp_path / "cache", settings, case_ids=[case_id], progress=False,
                expected_shape=None)  # fmt: skip
    cache = open_cache(tmp_path / "cache")
    kept = cache.slice_indices(case_id)
    files = next(f for f in discover_cases(data_dir) if f.case_id == case_id)
    volumes = read_case_volumes(files, expected_shape=None)  # what `brats predict` reads
    image = load_case(files, expected_shape=None).image  # what a notebook holds in memory
    for experiment in EXPERIMENTS.values():
        cached = np.asarray(cache.images(case_id))[..., channel_indices(experiment.channels)]
        for run in ("channels", "image"):
            model = RecordingModel()
            config = run_config(settings, experiment.channels, experiment.name)
            predict_volume(model, volumes.channels if run == "channels" else image, config)
            (fed,) = model.inputs
            assert fed.shape == (image.shape[2], settings.size, settings.size, len(cached[0, 0, 0]))
            assert fed.dtype == cached.dtype == np.float32
            # Bit for bit, not within a tolerance: the same function made both.
            assert np.array_equal(fed[kept], cached), (experiment.name, run)


@pytest.mark.slow
@pytest.mark.real_data
def test_inference_feeds_the_cached_slices_bit_for_bit_on_a_real_case(real_sample_dir, tmp_path):
    case_id = discover_cases(real_sample_dir)[0].case_id
    settings = PreprocessSettings()  # the baseline's: 128 x 128, slices 22..121, z-score
    _assert_inference_input_equals_cache(real_sample_dir, case_id, settings, tmp_path)


@pytest.mark.slow
@pytest.mark.real_data
def test_the_same_with_max_normalisation_and_every_slice(real_sample_dir, tmp_path):
    case_id = discover_cases(real_sample_dir)[-1].case_id
    settings = PreprocessSettings(size=64, slice_start=0, slice_stop=None, normalization="max")
    _assert_inference_input_equals_cache(real_sample_dir, case_id, settings, tmp_path)


@pytest.mark.slow
@pytest.mark.real_data
def test_the_same_with_the_brain_crop(real_sample_dir, tmp_path):
    case_id = discover_cases(real_sample_dir)[3].case_id
    settings = PreprocessSettings(size=96, slice_start=0, slice_stop=None, crop_brain=True)
    _assert_inference_input_equals_cache(real_sample_dir, case_id, settings, tmp_path)


def test_the_same_on_a_synthetic_case(synthetic_root, tmp_path):
    case_id = discover_cases(synthetic_root)[0].case_id
    settings = PreprocessSettings(size=32, slice_start=8, slice_stop=32)
    _assert_inference_input_equals_cache(synthetic_root, case_id, settings, tmp_path)
