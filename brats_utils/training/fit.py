"""Training runs: compile, fit, resume.

:func:`fit` trains a compiled model on any data Keras accepts (a ``PyDataset`` such as
:class:`~brats_utils.training.loader.SliceDataset`, or in-memory ``(x, y)`` arrays) and keeps a run
folder up to date after every epoch (``model.keras``, ``model_last.keras``, ``history.csv``,
``history.json``, ``state.json``; see :mod:`brats_utils.training.run_folder`, which reads and writes
these files without Keras and whose names used here are re-exported).

:func:`train` is ``brats train``: it reads the slice cache and the split, builds the
experiment's model, writes ``config.json`` (everything inference needs to re-apply the same
preprocessing, plus training settings, seed and versions) and calls :func:`fit`.

``tf.*`` is used here only for the data-parallel option on TensorFlow.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras

from brats_utils.conventions import NUM_CLASSES
from brats_utils.errors import BratsError
from brats_utils.model.experiments import get_experiment
from brats_utils.training.keras_metrics import default_metrics
from brats_utils.training.losses import get_loss
from brats_utils.training.run_folder import (
    RUN_FILES,
    RunLog,
    load_config,
    load_history,
    load_state,
    prepare_run_dir,
    write_json,
)

__all__ = [
    "compile_model",
    "RunCheckpoint",
    "fit",
    "train",
    "resolve_split",
    "precision_policy",
    "distribution",
    # the run folder, from brats_utils.training.run_folder
    "RUN_FILES",
    "prepare_run_dir",
    "load_state",
    "load_history",
    "write_json",
]


def compile_model(
    model: keras.Model,
    loss: str = "ce",
    learning_rate: float = 1e-3,
    metrics: Sequence[keras.metrics.Metric] | None = None,
) -> keras.Model:
    """Compile with Adam, the named loss (``"ce"`` or ``"dice_ce"``) and the label metrics.

    Returns:
        The same model, compiled; it logs ``loss`` and the :func:`default_metrics`.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=get_loss(loss),
        metrics=list(metrics) if metrics is not None else default_metrics(),
    )
    return model


class RunCheckpoint(keras.callbacks.Callback):
    """Keras callback writing the run folder at the end of every epoch (via :class:`RunLog`).

    Args:
        run_dir: the run folder.
        monitor: the logged value that picks ``model.keras`` (lower is better).
        best: the best monitored value so far (``inf`` for a new run).
        best_epoch: the epoch (1-based) that reached ``best``, 0 if none.
        history: records of the epochs already finished (for a resumed run).
        target_epochs: the run's total number of epochs, recorded in ``state.json``.

    Attributes:
        log: the :class:`RunLog`; ``history``, ``best`` and ``best_epoch`` read from it.
    """

    def __init__(
        self,
        run_dir: Path | str,
        monitor: str = "val_loss",
        best: float = math.inf,
        best_epoch: int = 0,
        history: list[dict] | None = None,
        target_epochs: int | None = None,
    ):
        super().__init__()
        self.log = RunLog(run_dir, monitor, best, best_epoch, history, target_epochs)
        self._started = time.perf_counter()

    @property
    def history(self) -> list[dict]:
        """One record per finished epoch (see :meth:`RunLog.end_epoch`)."""
        return self.log.history

    @property
    def best(self) -> float:
        """The best monitored value so far."""
        return self.log.best

    @property
    def best_epoch(self) -> int:
        """The epoch (1-based) that reached :attr:`best`, 0 if none."""
        return self.log.best_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.log.end_epoch(self.model, epoch, logs or {}, seconds)


