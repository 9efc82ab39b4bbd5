"""fit() on small in-memory batches: run files, refusal of used run folders, resume, flags."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import batches, ml_frameworks_loaded_by, write_tiny_cache

from brats_utils.errors import BratsError
from brats_utils.model.settings import UNetSettings
from brats_utils.model.unet import build_model
from brats_utils.training.fit import (
    _check_divisible,
    compile_model,
    distribution,
    fit,
    precision_policy,
)
from brats_utils.training.run_folder import load_state, prepare_run_dir
from brats_utils.training.settings import TrainSettings

SIZE = 16


def _toy_data(n: int, channels: int = 2, seed: int = 0):
    """Slices whose class is a threshold of channel 0: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZE, SIZE, channels)).astype("float32")
    classes = np.digitize(x[..., 0], [0.0, 0.7, 1.4])
    y = np.eye(4, dtype="float32")[classes]
    return x, y


def _tiny_model(name: str = "early2", loss: str = "ce"):
    keras.utils.set_random_seed(0)
    return compile_model(build_model(name, SIZE, base_filters=4, depth=2), loss, 1e-2)


@pytest.mark.parametrize("loss", ["ce", "dice_ce"])
def test_a_few_steps_lower_the_loss(loss):
    model = _tiny_model(loss=loss)
    x, y = _toy_data(8)
    first = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    for _ in range(30):
        last = float(model.train_on_batch(x, y, return_dict=True)["loss"])
    assert np.isfinite(last) and last < 0.75 * first


def test_fit_writes_run_files(tmp_path):
    model = _tiny_model()
    history = fit(
        model, batches(*_toy_data(8)), batches(*_toy_data(4, seed=1)), tmp_path, epochs=2, verbose=0
    )
    for name in ("model.keras", "model_last.keras", "history.csv", "history.json", "state.json"):
        assert (tmp_path / name).is_file(), name
    assert [record["epoch"] for record in history] == [1, 2]
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert len(rows) == 2
    for key in (
        "loss",
        "dice",
        "mean_iou",
        "dice_et",
        "val_loss",
        "val_dice",
        "val_sensitivity",
        "val_specificity",
        "seconds",
    ):
        assert key in rows[0], key
    assert "dice_enhancing" not in rows[0]  # the same quantity as dice_et: logged once
    assert json.loads((tmp_path / "history.json").read_text()) == history
    state = load_state(tmp_path)
    assert state["epoch"] == 2
    best = min(range(2), key=lambda i: history[i]["val_loss"])
    assert state["best_epoch"] == best + 1
    assert state["best"] == pytest.approx(history[best]["val_loss"])
    assert not list(tmp_path.glob("*.tmp*"))  # no temporary files left behind


class _SavesItsName:
    """Stands in for a Keras model: ``save(path)`` writes a small file."""

    def save(self, path):
        Path(path).write_text("model")


def test_a_non_finite_loss_stops_training_with_an_error_that_says_what_was_kept(tmp_path):
    from brats_utils.training.fit import NonFiniteLossGuard

    x, y = _toy_data(8)
    bad = np.full_like(y, np.nan)  # NaN targets: every batch's loss is NaN
    with pytest.raises(BratsError, match=r"epoch 1, batch 1: the loss became nan; no epoch"):
        fit(_tiny_model(), batches(x, bad), None, tmp_path / "a", epochs=2, verbose=0)
    assert not (tmp_path / "a" / "model.keras").exists()
    with precision_policy(True):  # float16 activations: the advice names --batch-norm
        mixed = _tiny_model()
    with pytest.raises(BratsError, match=r"the loss became nan; .*add --batch-norm"):
        fit(mixed, batches(x, bad), None, tmp_path / "b", epochs=1, verbose=0)
    # The guard remembers the first non-finite batch (1-based epoch and batch).
    guard = NonFiniteLossGuard()
    guard.set_model(_tiny_model())
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(2, {"loss": float("inf")})
    assert guard.stopped == (2, 3, float("inf")) and guard.model.stop_training


