"""Tests of whole-volume inference (``brats predict``) with a tiny hand-set Keras model.

The model is a 1x1 convolution whose argmax is ``clip(round(x0), 0, 3)`` of its first input
channel, so the expected classes of every voxel can be computed without Keras.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import SHAPE_SMALL as SHAPE
from helpers import case_files, rounding_model, run_config, write_case_folder, write_run

from brats_utils.cli.main import main
from brats_utils.conventions import (
    GLI2023,
    LEGACY,
    MODALITIES,
    channel_indices,
    classes_from_scores,
    labels_to_classes,
)
from brats_utils.data.cases import load_case
from brats_utils.data.nifti import read_nifti
from brats_utils.data.synth import generate_case
from brats_utils.errors import BratsError
from brats_utils.inference.predict import predict_cases, predict_volume
from brats_utils.inference.run_config import load_models, load_run
from brats_utils.preprocessing.normalize import normalize_image
from brats_utils.preprocessing.settings import PreprocessSettings


def expected_classes(image: np.ndarray, channel: str) -> tuple[np.ndarray, np.ndarray]:
    """Expected classes of the rounding model and a mask of voxels far from rounding ties."""
    x = normalize_image(image, "zscore")[..., MODALITIES.index(channel)]
    classes = np.clip(np.round(x), 0, 3).astype(np.uint8)
    classes[~np.any(image > 0, axis=-1)] = 0
    far_from_tie = np.abs(np.abs(x - np.round(x)) - 0.5) > 1e-3
    return classes, far_from_tie


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return generate_case(seed=3, index=0, shape=SHAPE).image.astype(np.float32)


@pytest.fixture(scope="module")
def run_model(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("run"), size=SHAPE[0])


# ---------------------------------------------------------------- predict_volume


@pytest.mark.parametrize("channels", [("flair", "t1ce"), ("t1ce", "flair")])
def test_predict_classes_normalises_and_orders_channels_like_the_config(image, channels):
    settings = PreprocessSettings(size=SHAPE[0], slice_start=0, slice_stop=None)
    model = rounding_model(SHAPE[0], 2)
    classes = classes_from_scores(
        predict_volume(model, image, run_config(settings, channels), batch_size=5)
    )
    expected, far = expected_classes(image, channels[0])
    assert classes.shape == SHAPE and classes.dtype == np.uint8
    np.testing.assert_array_equal(classes[far], expected[far])
    assert set(np.unique(expected)) == {0, 1, 2, 3}  # the test sees every class


def test_predict_volume_probabilities_after_resizing(image):
    settings = PreprocessSettings(size=16, slice_start=30, slice_stop=40)  # range is ignored
    probs = predict_volume(rounding_model(16, 2), image, run_config(settings))
    assert probs.shape == (*SHAPE, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    outside = ~np.any(image > 0, axis=-1)
    assert outside.any()
    np.testing.assert_array_equal(probs[outside], [[1, 0, 0, 0]] * int(outside.sum()))
    assert probs.argmax(axis=-1).any()  # the tumour survives the 32 -> 16 -> 32 round trip


def test_tta_matches_plain_prediction_for_a_flip_equivariant_model(image):
    settings = PreprocessSettings(size=16, slice_start=0, slice_stop=None)
    model = rounding_model(16, 2)
    plain = predict_volume(model, image, run_config(settings))
    tta = predict_volume(model, image, run_config(settings), tta=True)
    np.testing.assert_allclose(tta, plain, atol=1e-5)


def test_tta_averages_flipped_back_predictions():
    """A model that is not flip-equivariant: TTA gives the mean of the three predictions."""
    import keras

    size = 8
    inputs = keras.Input((size, size, 2))
    dense = keras.layers.Dense(size * size * 4)
    logits = keras.layers.Reshape((size, size, 4))(dense(keras.layers.Flatten()(inputs)))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    rng = np.random.default_rng(0)
    image = rng.uniform(1, 100, size=(size, size, 3, 4)).astype(np.float32)
    settings = PreprocessSettings(size=size, slice_start=0, slice_stop=None)
    tta = predict_volume(model, image, run_config(settings), tta=True)
    x = np.moveaxis(normalize_image(image)[..., channel_indices(("flair", "t1ce"))], 2, 0)
    x = x.astype(np.float16).astype(np.float32)  # model input holds float16 values
    runs = [model.predict(x, verbose=0)]
    for axis in (1, 2):
        runs.append(np.flip(model.predict(np.flip(x, axis=axis), verbose=0), axis=axis))
    expected = np.moveaxis(np.mean(runs, axis=0), 0, 2)
    np.testing.assert_allclose(tta, expected, atol=1e-5)
    assert not np.allclose(runs[0], runs[1], atol=1e-3)  # the flips do change the output


def test_predict_volume_rejects_bad_inputs(image):
    settings = PreprocessSettings(size=16)
    model = rounding_model(16, 2)
    with pytest.raises(BratsError, match="subset"):
        predict_volume(model, image, run_config(settings, ["flair", "dwi"]))
    with pytest.raises(ValueError, match="batch_size"):
        predict_volume(model, image, run_config(settings), batch_size=0)
    # a frame that is not square is padded to a square (as the cache does), not refused
    narrow = predict_volume(model, image[:, :20], run_config(settings), case_id="c1")
    assert narrow.shape == (*image[:, :20].shape[:3], 4)
    with pytest.raises(BratsError, match=r"\(X, Y, Z, 4\)"):
        predict_volume(model, image[..., :2], run_config(settings))


# ---------------------------------------------------------------- load_run


def test_load_run_returns_model_and_config(run_model):
    model, config = load_run(run_model)
    assert config["experiment"] == "early2"
    assert tuple(model.inputs[0].shape)[1:] == (SHAPE[0], SHAPE[0], 2)


def test_load_run_refuses_missing_config(tmp_path):
    model_path = write_run(tmp_path / "run", size=16)
    (model_path.parent / "config.json").unlink()
    with pytest.raises(BratsError, match="config"):
        load_run(model_path)


def test_load_run_refuses_unknown_experiment(tmp_path):
    model_path = write_run(tmp_path / "run", size=16, experiment="late7")
    with pytest.raises(BratsError, match="unknown experiment 'late7'"):
        load_run(model_path)


def test_load_run_refuses_channel_mismatch(tmp_path):
    model_path = write_run(tmp_path / "run", size=16)
    config_path = model_path.parent / "config.json"
    config = json.loads(config_path.read_text())
    config.update(experiment="early4", channels=list(MODALITIES))  # model takes 2 channels
    config_path.write_text(json.dumps(config))
    with pytest.raises(BratsError, match="2 input channels"):
        load_run(model_path)


def test_load_run_refuses_size_mismatch(tmp_path):
    model_path = write_run(tmp_path / "run", size=16)
    config_path = model_path.parent / "config.json"
    config = json.loads(config_path.read_text())
    config["image_size"] = config["preprocessing"]["size"] = 32
    config_path.write_text(json.dumps(config))
    with pytest.raises(BratsError, match="16x16"):
        load_run(model_path)


def test_load_models_missing_model(tmp_path):
    with pytest.raises(BratsError, match="expected RUN_DIR/model.keras"):
        load_models(tmp_path / "model.keras")


# ---------------------------------------------------------------- predict_cases / CLI


@pytest.mark.parametrize(
    "release, case_id", [(LEGACY, "BraTS2021_00007"), (GLI2023, "BraTS-GLI-00007-000")]
)
def test_predictions_round_trip_labels_affine_and_header(tmp_path, run_model, release, case_id):
    data = tmp_path / "data"
    write_case_folder(data, case_id, release, index=1)
    report = predict_cases(run_model, data, tmp_path / "pred", progress=False)
    assert report.ok and report.written == [tmp_path / "pred" / f"{case_id}.nii.gz"]

    labels, written = read_nifti(report.written[0])
    case = load_case(case_files(data / case_id), expected_shape=None)
    assert labels.dtype == np.uint8 and labels.shape == SHAPE
    assert set(np.unique(labels)) == set(release.labels)  # ET written as 4 (2021) or 3 (2023+)
    model, config = load_run(run_model)
    direct = classes_from_scores(predict_volume(model, case.image, config))
    np.testing.assert_array_equal(labels_to_classes(labels, release), direct)
    np.testing.assert_allclose(written.affine, case.affine)
    assert written.header["descrip"].tobytes().rstrip(b"\0") == b"source header"
    assert written.header.get_xyzt_units() == ("mm", "sec")


def test_predict_cases_skips_existing_overwrites_and_reports_bad_cases(tmp_path, run_model):
    data, out = tmp_path / "data", tmp_path / "pred"
    write_case_folder(data, "BraTS2021_00001", LEGACY, index=1)
    write_case_folder(data, "BraTS2021_00002", LEGACY, index=2, with_seg=False)  # validation
    broken = write_case_folder(data, "BraTS2021_00003", LEGACY, index=3)
    (broken / "BraTS2021_00003_t2.nii.gz").unlink()

    report = predict_cases(run_model, data, out, progress=False)
    assert [p.name for p in report.written] == ["BraTS2021_00001.nii.gz", "BraTS2021_00002.nii.gz"]
    assert list(report.failed) == ["BraTS2021_00003"]
    assert "t2" in report.failed["BraTS2021_00003"]
    assert not report.ok and not (out / "BraTS2021_00003.nii.gz").exists()

    first = out / "BraTS2021_00001.nii.gz"
    first.write_bytes(b"stale")
    again = predict_cases(run_model, data, out, progress=False, case_ids=["BraTS2021_00001"])
    assert again.skipped == ["BraTS2021_00001"] and first.read_bytes() == b"stale"
    again = predict_cases(
        run_model, data, out, overwrite=True, progress=False, case_ids=["BraTS2021_00001"]
    )
    assert again.written == [first] and read_nifti(first)[0].shape == SHAPE


def test_predict_cli_single_case_folder_and_exit_codes(tmp_path, run_model, capsys):
    data = tmp_path / "data"
    folder = write_case_folder(data, "BraTS2021_00005", LEGACY, index=5)
    out = tmp_path / "pred"
    args = ["predict", "--model", str(run_model), "--input", str(folder), "--out", str(out)]
    assert main([*args, "--batch-size", "4", "--tta"]) == 0
    assert (out / "BraTS2021_00005.nii.gz").is_file()
    assert main(args) == 0
    assert "skipped 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:  # refused by argparse
        main([*args, "--batch-size", "0"])
    assert exited.value.code == 2 and "--batch-size" in capsys.readouterr().err
    missing = ["predict", "--model", str(tmp_path / "nope.keras"), "--input", str(folder)]
    assert main([*missing, "--out", str(out)]) == 2


# ---------------------------------------------------------------- end to end with training


@pytest.mark.slow
def test_train_predict_evaluate_end_to_end(tmp_path):
    """A one-epoch run of the real training code, predicted and scored on its test case."""
    from brats_utils.data.split import save_split
    from brats_utils.data.synth import write_synthetic_dataset
    from brats_utils.evaluation.volumes import METRIC_COLUMNS, evaluate_folder
    from brats_utils.preprocessing.cache_build import build_cache
    from brats_utils.training.train import train

    data = tmp_path / "data"
    folders = write_synthetic_dataset(data, n_cases=4, seed=1, shape=SHAPE, progress=False)
    ids = [f.name for f in folders]
    save_split(
        dict(zip(ids, ["train", "train", "validation", "test"], strict=True)), data / "split.csv"
    )
    settings = PreprocessSettings(size=16, slice_start=2, slice_stop=14)
    build_cache(data, tmp_path / "cache", settings, progress=False, expected_shape=None)
    result = train("early2", tmp_path / "cache", tmp_path / "run", epochs=1, batch_size=8,
                   base_filters=4, verbose=0)  # fmt: skip
    model_path = tmp_path / "run" / "model.keras"
    assert result["config"]["channels"] == ["flair", "t1ce"] and model_path.is_file()

    args = ["--model", str(model_path), "--input", str(data), "--out", str(tmp_path / "pred")]
    assert main(["predict", *args, "--split", str(data / "split.csv")]) == 0
    assert [p.name for p in (tmp_path / "pred").iterdir()] == [f"{ids[3]}.nii.gz"]
    df = evaluate_folder(tmp_path / "pred", data, progress=False, case_ids=[ids[3]])
    assert list(df.columns[: len(METRIC_COLUMNS)]) == list(METRIC_COLUMNS)
    assert df["status"].tolist() == ["ok"]
    assert df[list(METRIC_COLUMNS[1:])].notna().all(axis=None)


def test_predict_cli_refuses_missing_model_without_importing_keras(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from brats_utils.cli.main import main; "
        f"rc = main(['predict', '--model', {str(tmp_path / 'nope.keras')!r}, "
        f"'--input', {str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r}]); "
        "assert rc == 2, rc; assert 'keras' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "nope.keras not found; expected a model file" in result.stderr


def test_brain_crop_puts_the_probabilities_back_into_the_frame(image):
    model = rounding_model(16, 2)
    plain = PreprocessSettings(size=16, slice_start=0, slice_stop=None)
    cropped = PreprocessSettings(size=16, slice_start=0, slice_stop=None, crop_brain=True)
    a = predict_volume(model, image, run_config(plain))
    b = predict_volume(model, image, run_config(cropped))
    assert b.shape == a.shape == (*SHAPE, 4)
    np.testing.assert_allclose(b.sum(axis=-1), 1.0, atol=1e-5)
    brain = np.any(image > 0, axis=-1)
    assert np.all(b[~brain] == np.eye(4, dtype=np.float32)[0])
    # The same model sees the brain at a finer resolution: mostly the same classes.
    agree = np.mean(a.argmax(-1)[brain] == b.argmax(-1)[brain])
    assert agree > 0.8
    non_square = np.ascontiguousarray(image[:, :-4])  # allowed with the crop
    assert predict_volume(model, non_square, run_config(cropped)).shape[:2] == (32, 28)
