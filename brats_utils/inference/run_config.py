"""A trained run as inference needs it: the model, and the settings it was trained with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brats_utils.conventions import MODALITIES, NUM_CLASSES, REGION_OUTPUTS
from brats_utils.errors import BratsError
from brats_utils.files import read_json
from brats_utils.model.experiments import get_experiment
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.run_folder import CONFIG_FILE

__all__ = [
    "run_settings",
    "run_context",
    "load_run",
    "model_files",
    "load_models",
]


def run_settings(config: dict[str, Any]) -> tuple[PreprocessSettings, tuple[str, ...]]:
    """Preprocessing settings and channels of a run config, checked against each other."""
    experiment = get_experiment(config["experiment"])
    channels = tuple(config["channels"])
    unknown = [c for c in channels if c not in MODALITIES]
    if unknown or not channels:
        raise BratsError(f"run config channels {list(channels)} must be a subset of {MODALITIES}")
    if len(channels) != len(experiment.channels):
        raise BratsError(
            f"run config has channels {list(channels)} but experiment {experiment.name!r} "
            f"takes {len(experiment.channels)} channels {list(experiment.channels)}"
        )
    try:
        settings = PreprocessSettings.from_dict(config["preprocessing"])
    except (TypeError, ValueError) as exc:
        raise BratsError(f"run config preprocessing settings are invalid: {exc}") from exc
    if int(config["image_size"]) != settings.size:
        raise BratsError(
            f"run config image_size {config['image_size']} differs from the preprocessing "
            f"size {settings.size}"
        )
    if int(config.get("num_classes", NUM_CLASSES)) != NUM_CLASSES:
        raise BratsError(f"run config num_classes {config['num_classes']}, expected {NUM_CLASSES}")
    return settings, channels


def run_context(config: dict[str, Any]) -> int:
    """The 2.5D context slices a run was trained with (1 for runs that predate the setting)."""
    context = config.get("training", {}).get("context_slices", 1)
    if type(context) is not int or context < 1 or context % 2 == 0:  # bool is no int here
        raise BratsError(
            f"run config context_slices must be an odd positive integer, got {context!r}"
        )
    return context


def load_run(model_path: Path | str):
    """``(model, config)``: ``RUN_DIR/model.keras`` (not compiled) and its ``config.json``."""
    import keras

    import brats_utils.model.unet  # noqa: F401  (registers the custom layers)

    model_path = Path(model_path)
    config_path = model_path.parent / CONFIG_FILE
    if not config_path.is_file():
        raise BratsError(
            f"no run config {config_path} beside the model; expected the run folder written by "
            "`brats train` (model.keras with config.json)"
        )
    config = read_json(config_path, "run config")
    missing = [
        k for k in ("experiment", "channels", "image_size", "preprocessing") if k not in config
    ]
    if missing:
        raise BratsError(f"{config_path}: missing keys {missing}")
    settings, channels = run_settings(config)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise BratsError(f"{model_path}: not a loadable Keras model: {exc}") from exc
    input_shape = tuple(model.inputs[0].shape)
    if len(model.inputs) != 1 or len(input_shape) != 4:
        raise BratsError(f"{model_path}: expected one (B, H, W, C) input, got {model.inputs}")
    context = run_context(config)
    if input_shape[-1] != context * len(channels):
        raise BratsError(
            f"{model_path}: model takes {input_shape[-1]} input channels but config.json says "
            f"{context} x {len(channels)} ({context} slices of {list(channels)}); the model and "
            "config are from different runs"
        )
    if any(s is not None and s != settings.size for s in input_shape[1:3]):
        raise BratsError(
            f"{model_path}: model takes {input_shape[1]}x{input_shape[2]} slices but "
            f"config.json says image_size {settings.size}"
        )
    if tuple(model.outputs[0].shape)[-1] not in (NUM_CLASSES, REGION_OUTPUTS):
        raise BratsError(
            f"{model_path}: model outputs {tuple(model.outputs[0].shape)[-1]} channels, "
            f"expected {NUM_CLASSES} classes or {REGION_OUTPUTS} regions"
        )
    return model, config


def model_files(model_path: Path | str) -> tuple[list[Path], Path]:
    """The model files of a model file, run folder or ensemble folder, and their postprocessing."""
    path = Path(model_path)
    if path.is_file():
        return [path], path.parent
    if (path / "model.keras").is_file():
        return [path / "model.keras"], path
    if path.is_dir():
        members = sorted(p / "model.keras" for p in path.iterdir() if (p / "model.keras").is_file())
        if members:
            return members, path
    raise BratsError(
        f"--model {path}: expected RUN_DIR/model.keras, a run folder, or a folder of run "
        "folders (an ensemble)"
    )


def load_models(model_path: Path | str) -> tuple[list[tuple[Any, dict[str, Any]]], Path]:
    """``([(model, config), ...], home)``: :func:`load_run` of every :func:`model_files`."""
    paths, home = model_files(model_path)
    members = [load_run(p) for p in paths]
    outputs = {int(model.outputs[0].shape[-1]) for model, _ in members}
    if len(outputs) > 1:
        raise BratsError(
            f"{model_path}: the ensemble mixes class and region models ({sorted(outputs)} "
            "output channels); their scores cannot be averaged"
        )
    return members, home