def test_run_log_writes_best_and_last_model_history_and_state(tmp_path):
    from brats_utils.training.run_folder import RunLog, load_history

    log = RunLog(tmp_path, monitor="val_loss", target_epochs=3)
    log.end_epoch(_SavesItsName(), 0, {"loss": 1.0, "val_loss": 0.5}, seconds=1.23456)
    (tmp_path / "model.keras").write_text("epoch 1")  # must survive a worse epoch
    record = log.end_epoch(_SavesItsName(), 1, {"loss": 0.9, "val_loss": 0.7}, seconds=2.0)
    assert record == {"epoch": 2, "loss": 0.9, "val_loss": 0.7, "seconds": 2.0}
    assert (tmp_path / "model.keras").read_text() == "epoch 1"
    assert (tmp_path / "model_last.keras").read_text() == "model"
    assert load_state(tmp_path) == {
        "epoch": 2,
        "epochs": 3,
        "monitor": "val_loss",
        "mode": "min",
        "best": 0.5,
        "best_epoch": 1,
    }
    assert [r["seconds"] for r in load_history(tmp_path)] == [1.235, 2.0]
    with pytest.raises(BratsError, match="'val_loss' is not logged"):
        log.end_epoch(_SavesItsName(), 2, {"loss": 0.8}, seconds=1.0)


def test_run_log_can_pick_the_model_by_validation_region_dice(tmp_path):
    from brats_utils.training.run_folder import RunLog, region_dice_of

    def logs(loss, wt, tc, et):
        return {"val_loss": loss, "val_dice_wt": wt, "val_dice_tc": tc, "val_dice_et": et}

    log = RunLog(tmp_path, monitor="val_region_dice", target_epochs=3)
    log.end_epoch(_SavesItsName(), 0, logs(0.5, 0.6, 0.3, 0.3), seconds=1.0)  # mean 0.4
    (tmp_path / "model.keras").write_text("epoch 1")
    record = log.end_epoch(_SavesItsName(), 1, logs(0.4, 0.5, 0.2, 0.2), seconds=1.0)
    assert record["val_region_dice"] == pytest.approx(0.3)
    assert (tmp_path / "model.keras").read_text() == "epoch 1"  # lower loss, lower Dice: kept
    log.end_epoch(_SavesItsName(), 2, logs(0.6, 0.9, 0.6, 0.6), seconds=1.0)  # mean 0.7
    state = load_state(tmp_path)
    assert (state["best_epoch"], state["mode"]) == (3, "max")
    assert state["best"] == pytest.approx(0.7)
    assert region_dice_of({"dice_wt": 1.0, "dice_tc": 0.5}) == {}  # not all three logged


