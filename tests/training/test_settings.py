"""TrainSettings: one source for the CLI defaults, the notebooks, config.json and --resume."""

from __future__ import annotations

import argparse

import nbformat
import pytest
import yaml
from helpers import REPO_ROOT

from brats_utils.cli import train as train_command
from brats_utils.model.settings import UNetSettings
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.settings import TrainSettings

TRAINING_NOTEBOOKS = (
    "03_unet_early_fusion_4mod",
    "04_unet_mean_fusion_4mod",
    "05_unet_early_fusion_2mod",
)


def test_the_defaults_are_the_seeds_settings():
    settings = TrainSettings()
    assert (settings.epochs, settings.batch_size, settings.learning_rate) == (15, 32, 1e-3)
    assert settings.loss == "ce" and settings.augment == "none"
    assert settings.unet == UNetSettings(depth=4, base_filters=32, dropout=0.2)


def test_config_round_trip_and_older_configs():
    settings = TrainSettings(epochs=3, loss="dice_ce", seed=7, unet=UNetSettings(base_filters=8))
    config = settings.to_config()
    assert config["training"]["optimizer"] == "adam" and config["seed"] == 7
    assert config["model"] == {
        "depth": 4,
        "base_filters": 8,
        "dropout": 0.2,
        "batch_norm": False,
        "upsampling": "upsampling",
        "head": "classes",
        "activation": "relu",
    }
    assert config["training"]["context_slices"] == 1
    assert TrainSettings.from_config(config) == settings
    older = {
        **config,
        "model": {"depth": 4, "base_filters": 8, "dropout": 0.2, "batch_norm": False},
    }
    newer = ("context_slices", "schedule", "pretrained")
    older["training"] = {k: v for k, v in config["training"].items() if k not in newer}
    older["training"]["augment"] = False  # flips were on or off
    assert TrainSettings.from_config(older) == settings  # before `upsampling`, `head`, context
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainSettings.from_config({**config, "training": {"epochs": 1, "momentum": 0.9}})


def test_from_parameters_takes_the_settings_and_ignores_the_rest():
    parameters = {"epochs": 2, "base_filters": 4, "max_cases": 0, "data_dir": "x", "tta": True}
    settings = TrainSettings.from_parameters(parameters)
    assert settings.epochs == 2 and settings.unet.base_filters == 4
    assert settings.max_cases is None  # the notebooks' 0 means every case
    assert settings.batch_size == TrainSettings().batch_size
    assert set(settings.flat()) == set(TrainSettings.names())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"loss": "focal"}, "loss must be one of"),
        ({"learning_rate": 0}, "learning_rate must be > 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be > 0 and < 1000"),
        ({"empty_slice_fraction": 1.5}, "empty_slice_fraction"),
        ({"dropout": 1.0}, "dropout must lie in"),
        ({"upsampling": "bilinear"}, "upsampling must be one of"),
        ({"max_cases": -1}, "max_cases"),
    ],
)
def test_invalid_settings_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings.from_parameters(values)


def test_differences_name_every_changed_setting():
    saved = TrainSettings(batch_size=8)
    now = TrainSettings.from_parameters({"batch_size": 16, "epochs": 3, "depth": 3})
    assert saved.differences(now) == ["batch_size: 8 -> 16", "depth: 4 -> 3", "epochs: 15 -> 3"]
    assert saved.differences(now, ignore=("epochs", "depth", "batch_size")) == []


def test_the_command_line_defaults_are_the_settings_defaults():
    parser = argparse.ArgumentParser()
    train_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--experiment", "early2", "--cache", "c", "--out", "o"])
    assert train_command.settings_from_args(args) == TrainSettings()
    args = parser.parse_args(
        ["train", "--experiment", "early2", "--cache", "c", "--out", "o", "--lr", "0.01",
         "--base-filters", "8", "--batch-norm", "--max-cases", "2"]
    )  # fmt: skip
    settings = train_command.settings_from_args(args)
    assert settings.learning_rate == 0.01 and settings.max_cases == 2
    assert settings.unet == UNetSettings(base_filters=8, batch_norm=True)


def _notebook_defaults(name: str) -> dict:
    nb = nbformat.read(REPO_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(cell.source, namespace)  # typed literals only
    return namespace


@pytest.mark.parametrize("name", TRAINING_NOTEBOOKS)
def test_the_training_notebooks_defaults_are_the_settings_defaults(name):
    defaults = _notebook_defaults(name)
    declared = {k: defaults[k] for k in TrainSettings.names() if k in defaults}
    assert {"epochs", "batch_size", "learning_rate", "loss", "base_filters", "seed"} <= set(
        declared
    )
    assert TrainSettings.from_parameters(declared) == TrainSettings()


def test_the_full_profile_is_the_seeds_settings():
    profile = yaml.safe_load((REPO_ROOT / "notebooks" / "params" / "full.yaml").read_text())
    parameters = profile["parameters"]
    assert TrainSettings.from_parameters(parameters) == TrainSettings()
    preprocessing = PreprocessSettings(
        size=parameters["image_size"],
        slice_start=parameters["slice_start"],
        slice_stop=parameters["slice_stop"],
        normalization=parameters["normalization"],
    )
    assert preprocessing == PreprocessSettings()
    notebook_02 = _notebook_defaults("02_preprocessing")
    assert notebook_02["image_size"] == PreprocessSettings().size
    assert (notebook_02["slice_start"], notebook_02["slice_stop"]) == (22, 122)
