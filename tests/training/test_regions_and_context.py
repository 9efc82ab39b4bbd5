"""Region outputs (WT/TC/ET sigmoids, nested decoding) and 2.5D input (context slices)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import batches, run_config

from brats_utils.conventions import NUM_CLASSES, REGIONS, channel_indices, classes_from_scores
from brats_utils.data.cases import discover_cases, read_case_volumes
from brats_utils.evaluation.slice_metrics import confusion_matrix
from brats_utils.inference.predict import predict_volume
from brats_utils.model.unet import build_model
from brats_utils.preprocessing.cache import open_cache
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.normalize import brain_mask
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.preprocessing.slices import context_positions, stack_context
from brats_utils.training.fit import compile_model, fit
from brats_utils.training.keras_metrics import batch_confusion_matrix
from brats_utils.training.loader import SliceDataset
from brats_utils.training.losses import region_targets
from brats_utils.training.settings import TrainSettings

SIZE = 16


def test_nested_decoding_keeps_et_in_tc_in_wt():
    rng = np.random.default_rng(0)
    scores = rng.random((2000, 3)).astype(np.float32)
    classes = classes_from_scores(scores)
    wt, tc, et = scores[:, 0] > 0.5, scores[:, 1] > 0.5, scores[:, 2] > 0.5
    assert np.array_equal(classes > 0, wt)  # WT is exactly where the WT sigmoid says
    assert np.array_equal(np.isin(classes, (1, 3)), wt & tc)
    assert np.array_equal(classes == 3, wt & tc & et)
    # an ET score alone (outside WT) is background, not enhancing tumour
    assert classes_from_scores(np.array([[0.1, 0.9, 0.9]]))[0] == 0
    assert classes_from_scores(np.array([[0.9, 0.1, 0.9]]))[0] == 2  # ET outside TC: edema
    assert classes_from_scores(np.array([[0.9, 0.9, 0.1]]))[0] == 1
    # four channels: the argmax, as before
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=50)
    assert np.array_equal(classes_from_scores(probs), probs.argmax(-1))
    with pytest.raises(ValueError, match="region channels"):
        classes_from_scores(np.zeros((3, 5)))


def test_keras_metrics_decode_regions_as_inference_does():
    rng = np.random.default_rng(1)
    scores = rng.random((2, 8, 8, 3)).astype(np.float32)
    truth = rng.integers(0, 4, size=(2, 8, 8))
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[truth]
    keras_cm = np.asarray(batch_confusion_matrix(onehot, scores))
    numpy_cm = confusion_matrix(truth, classes_from_scores(scores))
    assert np.array_equal(keras_cm, numpy_cm)


def test_region_targets_are_the_brats_regions():
    classes = np.arange(NUM_CLASSES).repeat(3).reshape(1, 2, 6)
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[classes]
    targets = np.asarray(region_targets(onehot))
    for k, members in enumerate(REGIONS.values()):
        assert np.array_equal(targets[..., k] == 1, np.isin(classes, members))
    assert set(np.unique(targets)) <= {0.0, 1.0}


def _toy_data(n: int, channels: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZE, SIZE, channels)).astype("float32")
    classes = np.digitize(x[..., 0], [0.0, 0.7, 1.4])
    return x, np.eye(4, dtype="float32")[classes]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "dice_ce"])
def test_a_region_model_learns_and_logs_the_label_metrics(loss, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("early2", SIZE, base_filters=4, depth=2, head="regions")
    assert model.outputs[0].shape[-1] == 3
    compile_model(model, loss, 1e-2)
    x, y = _toy_data(8)
    first = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    for _ in range(30):
        last = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    assert np.isfinite(last) and last < 0.75 * first
    history = fit(
        model, batches(x, y), batches(*_toy_data(4, seed=1)), tmp_path, epochs=1, verbose=0
    )
    for key in ("val_dice_necrotic", "val_dice_wt", "val_dice_et", "val_mean_iou"):
        assert 0.0 <= history[0][key] <= 1.0, key
    reloaded = keras.saving.load_model(tmp_path / "model_last.keras")
    assert np.allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_context_positions_clip_at_the_ends():
    assert context_positions(np.array([0, 3, 9]), 10, 3).tolist() == [[0, 0, 1], [2, 3, 4],
                                                                      [8, 9, 9]]  # fmt: skip
    assert context_positions(np.array([4]), 10, 1).tolist() == [[4]]
    with pytest.raises(ValueError, match="odd"):
        context_positions(np.array([1]), 10, 2)


def test_stack_context_puts_each_slice_channels_side_by_side():
    slices = np.arange(5 * 2 * 2 * 3, dtype=np.float32).reshape(5, 2, 2, 3)
    stacks = stack_context(slices, np.array([0, 2]), 3, channels=[2, 0])
    assert stacks.shape == (2, 2, 2, 6)
    expected = np.concatenate([slices[1][..., [2, 0]], slices[2][..., [2, 0]],
                               slices[3][..., [2, 0]]], axis=-1)  # fmt: skip
    assert np.array_equal(stacks[1], expected)
    first = np.concatenate([slices[0][..., [2, 0]]] * 2 + [slices[1][..., [2, 0]]], axis=-1)
    assert np.array_equal(stacks[0], first)


def test_settings_refuse_an_even_context():
    with pytest.raises(ValueError, match="context_slices"):
        TrainSettings(context_slices=2)
    with pytest.raises(ValueError, match="head"):
        TrainSettings.from_parameters({"head": "sigmoid"})


class RecordingModel:
    """Keeps every batch it is given; outputs region scores (3 channels)."""

    def __init__(self):
        self.inputs: list[np.ndarray] = []

    def predict(self, x, batch_size=32, verbose=0):
        self.inputs.append(np.array(x, copy=True))
        return np.full((*x.shape[:3], 3), 0.25, dtype=np.float32)


def test_inference_feeds_the_loaders_2p5d_stacks_bit_for_bit(synthetic_root, tmp_path):
    case_id = discover_cases(synthetic_root)[1].case_id
    settings = PreprocessSettings(size=32, slice_start=0, slice_stop=None)
    build_cache(synthetic_root, tmp_path / "cache", settings, case_ids=[case_id],
                progress=False, expected_shape=None)  # fmt: skip
    cache = open_cache(tmp_path / "cache")
    channels = ("flair", "t1ce")
    data = SliceDataset(cache, [case_id], channels, batch_size=500, shuffle=False, context=3)
    x, _ = data[0]
    positions = data._position_of[data._batch_rows(0)]  # one case: its slice positions
    files = next(f for f in discover_cases(synthetic_root) if f.case_id == case_id)
    model = RecordingModel()
    config = run_config(settings, channels, context=3)
    scores = predict_volume(model, read_case_volumes(files).channels, config)
    (fed,) = model.inputs
    assert fed.shape[-1] == 6 and x.shape[-1] == 6
    assert np.array_equal(fed[positions], x)  # not within a tolerance: the same function
    assert scores.shape[-1] == 3
    # the centre slice of each stack is the cached slice itself
    images = np.asarray(cache.images(case_id))
    assert np.array_equal(x[..., 2:4], images[positions][..., channel_indices(channels)])
    # outside the brain a region model scores no region at all
    inside = brain_mask(read_case_volumes(files).channels)
    assert not scores[~inside].any() and np.allclose(scores[inside], 0.25)