def test_an_epoch_killed_before_or_after_its_state_leaves_models_of_the_state_epoch(tmp_path):
    from brats_utils.training.run_folder import RunLog, finish_epoch_files

    log = RunLog(tmp_path, monitor="val_loss", target_epochs=3)
    log.end_epoch(_SavesItsName(), 0, {"loss": 1.0, "val_loss": 0.5}, seconds=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "history.csv", "history.json", "model.keras", "model_last.keras", "state.json"
    ]  # fmt: skip
    # Killed after epoch 2's models were saved, before its state.json: never committed.
    (tmp_path / ".model_last.epoch2.keras").write_text("epoch 2")
    assert finish_epoch_files(tmp_path) == []
    assert not (tmp_path / ".model_last.epoch2.keras").exists()
    assert (tmp_path / "model_last.keras").read_text() == "model"
    # Killed after epoch 2's state.json, before its models were renamed: put in place.
    (tmp_path / ".model_last.epoch2.keras").write_text("epoch 2")
    (tmp_path / ".model.epoch2.keras").write_text("epoch 2")
    state = json.loads((tmp_path / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps({**state, "epoch": 2, "best_epoch": 2}))
    prepare_run_dir(tmp_path, resume=True)  # what --resume does first
    assert (tmp_path / "model_last.keras").read_text() == "epoch 2"
    assert (tmp_path / "model.keras").read_text() == "epoch 2"
    assert not list(tmp_path.glob(".*"))
    (tmp_path / ".model.epoch3.keras").write_text("epoch 3")
    (tmp_path / ".state.json.x1y2.tmp.json").write_text("half")  # a killed write's temporary
    prepare_run_dir(tmp_path, force=True)  # --force removes pending models too
    assert not list(tmp_path.iterdir())


def test_run_folder_does_not_import_keras():
    assert ml_frameworks_loaded_by("brats_utils.training.run_folder") == []


def test_used_run_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("someone's run")
    with pytest.raises(BratsError, match="not empty"):
        prepare_run_dir(tmp_path)
    with pytest.raises(BratsError, match="cannot resume"):
        prepare_run_dir(tmp_path, resume=True)
    with pytest.raises(BratsError, match="either --resume"):
        prepare_run_dir(tmp_path, resume=True, force=True)
    (tmp_path / "history.csv").write_text("old")
    prepare_run_dir(tmp_path, force=True)
    assert not (tmp_path / "history.csv").exists()
    assert (tmp_path / "notes.txt").exists()  # --force removes only run files
    prepare_run_dir(tmp_path / "new" / "run")
    assert (tmp_path / "new" / "run").is_dir()


@pytest.mark.slow
def test_resume_continues_from_saved_epoch(tmp_path):
    train, val = batches(*_toy_data(8)), batches(*_toy_data(4, seed=1))
    model = _tiny_model()
    fit(model, train, val, tmp_path, epochs=1, verbose=0)  # "interrupted"
    steps_per_epoch = 2
    reloaded = keras.saving.load_model(tmp_path / "model_last.keras")
    assert int(reloaded.optimizer.iterations) == steps_per_epoch  # optimizer state restored
    history = fit(reloaded, train, val, tmp_path, epochs=2, resume=True, verbose=0)
    assert [record["epoch"] for record in history] == [1, 2]
    assert load_state(tmp_path)["epoch"] == 2
    assert int(reloaded.optimizer.iterations) == 2 * steps_per_epoch
    saved = json.loads((tmp_path / "history.json").read_text())
    assert [record["epoch"] for record in saved] == [1, 2]
    # Nothing left to do: a resumed run that reached its epochs returns its history.
    again = fit(reloaded, train, val, tmp_path, epochs=2, resume=True, verbose=0)
    assert len(again) == 2 and int(reloaded.optimizer.iterations) == 2 * steps_per_epoch


def test_mixed_precision_and_data_parallel_flag_paths(tmp_path):
    x, y = _toy_data(4)
    with precision_policy(True), distribution(True, batch_size=4) as devices:
        assert devices >= 1
        model = _tiny_model()
        logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(float(logs["loss"]))
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(BratsError, match="multiple of the 2 devices"):
        _check_divisible(3, 2)


# --- end to end: synthetic cases -> cache -> split -> brats train ------------------------


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """Three small synthetic cases (48 x 48 x 24) cached at 16 x 16, split 1/1/1."""
    return write_tiny_cache(tmp_path_factory.mktemp("tiny"))


@pytest.mark.slow
def test_train_end_to_end_and_resume(tiny_cache, tmp_path, capsys):
    from brats_utils.cli.main import main
    from brats_utils.training.train import train

    run_dir = tmp_path / "run"
    common = dict(epochs=1, batch_size=8, base_filters=4, verbose=0)
    result = train("early2", tiny_cache, run_dir, **common)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["experiment"] == "early2"
    assert config["channels"] == ["flair", "t1ce"]
    assert config["image_size"] == 16 and config["num_classes"] == 4
    assert config["preprocessing"] == {
        "size": 16,
        "slice_start": 4,
        "slice_stop": 20,
        "normalization": "zscore",
        "crop_brain": False,
    }
    assert config["split_file"].endswith("data/split.csv")  # found through the manifest
    assert config["cases"] == {"train": 1, "validation": 1, "test": 1}
    assert config["backend"] in config["versions"]
    assert config["model"] == UNetSettings(base_filters=4).to_dict()  # what build_model built
    assert TrainSettings.from_config(config) == TrainSettings.from_parameters(common)
    assert result["history"][0]["epoch"] == 1 and "val_dice_edema" in result["history"][0]

    # An existing run is never overwritten silently, at the command line neither.
    args = ["train", "--experiment", "early2", "--cache", str(tiny_cache), "--out", str(run_dir)]
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--experiment",
                "early2",
                "--cache",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )

    with pytest.raises(BratsError, match="trains 'early2', not 'mean4'"):
        train("mean4", tiny_cache, run_dir, resume=True, **common)
    # A resume never silently trains on with other settings than the run was started with.
    with pytest.raises(BratsError, match=r"batch_size: 8 -> 16; loss: 'ce' -> 'dice_ce'"):
        train("early2", tiny_cache, run_dir, resume=True, **{**common, "batch_size": 16},
              loss="dice_ce")  # fmt: skip
    resumed = train("early2", tiny_cache, run_dir, resume=True, **{**common, "epochs": 2})
    assert [record["epoch"] for record in resumed["history"]] == [1, 2]
    assert json.loads((run_dir / "config.json").read_text())["training"]["epochs"] == 2