def fit(
    model: keras.Model,
    train_data,
    val_data,
    run_dir: Path | str,
    *,
    epochs: int = 15,
    batch_size: int | None = 32,
    resume: bool = False,
    verbose: str | int = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> list[dict]:
    """Train a compiled model and keep ``run_dir`` up to date after every epoch.

    Args:
        model: a compiled model (see :func:`compile_model`).
        train_data: a ``keras.utils.PyDataset`` yielding ``(x, y)`` batches, or an ``(x, y)``
            tuple of arrays ``(N, H, W, C)`` float32 and ``(N, H, W, 4)`` one-hot float32.
        val_data: the same kinds for validation, or ``None`` (the best model is then picked
            by the training loss).
        run_dir: run folder (created if missing).
        epochs: total number of epochs of the run (a resumed run stops there too).
        batch_size: batch size for in-memory arrays (ignored for a ``PyDataset``).
        resume: continue from ``run_dir/state.json``: start after its last finished epoch
            and keep its history and best value. ``model`` must then be the reloaded
            ``model_last.keras`` (with its optimizer state).
        verbose: Keras' progress display (``"auto"``: a progress bar).
        callbacks: extra Keras callbacks.

    Returns:
        The history: one dict per epoch (``epoch`` 1-based, every logged value, ``seconds``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    monitor = "val_loss" if val_data is not None else "loss"
    initial_epoch, best, best_epoch, history = 0, math.inf, 0, []
    if resume:
        state = load_state(run_dir)
        initial_epoch, best, best_epoch = state["epoch"], state["best"], state["best_epoch"]
        history = load_history(run_dir)[:initial_epoch]
    if initial_epoch >= epochs:
        return history
    if hasattr(train_data, "set_epoch"):  # SliceDataset: the resumed epoch's draw and order
        train_data.set_epoch(initial_epoch)
    checkpoint = RunCheckpoint(run_dir, monitor, best, best_epoch, history, epochs)
    fit_kwargs = dict(
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=verbose,
        callbacks=[keras.callbacks.TerminateOnNaN(), checkpoint, *callbacks],
    )
    if isinstance(val_data, tuple):
        fit_kwargs["validation_data"] = val_data
        fit_kwargs["validation_batch_size"] = batch_size
    elif val_data is not None:
        fit_kwargs["validation_data"] = val_data
    if isinstance(train_data, tuple):
        x, y = train_data
        model.fit(x, y, batch_size=batch_size, shuffle=True, **fit_kwargs)
    else:
        model.fit(train_data, **fit_kwargs)
    return checkpoint.history


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Use the ``mixed_float16`` dtype policy inside the block (no-op if ``mixed`` is False)."""
    if not mixed:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def distribution(data_parallel: bool, batch_size: int) -> Iterator[int]:
    """Data-parallel training over all local devices with Keras' own distribution support.

    JAX: ``keras.distribution.DataParallel``; TensorFlow: a ``tf.distribute.MirroredStrategy``
    scope. With one device (e.g. a CPU) this is a no-op that still takes the same path.
    Yields the number of devices (1 when ``data_parallel`` is False).

    Raises:
        BratsError: on another backend, or if ``batch_size`` is not a multiple of the number
            of devices.
    """
    if not data_parallel:
        yield 1
        return
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        _check_divisible(batch_size, len(devices))
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    elif backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        _check_divisible(batch_size, strategy.num_replicas_in_sync)
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    else:
        raise BratsError(
            f"--data-parallel supports the jax and tensorflow backends, not {backend!r}"
        )


def _check_divisible(batch_size: int, devices: int) -> None:
    if batch_size % devices:
        raise BratsError(
            f"batch size {batch_size} must be a multiple of the {devices} devices for "
            "data-parallel training"
        )


def resolve_split(cache, split: Path | str | None = None) -> tuple[Path, str]:
    """Find the split CSV of a training run.

    Order: ``split`` if given; else ``split.csv`` in the data folder the cache was built from
    (``data_dir`` recorded in the cache manifest), if that file exists; else
    ``CACHE_DIR/split.csv``.

    Returns:
        ``(path, how)``, ``how`` saying where the path came from (for the log).

    Raises:
        BratsError: if the chosen file does not exist (the message lists what was tried).
    """
    if split is not None:
        path = Path(split)
        if not path.is_file():
            raise BratsError(f"split file not found: {path}")
        return path, "--split"
    data_dir = (getattr(cache, "manifest", None) or {}).get("data_dir")
    candidates = [(Path(cache.cache_dir) / "split.csv", "the cache folder")]
    if data_dir:
        candidates.insert(0, (Path(data_dir) / "split.csv", "the data folder of the cache"))
    for path, where in candidates:
        if path.is_file():
            return path, f"default: split.csv in {where}"
    tried = [path for path, _ in candidates]
    raise BratsError(
        f"no split file given and none found at {' or '.join(map(str, tried))}; "
        "run `brats split DATA_DIR` or pass --split CSV"
    )


def _split_cases(cache, split: dict[str, str], max_cases: int | None) -> dict[str, list[str]]:
    """Case ids per subset (sorted), restricted to ``max_cases`` per subset if given."""
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
    cases = {
        s: sorted(c for c, v in split.items() if v == s) for s in ("train", "validation", "test")
    }
    if max_cases is not None:
        cases = {s: ids[:max_cases] for s, ids in cases.items()}
    if not cases["train"]:
        raise BratsError("the split has no training cases")
    return cases


def versions() -> dict[str, str]:
    """Versions of Python, Keras, the Keras backend, numpy and brats_utils."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    from brats_utils import __version__

    backend = keras.backend.backend()
    package = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    try:
        backend_version = version(package)
    except PackageNotFoundError:
        backend_version = "unknown"
    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        backend: backend_version,
        "numpy": np.__version__,
        "brats_utils": __version__,
    }


def _changed_settings(saved: dict, now: dict) -> list[str]:
    """``"name: saved -> now"`` for every setting a resumed run would silently change.

    Everything that shapes the model, the data it sees or the optimisation must match the run
    being resumed; only the number of epochs may grow.
    """
    changed = []
    for section in ("training", "model", "preprocessing"):
        for key, value in now.get(section, {}).items():
            if section == "training" and key == "epochs":
                continue
            old = saved.get(section, {}).get(key)
            if old != value:
                changed.append(f"{key}: {old!r} -> {value!r}")
    for key in ("seed", "channels", "image_size"):
        if saved.get(key) != now.get(key):
            changed.append(f"{key}: {saved.get(key)!r} -> {now.get(key)!r}")
    return changed


def train(
    experiment,
    cache_dir: Path | str,
    run_dir: Path | str,
    *,
    split: Path | str | None = None,
    epochs: int = 15,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    loss: str = "ce",
    seed: int = 0,
    empty_slice_fraction: float = 1.0,
    augment: bool = False,
    base_filters: int = 32,
    batch_norm: bool = False,
    resume: bool = False,
    force: bool = False,
    mixed_precision: bool = False,
    data_parallel: bool = False,
    max_cases: int | None = None,
    workers: int = 1,
    verbose: str | int = "auto",
) -> dict:
    """Train one experiment on a slice cache (``brats train``).

    Args:
        experiment: an experiment name (``early4``, ``mean4``, ``early2``) or object.
        cache_dir: slice cache from ``brats preprocess``.
        run_dir: run folder; must be empty or missing unless ``resume`` or ``force``.
        split: split CSV (``case,split``); default see :func:`resolve_split`.
        epochs: total epochs (the seed: 15). With ``resume``, training continues up to it.
        batch_size: slices per batch.
        learning_rate: Adam learning rate (the seed: 1e-3).
        loss: ``"ce"`` (categorical cross-entropy, the seed's) or ``"dice_ce"``.
        seed: seeds Keras/numpy/Python (``keras.utils.set_random_seed``) and the loader.
        empty_slice_fraction: fraction of tumour-free training slices kept (validation
            always uses every slice).
        augment: random left-right/up-down flips of training slices (done by the loader).
        base_filters: filters of the U-Net's first level (32 in the seed).
        batch_norm: batch normalisation after each convolution (not in the seed).
        resume: continue an interrupted run from its last finished epoch.
        force: start over in a non-empty ``run_dir`` (its run files are removed first).
        mixed_precision: ``mixed_float16`` policy (for GPUs; slow on CPUs).
        data_parallel: data-parallel training over all local devices (see
            :func:`distribution`).
        max_cases: use at most this many cases of each subset (smoke runs).
        workers: loader worker threads (``keras.utils.PyDataset`` ``workers``).
        verbose: Keras' progress display; 0 also silences the lines this function prints.

    Returns:
        ``{"run_dir", "config", "history", "best_epoch", "best_val_loss"}``.

    Raises:
        BratsError: unknown experiment, missing cache/split, split cases missing from the
            cache, a non-empty run folder, a resume of a different experiment.
    """
    from brats_utils.data.split import load_split
    from brats_utils.model.unet import build_model
    from brats_utils.preprocessing.cache import open_cache
    from brats_utils.training.loader import SliceDataset

    experiment = get_experiment(experiment)
    run_dir, cache_dir = Path(run_dir), Path(cache_dir)
    say = print if verbose != 0 else (lambda *a, **k: None)
    cache = open_cache(cache_dir)
    split_path, how = resolve_split(cache, split)
    cases = _split_cases(cache, load_split(split_path), max_cases)
    prepare_run_dir(run_dir, resume=resume, force=force)
    settings = cache.settings
    config = {
        "experiment": experiment.name,
        "title": experiment.title,
        "channels": list(experiment.channels),
        "fusion": experiment.fusion,
        "image_size": settings.size,
        "num_classes": NUM_CLASSES,
        "preprocessing": settings.to_dict(),
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": "adam",
            "learning_rate": learning_rate,
            "loss": loss,
            "empty_slice_fraction": empty_slice_fraction,
            "augment": augment,
            "mixed_precision": mixed_precision,
            "data_parallel": data_parallel,
            "max_cases": max_cases,
        },
        "model": {
            "depth": 4,
            "base_filters": base_filters,
            "dropout": 0.2,
            "batch_norm": batch_norm,
        },
        "seed": seed,
        "backend": keras.backend.backend(),
        "versions": versions(),
        "data_dir": (cache.manifest or {}).get("data_dir"),
        "cache_dir": str(cache_dir.resolve()),
        "split_file": str(split_path.resolve()),
        "cases": {subset: len(ids) for subset, ids in cases.items()},
        "case_ids": {subset: cases[subset] for subset in ("train", "validation")},
    }
    if resume:
        previous = load_config(run_dir)
        if previous.get("experiment") != experiment.name:
            raise BratsError(
                f"cannot resume {run_dir}: it trains {previous.get('experiment')!r}, "
                f"not {experiment.name!r}"
            )
        changed = _changed_settings(previous, config)
        if changed:
            raise BratsError(
                f"cannot resume {run_dir}: it was started with other settings ("
                + "; ".join(changed)
                + "). Pass the saved values again (config.json), or start a new run folder"
            )
        previous["training"]["epochs"] = epochs
        config = previous
    say(f"experiment {experiment.name}: {experiment.description}")
    say(f"split {split_path} ({how}); cases {config['cases']}")
    keras.utils.set_random_seed(seed)
    loader_kwargs = dict(channels=experiment.channels, batch_size=batch_size, seed=seed)
    train_data = SliceDataset(
        cache,
        cases["train"],
        shuffle=True,
        augment=augment,
        empty_slice_fraction=empty_slice_fraction,
        workers=workers,
        **loader_kwargs,
    )
    val_data = None
    if cases["validation"]:
        val_data = SliceDataset(
            cache,
            cases["validation"],
            shuffle=False,
            augment=False,
            workers=workers,
            **loader_kwargs,
        )
    with precision_policy(mixed_precision), distribution(data_parallel, batch_size):
        if resume:
            model = keras.saving.load_model(run_dir / "model_last.keras")
        else:
            model = build_model(
                experiment, settings.size, base_filters=base_filters, batch_norm=batch_norm
            )
            compile_model(model, loss, learning_rate)
        write_json(run_dir / "config.json", config)
        history = fit(
            model, train_data, val_data, run_dir, epochs=epochs, resume=resume, verbose=verbose
        )
    state = load_state(run_dir) if (run_dir / "state.json").exists() else {}
    say(f"best epoch {state.get('best_epoch')} ({state.get('monitor')} {state.get('best')})")
    return {
        "run_dir": str(run_dir),
        "config": config,
        "history": history,
        "best_epoch": state.get("best_epoch"),
        "best_val_loss": state.get("best"),
    }
