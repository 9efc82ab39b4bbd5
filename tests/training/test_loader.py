"""SliceDataset and load_arrays over a tiny slice cache."""

from __future__ import annotations

import pickle

import keras
import numpy as np
import pytest
from helpers import write_tiny_case

from brats_utils.preprocessing.cache import SliceCache, open_cache
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.loader import SliceDataset, load_arrays

SETTINGS = PreprocessSettings(size=16, slice_start=0, slice_stop=None)  # all 12 slices
LABELLED = ["Case_A", "Case_B", "Case_C"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> SliceCache:
    """Three labelled cases (12 slices each, tumour on 5 of them) and one unlabelled."""
    root = tmp_path_factory.mktemp("loader_data")
    for seed, case_id in enumerate(LABELLED):
        write_tiny_case(root, case_id, seed=seed, tumour_z=(2 + seed, 7 + seed))
    write_tiny_case(root, "Case_U", seed=9, seg=False)
    out = root.parent / "loader_cache"
    build_cache(root, out, SETTINGS, expected_shape=None, progress=False)
    return open_cache(out)


def batch_slices(dataset: SliceDataset, index: int) -> list[tuple[str, int]]:
    """``(case_id, z)`` of each slice of batch ``index`` this epoch (z: source index)."""
    rows = dataset._batch_rows(index)
    pairs = zip(dataset._case_of[rows], dataset._position_of[rows], strict=True)
    cases = [(dataset.case_ids[c], p) for c, p in pairs]
    return [(c, int(dataset.cache.slice_indices(c)[p])) for c, p in cases]


def _all_slices(dataset: SliceDataset) -> list[tuple[str, int]]:
    return [s for i in range(len(dataset)) for s in batch_slices(dataset, i)]


def test_batches_have_the_documented_shapes_and_dtypes(cache):
    dataset = SliceDataset(cache, LABELLED, batch_size=5)
    assert dataset.num_slices == 36 and len(dataset) == 8  # last batch partial (1 slice)
    x, y = dataset[0]
    assert x.shape == (5, 16, 16, 4) and x.dtype == np.float32
    assert y.shape == (5, 16, 16, 4) and y.dtype == np.float32
    np.testing.assert_array_equal(y.sum(axis=-1), 1.0)
    last_x, last_y = dataset[len(dataset) - 1]
    assert len(last_x) == len(last_y) == 1
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_channels_are_selected_in_the_given_order_and_labels_match_the_cache(cache):
    dataset = SliceDataset(cache, LABELLED, ["flair", "t1ce"], batch_size=7, shuffle=False)
    x, y = dataset[0]
    assert x.shape == (7, 16, 16, 2) and y.shape == (7, 16, 16, 4)
    assert batch_slices(dataset, 0) == [("Case_A", z) for z in range(7)]
    np.testing.assert_array_equal(x, cache.images("Case_A")[:7][..., [3, 1]])
    np.testing.assert_array_equal(np.argmax(y, axis=-1), cache.labels("Case_A")[:7])


def test_each_epoch_yields_every_slice_once_deterministically_under_a_seed(cache):
    first = SliceDataset(cache, LABELLED, batch_size=8, seed=3)
    second = SliceDataset(cache, LABELLED, batch_size=8, seed=3)
    epoch0 = _all_slices(first)
    expected = {(c, z) for c in LABELLED for z in range(12)}
    assert len(epoch0) == 36 and set(epoch0) == expected
    assert epoch0 == _all_slices(second)
    for i in range(len(first)):
        np.testing.assert_array_equal(first[i][0], second[i][0])
    first.on_epoch_end()
    second.on_epoch_end()
    assert first.epoch == second.epoch == 1
    epoch1 = _all_slices(first)
    assert set(epoch1) == expected and epoch1 != epoch0
    assert epoch1 == _all_slices(second)
    assert _all_slices(SliceDataset(cache, LABELLED, batch_size=8, seed=4)) != epoch0
    first.set_epoch(0)
    assert _all_slices(first) == epoch0


def test_on_epoch_end_without_reading_keeps_the_epoch(cache):
    dataset = SliceDataset(cache, LABELLED, batch_size=8)
    dataset.on_epoch_end()  # what Keras does once before training starts
    assert dataset.epoch == 0
    dataset.on_epoch_begin()
    dataset.on_epoch_end()
    assert dataset.epoch == 1


def test_empty_slice_fraction_drops_and_redraws_tumour_free_slices(cache):
    tumour = {(c, int(cache.slice_indices(c)[p])) for c in LABELLED for p in cache.tumour_slices(c)}
    assert len(tumour) == 15
    only_tumour = SliceDataset(cache, LABELLED, batch_size=4, empty_slice_fraction=0.0)
    assert set(_all_slices(only_tumour)) == tumour and only_tumour.num_slices == 15
    for i in range(len(only_tumour)):
        y = only_tumour[i][1]
        assert np.all(y[..., 1:].reshape(len(y), -1).max(axis=1) == 1)  # tumour in every slice
    half = SliceDataset(cache, LABELLED, batch_size=4, empty_slice_fraction=0.5, seed=1)
    epoch0 = set(_all_slices(half))
    assert len(epoch0) == 15 + round(0.5 * 21) and tumour <= epoch0
    half[0]
    half.on_epoch_end()
    epoch1 = set(_all_slices(half))
    assert len(epoch1) == len(epoch0) and tumour <= epoch1 and epoch1 != epoch0


def test_augmentation_flips_images_and_labels_together_reproducibly(cache):
    plain = SliceDataset(cache, LABELLED, batch_size=36, shuffle=False)
    flipped = SliceDataset(cache, LABELLED, batch_size=36, shuffle=False, augment=True, seed=5)
    (x0, y0), (x1, y1) = plain[0], flipped[0]
    n_changed = 0
    for i in range(36):
        matches = [
            (a, b)
            for a in (False, True)
            for b in (False, True)
            if np.array_equal(_flip(x0[i], a, b), x1[i])
            and np.array_equal(_flip(y0[i], a, b), y1[i])
        ]
        assert matches, f"slice {i} is not a flip of the original"
        n_changed += matches[0] != (False, False)
    assert n_changed > 0
    again = SliceDataset(cache, LABELLED, batch_size=36, shuffle=False, augment=True, seed=5)
    np.testing.assert_array_equal(again[0][0], x1)


def _flip(array: np.ndarray, rows: bool, cols: bool) -> np.ndarray:
    return array[:: -1 if rows else 1, :: -1 if cols else 1]


def test_load_arrays(cache):
    x, y = load_arrays(cache.cache_dir, ["Case_C", "Case_A"], ["t2"])
    assert x.shape == (24, 16, 16, 1) and y.shape == (24, 16, 16, 4)
    np.testing.assert_array_equal(x[:12, ..., 0], cache.images("Case_C")[..., 2])
    np.testing.assert_array_equal(np.argmax(y[12:], axis=-1), cache.labels("Case_A"))


def test_bad_arguments_are_refused(cache):
    with pytest.raises(ValueError, match="unknown channels"):
        SliceDataset(cache, LABELLED, ["flair", "dwi"])
    with pytest.raises(ValueError, match="not in the cache"):
        SliceDataset(cache, ["Case_A", "Case_Q"])
    with pytest.raises(ValueError, match="without labels"):
        SliceDataset(cache, ["Case_A", "Case_U"])
    with pytest.raises(ValueError, match="empty_slice_fraction"):
        SliceDataset(cache, LABELLED, empty_slice_fraction=1.5)


def test_pickling_drops_the_memory_maps(cache):
    dataset = SliceDataset(cache, LABELLED, batch_size=4)
    dataset[0]  # opens memory maps
    data = pickle.dumps(dataset)
    assert len(data) < 20_000  # the slices themselves (36 x 4 kB) are not copied
    clone = pickle.loads(data)
    np.testing.assert_array_equal(clone[0][0], dataset[0][0])


def test_keras_fit_runs_epochs_over_the_dataset(cache):
    dataset = SliceDataset(cache, LABELLED, ["flair", "t1ce"], batch_size=16, seed=0)
    model = keras.Sequential(
        [keras.Input((16, 16, 2)), keras.layers.Conv2D(4, 1, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert dataset.epoch == 2
    dataset.set_epoch(5)  # resuming a run at epoch 5
    model.fit(dataset, epochs=1, verbose=0)
    assert dataset.epoch == 6


def test_a_second_fit_trains_the_next_epoch_without_skipping_one(cache):
    dataset = SliceDataset(cache, LABELLED, ["flair"], batch_size=16, seed=0)
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 1)])
    model.compile(optimizer="adam", loss="mse")
    trained: list[set[int]] = []  # the draws each Keras epoch's batches came from
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: trained.append(set()),
        on_train_batch_end=lambda batch, logs: trained[-1].add(dataset.epoch),
    )
    model.fit(dataset, epochs=1, verbose=0, callbacks=[record])
    model.fit(dataset, epochs=2, verbose=0, callbacks=[record])
    assert trained == [{0}, {1}, {2}] and dataset.epoch == 3
