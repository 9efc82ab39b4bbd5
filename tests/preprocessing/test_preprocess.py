"""Normalisation, resizing, preprocess_case, the slice cache and `brats preprocess`."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.ndimage as ndimage
from helpers import case_files, ml_frameworks_loaded_by, write_tiny_case

from brats_utils.cli.main import main
from brats_utils.data.cases import load_case
from brats_utils.data.nifti import write_nifti
from brats_utils.errors import BratsError, CaseError
from brats_utils.preprocessing.cache import open_cache
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.preprocessing.normalize import normalize_image
from brats_utils.preprocessing.resize import resize_images, resize_labels
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.preprocessing.slices import preprocess_case, preprocess_files

#: Small settings for the tiny test cases (Z = 12): slices 2..9, 16 x 16.
TINY = PreprocessSettings(size=16, slice_start=2, slice_stop=10)


def tiny_image(seed: int = 0, shape=(12, 10, 6)) -> tuple[np.ndarray, np.ndarray]:
    """A random (X, Y, Z, 4) float32 image, zero outside a box-shaped brain; and the mask."""
    rng = np.random.default_rng(seed)
    brain = np.zeros(shape, dtype=bool)
    brain[2:-2, 1:-1, 1:-1] = True
    image = rng.uniform(1, 500, (*shape, 4)).astype(np.float32) * brain[..., None]
    return image, brain


# --- normalisation -----------------------------------------------------------------------


def test_zscore_gives_mean_0_std_1_over_brain_and_exact_zero_background():
    image, brain = tiny_image()
    out = normalize_image(image, "zscore", "case0")
    assert out.dtype == np.float32 and out.shape == image.shape
    inside = out[brain]  # (voxels, 4)
    np.testing.assert_allclose(inside.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(inside.std(axis=0), 1.0, atol=1e-5)
    assert np.all(out[~brain] == 0.0)


def test_max_normalisation_lies_in_unit_interval_with_max_1():
    image, brain = tiny_image(1)
    out = normalize_image(image, "max")
    assert out.min() >= 0.0
    np.testing.assert_array_equal(out.reshape(-1, 4).max(axis=0), 1.0)
    np.testing.assert_allclose(
        out[brain], image[brain] / image.reshape(-1, 4).max(axis=0), rtol=1e-6
    )
    assert np.all(out[~brain] == 0.0)


def test_brain_mask_is_any_channel_positive():
    image, brain = tiny_image(2)
    image[0, 0, 0] = [0, 0, 7, 0]  # one voxel where only t2 is non-zero: inside the brain
    out = normalize_image(image, "zscore")
    assert np.all(out[0, 0, 0] != 0.0)


@pytest.mark.parametrize("method", ["zscore", "max"])
def test_constant_modality_raises_case_error_naming_case_and_modality(method):
    image, brain = tiny_image(3)
    image[..., 2] = 250.0 * brain  # t2 constant inside the brain
    with pytest.raises(CaseError, match=r"BraTS_X: t2 is constant") as info:
        normalize_image(image, method, "BraTS_X")
    assert info.value.case_id == "BraTS_X"


def test_empty_image_and_bad_inputs_raise():
    with pytest.raises(CaseError, match="no brain voxels"):
        normalize_image(np.zeros((4, 4, 4, 4), np.float32), case_id="c")
    with pytest.raises(CaseError, match=r"\(X, Y, Z, 4\).*got shape \(4, 4, 4, 3\)"):
        normalize_image(np.ones((4, 4, 4, 3), np.float32), case_id="c")
    with pytest.raises(ValueError, match="normalization must be one of"):
        normalize_image(tiny_image()[0], "minmax")


# --- slicing and resizing ----------------------------------------------------------------


def test_linear_resize_of_a_ramp_gives_the_pixel_centre_coordinates():
    # f(row, col) = 3 * row + col: linear interpolation reproduces it exactly at the
    # sampled coordinates (j + 0.5) * 240 / 128 - 0.5, e.g. 0.4375 for j = 0.
    rows, cols = np.indices((240, 240)).astype(np.float32)
    ramp = np.stack([3 * rows + cols, -rows], axis=-1)[None]  # (1, 240, 240, 2)
    out = resize_images(ramp, 128)
    assert out.shape == (1, 128, 128, 2) and out.dtype == np.float32
    source = (np.arange(128) + 0.5) * 240 / 128 - 0.5
    assert source[0] == 0.4375 and source[-1] == 238.5625
    np.testing.assert_allclose(out[0, :, :, 0], 3 * source[:, None] + source[None, :], atol=1e-3)
    np.testing.assert_allclose(out[0, :, :, 1], -source[:, None] * np.ones(128), atol=1e-3)


def test_linear_upsampling_clamps_at_the_edges_and_keeps_probabilities_summing_to_1():
    ramp = np.broadcast_to(np.arange(4, dtype=np.float32)[None, :, None, None], (1, 4, 4, 1))
    out = resize_images(ramp, 8)[0, :, 0, 0]
    # sampled at (j + 0.5) / 2 - 0.5 = -0.25, 0.25, ..., 3.25, clamped to [0, 3]
    np.testing.assert_allclose(out, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    probs = np.random.default_rng(0).dirichlet(np.ones(4), size=(3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(resize_images(probs, 40).sum(axis=-1), 1.0, atol=1e-5)


def test_linear_resize_matches_scipy_zoom_in_grid_mode():
    images = np.random.default_rng(1).random((2, 30, 20, 3)).astype(np.float32)
    expected = ndimage.zoom(
        images, (1, 12 / 30, 12 / 20, 1), order=1, grid_mode=True, mode="nearest"
    )
    np.testing.assert_allclose(resize_images(images, 12), expected, atol=1e-5)


def _nearest_index(n_in, n_out):
    # the input pixel whose centre is closest to output pixel j's: floor((j + 0.5) * n_in / n_out)
    return np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(int), n_in - 1)


def test_label_resize_is_nearest_neighbour_and_keeps_only_input_classes():
    labels = np.random.default_rng(2).choice(np.array([0, 2, 3], np.uint8), size=(3, 240, 240))
    out = resize_labels(labels, 128)
    assert out.shape == (3, 128, 128) and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 2, 3}
    rows = _nearest_index(240, 128)
    np.testing.assert_array_equal(out, labels[:, rows[:, None], rows[None, :]])
    rng = np.random.default_rng(3)  # down and up, ties included (e.g. 15 -> 8 pixels)
    for n_in in range(2, 70, 3):
        small = rng.integers(0, 4, (1, n_in, n_in + 3)).astype(np.uint8)
        for size in range(1, 90, 2):
            rows, cols = _nearest_index(n_in, size), _nearest_index(n_in + 3, size)
            expected = small[:, rows[:, None], cols[None, :]]
            np.testing.assert_array_equal(resize_labels(small, size), expected)
    block = np.array([[[1, 2], [3, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(resize_labels(block, 4)[0], np.kron(block[0], np.ones((2, 2))))


def test_resizers_reject_wrong_inputs():
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        resize_images(np.zeros((4, 4, 4), np.float32), 2)
    with pytest.raises(ValueError, match="float"):
        resize_images(np.zeros((1, 4, 4, 1), np.uint8), 2)
    with pytest.raises(ValueError, match="integer"):
        resize_labels(np.zeros((1, 4, 4), np.float32), 2)


# --- settings and preprocess_case --------------------------------------------------------


def test_settings_round_trip_and_validation():
    settings = PreprocessSettings(size=64, slice_start=0, slice_stop=None, normalization="max")
    assert PreprocessSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(ValueError, match="normalization"):
        PreprocessSettings(normalization="minmax")
    with pytest.raises(ValueError, match="slice_stop"):
        PreprocessSettings(slice_start=10, slice_stop=10)
    with pytest.raises(ValueError, match="unknown preprocessing settings"):
        PreprocessSettings.from_dict({"size": 8, "colour": "red"})
    np.testing.assert_array_equal(PreprocessSettings().slice_indices(155), np.arange(22, 122))
    with pytest.raises(CaseError, match="c1: volume has 100 axial slices"):
        PreprocessSettings().slice_indices(100, "c1")


@pytest.mark.parametrize("normalization", ["zscore", "max"])
@pytest.mark.parametrize("background", [0.0, -1.0])
def test_preprocess_case_equals_normalise_then_slice_then_resize(normalization, background):
    image, brain = tiny_image(4, shape=(20, 18, 12))
    image[~brain] = background  # -1: the explicit masking path
    seg = np.zeros(brain.shape, np.uint8)
    seg[8:12, 7:11, 3:6] = np.array([1, 2, 3], np.uint8)[None, None, :]
    case = SimpleNamespace(case_id="c", image=image, seg=seg)
    settings = PreprocessSettings(16, 2, 10, normalization)
    images, labels, kept = preprocess_case(case, settings)
    np.testing.assert_array_equal(kept, np.arange(2, 10))
    # a 20 x 18 frame is padded to the 20 x 20 square around its centre, then resized
    square = ((0, 0), (0, 0), (1, 1), (0, 0))
    normalised = np.moveaxis(normalize_image(image, normalization)[:, :, 2:10], 2, 0)
    expected = resize_images(np.pad(normalised, square), 16).astype(np.float16)
    assert images.shape == (8, 16, 16, 4) and images.dtype == np.float32
    assert images.flags.c_contiguous
    np.testing.assert_allclose(images, expected, rtol=2**-10, atol=1e-5)  # a float16 step
    np.testing.assert_array_equal(images, images.astype(np.float16))
    padded_seg = np.pad(np.moveaxis(seg[:, :, 2:10], 2, 0), square[:3])
    np.testing.assert_array_equal(labels, resize_labels(padded_seg, 16))
    assert labels.dtype == np.uint8
    no_seg = preprocess_case(SimpleNamespace(case_id="c", image=image, seg=None), settings)
    assert no_seg[1] is None


def test_preprocess_case_rejects_too_few_slices():
    image, _ = tiny_image(5, shape=(8, 8, 6))
    case = SimpleNamespace(case_id="short", image=image, seg=None)
    with pytest.raises(CaseError, match="short: volume has 6 axial slices"):
        preprocess_case(case, PreprocessSettings(size=8))


def test_preprocess_files_equals_preprocess_case_of_load_case(tmp_path):
    folder = write_tiny_case(tmp_path, "Case_F", seed=7)
    files = case_files(folder)
    for settings in (TINY, PreprocessSettings(32, 0, None, "max")):
        direct = preprocess_files(files, settings, expected_shape=None)
        via_case = preprocess_case(load_case(files, expected_shape=None), settings)
        for a, b in zip(direct, via_case, strict=True):
            np.testing.assert_array_equal(a, b)


def test_preprocess_files_names_case_and_file_of_each_problem(tmp_path):
    files = case_files(write_tiny_case(tmp_path, "Case_M", drop="flair"))
    with pytest.raises(CaseError, match=r"Case_M: missing modality flair \(Case_M_flair"):
        preprocess_files(files, TINY, expected_shape=None)
    files = case_files(write_tiny_case(tmp_path, "Case_S"))
    with pytest.raises(CaseError, match=r"t1 has shape \(20, 18, 12\), expected \(240, 240, 155\)"):
        preprocess_files(files, TINY)
    labels = np.zeros((20, 18, 12), np.uint8)
    labels[5, 5, 5] = 3  # not a BraTS 2018 label
    write_nifti(files.seg, labels, np.diag([-1.0, -1.0, 1.0, 1.0]))  # the case's affine
    with pytest.raises(CaseError, match=r"Case_S: seg: labels \[3\] are not valid.*Case_S_seg"):
        preprocess_files(files, TINY, expected_shape=None)


# --- the cache ---------------------------------------------------------------------------


@pytest.fixture()
def tiny_data(tmp_path) -> Path:
    """Three tiny cases: A and B labelled, C without segmentation."""
    root = tmp_path / "data"
    write_tiny_case(root, "Case_A", seed=1)
    write_tiny_case(root, "Case_B", seed=2, tumour_z=(5, 10))
    write_tiny_case(root, "Case_C", seed=3, seg=False)
    return root


def _build(data: Path, out: Path, settings=TINY, **kwargs):
    return build_cache(data, out, settings, expected_shape=None, progress=False, **kwargs)


def test_cache_round_trip_equals_preprocess_case(tiny_data, tmp_path):
    report = _build(tiny_data, tmp_path / "cache")
    assert report.done == ["Case_A", "Case_B", "Case_C"] and not report.failed
    cache = open_cache(tmp_path / "cache")
    assert cache.case_ids == ("Case_A", "Case_B", "Case_C")
    assert cache.settings == TINY
    assert cache.manifest["data_dir"] == str(tiny_data.resolve())
    for case_id in ("Case_A", "Case_B"):
        images, labels, kept = preprocess_case(
            load_case(case_files(tiny_data / case_id), expected_shape=None), TINY
        )
        np.testing.assert_array_equal(cache.images(case_id), images)
        np.testing.assert_array_equal(cache.labels(case_id), labels)
        np.testing.assert_array_equal(cache.slice_indices(case_id), kept)
        r0, r1, c0, c1 = cache.entry(case_id)["crop"]  # every non-zero pixel is inside
        assert np.count_nonzero(images[:, r0:r1, c0:c1]) == np.count_nonzero(images) > 0
        assert (r1 - r0) * (c1 - c0) < 16 * 16
        np.testing.assert_array_equal(
            cache.read(case_id, np.array([4, 1]), ["t2", "flair"]), images[[4, 1]][..., [2, 3]]
        )
        tumour = np.flatnonzero(labels.reshape(len(labels), -1).any(axis=1))
        np.testing.assert_array_equal(cache.tumour_slices(case_id), tumour)
        entry = cache.manifest["cases"][case_id]
        assert entry["label_counts"] == np.bincount(labels.ravel(), minlength=4).tolist()
    # Case_A's tumour is on z 3..7 -> positions 1..5; Case_B's on z 5..9 -> positions 3..7
    np.testing.assert_array_equal(cache.tumour_slices("Case_A"), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(cache.tumour_slices("Case_B"), [3, 4, 5, 6, 7])
    assert not cache.has_labels("Case_C") and cache.images("Case_C").shape == (8, 16, 16, 4)
    with pytest.raises(CaseError, match="Case_C: was cached without a segmentation"):
        cache.labels("Case_C")


def test_rerun_skips_finished_cases_and_redoes_interrupted_ones(tiny_data, tmp_path):
    out = tmp_path / "cache"
    _build(tiny_data, out)
    cases = out / "cases"
    finished_mtime = (cases / "Case_A.flair.npy").stat().st_mtime_ns
    # Simulate a run killed while writing Case_B: no marker, a damaged array, a stale temp.
    (cases / "Case_B.json").unlink()
    (cases / "Case_B.t1.npy").write_bytes(b"half written")
    stale = cases / ".Case_B.label.npy.abc123.tmp.npy"
    stale.write_bytes(b"junk")
    report = _build(tiny_data, out)
    assert report.skipped == ["Case_A", "Case_C"] and report.done == ["Case_B"]
    assert not stale.exists()
    assert (cases / "Case_A.flair.npy").stat().st_mtime_ns == finished_mtime
    cache = open_cache(out)
    assert cache.case_ids == ("Case_A", "Case_B", "Case_C")
    assert cache.images("Case_B").shape == (8, 16, 16, 4)


def test_keyboard_interrupt_leaves_no_partial_case_and_the_rerun_resumes(
    tiny_data, tmp_path, monkeypatch
):
    import brats_utils.preprocessing.slices as preprocess_module

    real = preprocess_module.preprocess_channels

    def interrupted_on_case_b(channels, seg, settings, case_id):
        if case_id == "Case_B":
            raise KeyboardInterrupt
        return real(channels, seg, settings, case_id)

    monkeypatch.setattr(preprocess_module, "preprocess_channels", interrupted_on_case_b)
    out = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        _build(tiny_data, out)
    files = sorted(p.name for p in (out / "cases").iterdir())
    assert files == [
        "Case_A.flair.npy",
        "Case_A.json",
        "Case_A.label.npy",
        "Case_A.t1.npy",
        "Case_A.t1ce.npy",
        "Case_A.t2.npy",
    ]
    assert list(open_cache(out).case_ids) == ["Case_A"]  # manifest written on the way out
    monkeypatch.setattr(preprocess_module, "preprocess_channels", real)
    report = _build(tiny_data, out)
    assert report.skipped == ["Case_A"] and report.done == ["Case_B", "Case_C"]


def test_different_settings_on_an_existing_cache_are_refused_unless_overwrite(tiny_data, tmp_path):
    out = tmp_path / "cache"
    _build(tiny_data, out, case_ids=["Case_A"])
    other = PreprocessSettings(size=8, slice_start=2, slice_stop=10)
    with pytest.raises(BratsError, match=r"size=16 \(this run: 8\).*another --out.*--overwrite"):
        _build(tiny_data, out, other)
    report = _build(tiny_data, out, other, overwrite=True)
    assert report.done == ["Case_A", "Case_B", "Case_C"] and not report.skipped
    assert open_cache(out).images("Case_A").shape == (8, 8, 8, 4)


def test_a_non_cache_folder_or_unknown_case_is_refused(tiny_data, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(BratsError, match="not a slice cache"):
        _build(tiny_data, tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").exists()
    with pytest.raises(BratsError, match="cases not found.*Case_Z"):
        _build(tiny_data, tmp_path / "cache", case_ids=["Case_Z"])
    with pytest.raises(BratsError, match="no slice cache"):
        open_cache(tmp_path / "nothing")


def test_bad_case_is_reported_and_skipped(tiny_data, tmp_path):
    write_tiny_case(tiny_data, "Case_D", seed=4, drop="t2")
    report = _build(tiny_data, tmp_path / "cache")
    assert report.done == ["Case_A", "Case_B", "Case_C"]
    [(case_id, reason)] = report.failed
    assert case_id == "Case_D" and "missing modality t2" in reason and "Case_D_t2" in reason
    assert "Case_D" not in open_cache(tmp_path / "cache")


@pytest.mark.slow
def test_parallel_build_gives_the_same_cache(tiny_data, tmp_path):
    _build(tiny_data, tmp_path / "serial")
    report = _build(tiny_data, tmp_path / "parallel", workers=2)
    assert sorted(report.done) == ["Case_A", "Case_B", "Case_C"]
    serial, parallel = open_cache(tmp_path / "serial"), open_cache(tmp_path / "parallel")
    assert serial.manifest["cases"] == parallel.manifest["cases"]
    for case_id in serial.case_ids:
        np.testing.assert_array_equal(serial.images(case_id), parallel.images(case_id))


# --- the command -------------------------------------------------------------------------


def test_cli_caches_good_cases_and_exits_1_on_a_bad_one(tmp_path, capsys):
    data = tmp_path / "data"
    shape = (240, 240, 155)  # the CLI checks the BraTS geometry
    write_tiny_case(data, "BraTS2021_00001", shape=shape, tumour_z=(60, 70), radius=0.1)
    write_tiny_case(data, "BraTS2021_00002", shape=(240, 240, 150), seg=False, radius=0.1)
    out = tmp_path / "cache"
    status = main(["preprocess", str(data), "--out", str(out), "--size", "32", "-q"])
    captured = capsys.readouterr()
    assert status == 1
    assert "1 cases preprocessed, 0 already cached, 1 failed" in captured.out
    assert "BraTS2021_00002" in captured.err and "BraTS2021_00002_t1.nii.gz" in captured.err
    cache = open_cache(out)
    assert cache.case_ids == ("BraTS2021_00001",)
    assert cache.images("BraTS2021_00001").shape == (100, 32, 32, 4)
    np.testing.assert_array_equal(cache.slice_indices("BraTS2021_00001"), np.arange(22, 122))
    assert main(["preprocess", str(data), "--out", str(out), "--size", "64", "-q"]) == 2
    assert "built with different settings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["preprocess", str(data), "--out", str(out), "--slices", "9"])
    assert "expected START:STOP" in capsys.readouterr().err


def test_preprocessing_modules_do_not_import_keras():
    modules = (
        "brats_utils.cli.preprocess",
        "brats_utils.preprocessing.slices",
        "brats_utils.preprocessing.cache",
    )
    assert ml_frameworks_loaded_by(*modules) == []


def test_brain_box_is_a_square_around_the_brain_with_a_margin():
    from brats_utils.preprocessing.slices import brain_box, crop_square

    mask = np.zeros((20, 16, 4), dtype=bool)
    mask[5:15, 6:10, 1:3] = True  # 10 x 4 in the axial plane
    x0, y0, side = brain_box(mask, margin=2)
    assert (x0, y0, side) == (3, 1, 14)  # 10 + 2 * 2, centred on the 4-wide axis
    slab = np.arange(20 * 16 * 4).reshape(20, 16, 4)
    crop = crop_square(slab, (x0, y0, side))
    assert crop.shape == (14, 14, 4) and crop.flags.f_contiguous
    np.testing.assert_array_equal(crop[:, :14], slab[3:17, 1:15])
    padded = crop_square(slab, (-2, 10, 8))  # leaves the frame on both axes: zero padding
    assert padded.shape == (8, 8, 4) and not padded[:2].any() and not padded[:, 6:].any()
    np.testing.assert_array_equal(padded[2:, :6], slab[0:6, 10:16])


def test_crop_brain_fills_the_slices_with_brain_and_keeps_labels_hard(tmp_path):
    folder = write_tiny_case(tmp_path, "Case_C", shape=(40, 36, 12), radius=0.3)
    files = case_files(folder)
    plain = PreprocessSettings(size=16, slice_start=2, slice_stop=10)
    cropped = PreprocessSettings(size=16, slice_start=2, slice_stop=10, crop_brain=True)
    images, labels, kept = preprocess_files(files, plain, expected_shape=None)
    images_c, labels_c, kept_c = preprocess_files(files, cropped, expected_shape=None)
    assert images_c.shape == images.shape and np.array_equal(kept, kept_c)
    brain_share = lambda x: np.mean(np.any(x != 0, axis=-1))  # noqa: E731
    assert brain_share(images_c) > 1.5 * brain_share(images)  # the brain fills more of it
    assert set(np.unique(labels_c)) <= {0, 1, 2, 3} and labels_c.any()
    assert not PreprocessSettings.from_dict(plain.to_dict()).crop_brain
    assert PreprocessSettings.from_dict({"size": 16}).crop_brain is False  # older manifests


def test_preprocess_cli_refuses_sizes_and_paths_the_pipeline_cannot_use(tmp_path, capsys):
    data = tmp_path / "data"
    write_tiny_case(data, "Case_S")
    (tmp_path / "file").write_text("x")
    for size in ("40", "7"):
        with pytest.raises(SystemExit):  # argparse's refusal
            main(["preprocess", str(data), "--out", str(tmp_path / "c"), "--size", size, "-q"])
        assert (
            f"--size: expected a multiple of 16 up to 512, got '{size}'" in capsys.readouterr().err
        )
    assert main(["preprocess", str(data), "--out", str(tmp_path / "file"), "-q"]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err
    assert main(["preprocess", str(tmp_path / "file"), "--out", str(tmp_path / "c")]) == 2
    assert "is a file; expected a data folder" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing written


@pytest.mark.slow
def test_train_refuses_a_cache_the_unet_cannot_take_before_making_the_run_folder(tmp_path):
    from brats_utils.training.train import train

    data = tmp_path / "data"
    write_tiny_case(data, "Case_T")
    build_cache(data, tmp_path / "cache", PreprocessSettings(size=24, slice_start=2, slice_stop=10),
                progress=False, expected_shape=None)  # fmt: skip
    with pytest.raises(BratsError, match="U-Net of depth 4 needs a multiple of 16"):
        train("early2", tmp_path / "cache", tmp_path / "run", epochs=1, verbose=0)
    assert not (tmp_path / "run").exists()


def test_slices_all_replaces_the_recipes_range(tmp_path):
    """``--slices all`` keeps every slice, not the baseline's 22:122 (24 slices here)."""
    from brats_utils.data.synth import write_synthetic_dataset
    from brats_utils.preprocessing.cache import open_cache

    write_synthetic_dataset(tmp_path / "data", 1, seed=0, shape=(32, 32, 24), progress=False)
    command = ["preprocess", str(tmp_path / "data"), "--out", str(tmp_path / "c"), "-q"]
    assert main([*command, "--size", "16", "--slices", "all"]) == 0
    cache = open_cache(tmp_path / "c")
    assert cache.n_slices(cache.case_ids[0]) == 24
