"""``brats train``: one fusion experiment trained on a slice cache, from start or resumed.

:func:`train` reads the cache and the split, checks a resumed run's settings, builds the
experiment's model from :class:`~brats_utils.training.settings.TrainSettings`, writes
``config.json`` (everything inference needs to re-apply the same preprocessing, the settings
the model was built and trained with, the seed and the versions) and calls
:func:`~brats_utils.training.fit.fit`. Each step is a function of its own below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from brats_utils.conventions import NUM_CLASSES
from brats_utils.data.split import SPLITS, load_split, resolve_split
from brats_utils.errors import BratsError
from brats_utils.model.experiments import Experiment, get_experiment
from brats_utils.model.unet import build_model
from brats_utils.preprocessing.cache import SliceCache, open_cache
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.provenance import versions
from brats_utils.training.fit import compile_model, distribution, fit, precision_policy
from brats_utils.training.loader import SliceDataset
from brats_utils.training.recipes import Recipe, get_recipe
from brats_utils.training.run_folder import (
    CONFIG_FILE,
    load_config,
    load_state,
    prepare_run_dir,
    write_config,
)
from brats_utils.training.settings import TrainSettings

__all__ = ["prepare_run", "train", "run_cases", "run_config"]


def run_cases(
    cache: SliceCache, split: dict[str, str], max_cases: int | None
) -> dict[str, list[str]]:
    """Case ids per part of the split (sorted), at most ``max_cases`` per part if given.

    Raises:
        BratsError: train/validation cases missing from the cache, or no training case.
    """
    cached = set(cache.case_ids)
    missing = sorted(
        case for case, subset in split.items() if subset != "test" and case not in cached
    )
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise BratsError(
            f"{len(missing)} train/validation cases of the split are not in the cache "
            f"{cache.cache_dir}: {shown} (rebuild the cache with `brats preprocess`, or use the "
            "split of the data this cache was built from)"
        )
    cases = {part: sorted(c for c, p in split.items() if p == part) for part in SPLITS}
    if max_cases is not None:
        cases = {part: ids[:max_cases] for part, ids in cases.items()}
    if not cases["train"]:
        raise BratsError("the split has no training cases")
    return cases


def run_config(
    experiment: Experiment,
    settings: TrainSettings,
    cache: SliceCache,
    split_path: Path,
    cases: dict[str, list[str]],
) -> dict[str, Any]:
    """The ``config.json`` of a run (see :mod:`brats_utils.training.run_folder`)."""
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "channels": list(experiment.channels),
        "fusion": experiment.fusion,
        "image_size": cache.settings.size,
        "num_classes": NUM_CLASSES,
        "preprocessing": cache.settings.to_dict(),
        **settings.to_config(),
        "backend": keras.backend.backend(),
        "versions": versions(),
        "data_dir": cache.manifest.get("data_dir"),
        "cache_dir": str(Path(cache.cache_dir).resolve()),
        "split_file": str(split_path.resolve()),
        "cases": {part: len(ids) for part, ids in cases.items()},
        "case_ids": {part: cases[part] for part in ("train", "validation")},
    }


def _resumed_config(
    run_dir: Path, experiment: Experiment, settings: TrainSettings, config: dict[str, Any]
) -> dict[str, Any]:
    """The saved config of the run to resume, with the new epoch target.

    Raises:
        BratsError: a run of another experiment, or any setting other than ``epochs`` that
            differs from the saved one (model, training, preprocessing, channels).
    """
    previous = load_config(run_dir)
    if previous.get("experiment") != experiment.name:
        raise BratsError(
            f"cannot resume {run_dir}: it trains {previous.get('experiment')!r}, "
            f"not {experiment.name!r}"
        )
    try:
        saved = TrainSettings.from_config(previous)
        saved_preprocessing = PreprocessSettings.from_dict(previous.get("preprocessing", {}))
    except (TypeError, ValueError) as exc:
        raise BratsError(f"cannot resume {run_dir}: unreadable {CONFIG_FILE}: {exc}") from exc
    changed = saved.differences(settings, ignore=("epochs",))
    now_preprocessing = PreprocessSettings.from_dict(config["preprocessing"])
    changed += _preprocessing_differences(saved_preprocessing, now_preprocessing)
    if previous.get("channels") != config["channels"]:
        changed.append(f"channels: {previous.get('channels')!r} -> {config['channels']!r}")
    if changed:
        raise BratsError(
            f"cannot resume {run_dir}: it was started with other settings ("
            + "; ".join(changed)
            + f"). Pass the saved values again ({CONFIG_FILE}), or start a new run folder"
        )
    previous["training"]["epochs"] = settings.epochs
    return previous


def _preprocessing_differences(saved: PreprocessSettings, now: PreprocessSettings) -> list[str]:
    old, new = saved.to_dict(), now.to_dict()
    return [f"{k}: {old[k]!r} -> {new[k]!r}" for k in sorted(old) if old[k] != new[k]]


def _datasets(
    cache: SliceCache,
    cases: dict[str, list[str]],
    experiment: Experiment,
    settings: TrainSettings,
    workers: int,
) -> tuple[SliceDataset, SliceDataset | None]:
    """The training loader (shuffled, subsampled, augmented) and the validation loader."""
    common = dict(
        channels=experiment.channels,
        batch_size=settings.batch_size,
        seed=settings.seed,
        context=settings.context_slices,
    )
    train_data = SliceDataset(
        cache,
        cases["train"],
        shuffle=True,
        augment=settings.augment,
        empty_slice_fraction=settings.empty_slice_fraction,
        workers=workers,
        **common,
    )
    val_data = None
    if cases["validation"]:
        val_data = SliceDataset(
            cache, cases["validation"], shuffle=False, augment=False, workers=workers, **common
        )
    return train_data, val_data


def _model(run_dir: Path, experiment: Experiment, settings: TrainSettings, size: int, resume: bool):
    """``model_last.keras`` of the run to resume, or a new compiled model of ``settings``."""
    if resume:
        return keras.saving.load_model(run_dir / "model_last.keras")
    model = build_model(experiment, size, settings.unet, context=settings.context_slices)
    return compile_model(model, settings.loss, settings.learning_rate)


def _settings(settings: TrainSettings | None, overrides: dict[str, Any]) -> TrainSettings:
    """``settings`` (default the defaults) with ``overrides`` by flat name, checked."""
    unknown = sorted(set(overrides) - set(TrainSettings.names()))
    if unknown:
        raise TypeError(f"train() got unknown settings {unknown}")
    try:
        return TrainSettings.from_parameters(overrides, base=settings)
    except ValueError as exc:
        raise BratsError(str(exc)) from exc


def prepare_run(
    experiment: str | Experiment,
    cache_dir: Path | str,
    run_dir: Path | str,
    settings: TrainSettings | None = None,
    *,
    split: Path | str | None = None,
    resume: bool = False,
    force: bool = False,
    workers: int = 1,
    verbose: str | int = "auto",
    recipe: Recipe | str = "seed",
) -> tuple[SliceDataset, SliceDataset | None]:
    """Everything before ``model.fit``: the run folder with its ``config.json``, and the loaders.

    Checks the cache against the U-Net's depth, reads the split, prepares ``run_dir``
    (:func:`~brats_utils.training.run_folder.prepare_run_dir`; a resumed run's settings are
    checked against its ``config.json``), writes ``config.json`` (:func:`run_config`), seeds
    Keras with ``settings.seed`` and makes the loaders; a resumed run's training loader starts
    at its next epoch. Arguments as in :func:`train`.

    Returns:
        ``(train_data, val_data)``: :class:`~brats_utils.training.loader.SliceDataset` s,
        ``val_data`` ``None`` without validation cases.
    """
    settings = settings or TrainSettings()
    experiment = get_experiment(experiment)
    run_dir = Path(run_dir)
    say = print if verbose != 0 else (lambda *a, **k: None)
    cache = open_cache(cache_dir)
    factor = 2**settings.unet.depth
    if cache.settings.size % factor:
        raise BratsError(
            f"the cache {cache_dir} holds {cache.settings.size} x {cache.settings.size} slices, "
            f"but a U-Net of depth {settings.unet.depth} needs a multiple of {factor}; rebuild "
            "it with `brats preprocess --size` a multiple of that"
        )
    split_path, how = resolve_split(split, cache.manifest.get("data_dir"))
    cases = run_cases(cache, load_split(split_path), settings.max_cases)
    prepare_run_dir(run_dir, resume=resume, force=force)
    config = {**run_config(experiment, settings, cache, split_path, cases),
              **get_recipe(recipe).to_config()}  # fmt: skip
    if resume:
        config = _resumed_config(run_dir, experiment, settings, config)
    write_config(run_dir, config)
    say(f"experiment {experiment.name}: {experiment.description}")
    say(f"split {split_path} ({how}); cases {config['cases']}")
    keras.utils.set_random_seed(settings.seed)
    train_data, val_data = _datasets(cache, cases, experiment, settings, workers)
    if resume:
        train_data.set_epoch(load_state(run_dir)["epoch"])
    return train_data, val_data


def train(
    experiment: str | Experiment,
    cache_dir: Path | str,
    run_dir: Path | str,
    settings: TrainSettings | None = None,
    *,
    split: Path | str | None = None,
    resume: bool = False,
    force: bool = False,
    workers: int = 1,
    verbose: str | int = "auto",
    recipe: Recipe | str = "seed",
    **overrides: Any,
) -> dict[str, Any]:
    """Train one experiment on a slice cache (``brats train``): :func:`prepare_run`, then the
    model (new and compiled, or ``model_last.keras`` to resume) and
    :func:`~brats_utils.training.fit.fit`.

    Args:
        experiment: an experiment name (``early4``, ``mean4``, ``early2``) or object.
        cache_dir: slice cache from ``brats preprocess``.
        run_dir: run folder; must be empty or missing unless ``resume`` or ``force``.
        settings: what to train with (default :class:`TrainSettings()`, the seed's).
        split: split CSV (``case,split``); default ``split.csv`` of the data folder the
            cache was built from (:func:`brats_utils.data.split.resolve_split`).
        resume: continue an interrupted run from its last finished epoch; every setting but
            ``epochs`` must be the run's.
        force: start over in a non-empty ``run_dir`` (its run files are removed first).
        workers: loader worker threads (``keras.utils.PyDataset`` ``workers``).
        verbose: Keras' progress display; 0 also silences the lines this function prints.
        recipe: the recipe the settings came from, recorded in ``config.json`` with its
            inference settings (``"recipe"``, ``"inference"``; see
            :mod:`brats_utils.training.recipes`).
        **overrides: settings by flat name (``epochs=1, base_filters=4``; see
            :meth:`TrainSettings.names`) replacing those of ``settings``.

    Returns:
        ``{"run_dir", "config", "history", "best_epoch", "best_val_loss"}``.

    Raises:
        BratsError: unknown experiment, missing cache/split, split cases missing from the
            cache, a non-empty run folder, a resume with other settings.
        TypeError: an override that is not a setting.
    """
    settings = _settings(settings, overrides)
    experiment = get_experiment(experiment)
    run_dir = Path(run_dir)
    train_data, val_data = prepare_run(
        experiment, cache_dir, run_dir, settings, split=split, resume=resume, force=force,
        workers=workers, verbose=verbose, recipe=recipe,
    )  # fmt: skip
    config = load_config(run_dir)
    with (
        precision_policy(settings.mixed_precision),
        distribution(settings.data_parallel, settings.batch_size),
    ):
        model = _model(run_dir, experiment, settings, config["image_size"], resume)
        history = fit(
            model,
            train_data,
            val_data,
            run_dir,
            epochs=settings.epochs,
            resume=resume,
            select=settings.select,
            seed=settings.seed,
            verbose=verbose,
        )
    state = load_state(run_dir) if (run_dir / "state.json").exists() else {}
    if verbose != 0:
        print(f"best epoch {state.get('best_epoch')} ({state.get('monitor')} {state.get('best')})")
    return {
        "run_dir": str(run_dir),
        "config": config,
        "history": history,
        "best_epoch": state.get("best_epoch"),
        "best_val_loss": state.get("best"),
    }
