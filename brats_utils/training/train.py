"""``brats train``: one fusion experiment trained on a slice cache, from start or resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from brats_utils.conventions import NUM_CLASSES
from brats_utils.data.split import SPLITS, cases_in, load_split, resolve_split
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
    """Sorted case ids per part of the split, at most ``max_cases`` each; a BratsError if
    train/validation cases are missing from the cache or none is for training."""
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
    cases = {part: cases_in(split, part)[:max_cases] for part in SPLITS}
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
    """The ``config.json`` of a run."""
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
    """The saved config of the run to resume, new ``epochs``; a BratsError if else changed."""
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
    old, new = saved_preprocessing.to_dict(), config["preprocessing"]
    for key in sorted(old | new):
        if old.get(key) != new.get(key):
            changed.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
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
    recipe: Recipe | str = "baseline",
) -> tuple[SliceDataset, SliceDataset | None]:
    """Everything before ``model.fit``: run folder, seeds, ``(train_data, val_data or None)``."""
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
    fewest = min((cache.n_slices(case_id) for case_id in cache.case_ids), default=0)
    if settings.context_slices > fewest:
        raise BratsError(
            f"--context-slices {settings.context_slices}: the cache {cache_dir} has cases of "
            f"{fewest} slices; choose an odd number up to {fewest}"
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
    common = dict(
        channels=experiment.channels,
        batch_size=settings.batch_size,
        seed=settings.seed,
        context=settings.context_slices,
        workers=workers,
    )
    train_data = SliceDataset(
        cache,
        cases["train"],
        shuffle=True,
        augment=settings.augment,
        empty_slice_fraction=settings.empty_slice_fraction,
        **common,
    )
    val_data = None
    if cases["validation"]:
        val_data = SliceDataset(cache, cases["validation"], shuffle=False, augment=False, **common)
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
    recipe: Recipe | str = "baseline",
    **overrides: Any,
) -> dict[str, Any]:
    """Train one experiment on a slice cache (``brats train``).

    ``run_dir`` must be empty or missing unless ``resume`` (every setting but ``epochs`` must be
    the run's) or ``force`` (its run files are removed first); ``split`` default: the cache's
    data folder's ``split.csv``. Returns ``{"run_dir", "config", "history", "best_epoch",
    "best_val_loss"}``.
    """
    unknown = sorted(set(overrides) - set(TrainSettings.names()))
    if unknown:
        raise TypeError(f"train() got unknown settings {unknown}")
    try:
        settings = TrainSettings.from_parameters(overrides, base=settings)
    except ValueError as exc:
        raise BratsError(str(exc)) from exc
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
        rate = settings.learning_rate
        if settings.schedule == "poly":  # (1 - step / steps)**0.9: to 0 at the last step
            steps = settings.epochs * len(train_data)
            rate = keras.optimizers.schedules.PolynomialDecay(rate, steps, 0.0, power=0.9)
        if resume:
            model = keras.saving.load_model(run_dir / "model_last.keras")
            if settings.schedule == "poly":  # over the run's epochs, which may have grown
                model.optimizer.learning_rate = rate
        else:
            model = build_model(
                experiment, config["image_size"], settings.unet, context=settings.context_slices
            )
            if settings.pretrained:
                _load_weights(model, Path(settings.pretrained))
            compile_model(model, settings.loss, rate)
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


def _load_weights(model: keras.Model, path: Path) -> None:
    """Start from the weights of ``path`` (pretraining), refusing another network."""
    if not path.is_file():
        raise BratsError(f"pretrained: no model file {path}")
    source = keras.saving.load_model(path, compile=False)
    mine, theirs = [w.shape for w in model.weights], [w.shape for w in source.weights]
    if mine != theirs:
        raise BratsError(
            f"pretrained: {path} is another network ({len(theirs)} weights, {len(mine)} here, "
            "or other shapes); pretrain with the same experiment, size, context and U-Net"
        )
    model.set_weights(source.get_weights())