def _history_values(run_dir: Path) -> list[dict[str, str]]:
    """history.csv as printed, every column but the epoch's wall time."""
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.slow
def test_a_resumed_run_trains_exactly_as_an_uninterrupted_one(tiny_cache, tmp_path):
    from brats_utils.training.train import train

    # Dropout (0.2), a random share of empty slices and nnU-Net's augmentation: every random
    # draw of training.
    common = dict(batch_size=4, base_filters=4, augment="nnunet", empty_slice_fraction=0.5,
                  verbose=0)  # fmt: skip
    train("early2", tiny_cache, tmp_path / "whole", epochs=3, **common)
    train("early2", tiny_cache, tmp_path / "resumed", epochs=1, **common)  # "killed" after 1
    train("early2", tiny_cache, tmp_path / "resumed", epochs=3, resume=True, **common)
    whole, resumed = _history_values(tmp_path / "whole"), _history_values(tmp_path / "resumed")
    assert [row["epoch"] for row in resumed] == ["1", "2", "3"]
    assert resumed == whole  # to the last printed digit
    for name in ("model_last.keras", "model.keras"):
        a = keras.saving.load_model(tmp_path / "whole" / name)
        b = keras.saving.load_model(tmp_path / "resumed" / name)
        for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(a.optimizer.variables, b.optimizer.variables, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # Adam's moments too


@pytest.mark.slow
def test_poly_learning_rate_spans_the_run_also_when_a_resume_adds_epochs(tiny_cache, tmp_path):
    from brats_utils.training.train import train

    common = dict(batch_size=4, base_filters=4, schedule="poly", verbose=0)
    train("early2", tiny_cache, tmp_path / "run", epochs=1, **common)
    first = keras.saving.load_model(tmp_path / "run" / "model_last.keras").optimizer
    steps = int(first.iterations)  # one epoch's
    train("early2", tiny_cache, tmp_path / "run", epochs=3, resume=True, **common)
    optimizer = keras.saving.load_model(tmp_path / "run" / "model_last.keras").optimizer
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.PolynomialDecay)
    assert steps > 0 and schedule.decay_steps == int(optimizer.iterations) == 3 * steps
    assert float(optimizer.learning_rate) == 0.0  # the last step reached the end of the decay


@pytest.mark.slow
def test_train_with_mixed_precision_and_data_parallel_flags(tiny_cache, tmp_path):
    from brats_utils.training.train import train

    result = train(
        "mean4",
        tiny_cache,
        tmp_path / "run",
        epochs=1,
        batch_size=8,
        base_filters=4,
        mixed_precision=True,
        data_parallel=True,
        select="val_region_dice",
        verbose=0,
    )
    assert np.isfinite(result["history"][0]["val_loss"])
    assert 0 <= result["history"][0]["val_region_dice"] <= 1
    assert load_state(tmp_path / "run")["monitor"] == "val_region_dice"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["mixed_precision"] and config["training"]["data_parallel"]
    assert keras.config.dtype_policy().name == "float32"
    reloaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert reloaded.output_shape == (None, 16, 16, 4)


def test_pretrained_weights_load_into_the_same_network_only(tmp_path):
    from brats_utils.errors import BratsError
    from brats_utils.model.unet import build_model
    from brats_utils.training.train import _load_weights

    source = build_model("early2", 32, base_filters=4)
    source.save(tmp_path / "model.keras")
    model = build_model("early2", 32, base_filters=4)
    _load_weights(model, tmp_path / "model.keras")
    for a, b in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(BratsError, match="pretrained: .* is another network"):
        _load_weights(build_model("early2", 32, base_filters=8), tmp_path / "model.keras")
    with pytest.raises(BratsError, match="pretrained: no model file"):
        _load_weights(model, tmp_path / "missing.keras")
