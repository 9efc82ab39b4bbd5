"""Fitting a compiled model and keeping its run folder up to date, epoch after epoch."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np

from brats_utils.conventions import REGION_OUTPUTS
from brats_utils.errors import BratsError
from brats_utils.training.keras_metrics import default_metrics
from brats_utils.training.losses import get_loss
from brats_utils.training.run_folder import RunLog, load_history, load_state
from brats_utils.training.settings import TrainSettings

__all__ = [
    "compile_model",
    "RunCheckpoint",
    "EpochSeeds",
    "EpochLine",
    "callbacks_for_run",
    "fit",
    "precision_policy",
    "distribution",
]


def compile_model(
    model: keras.Model,
    loss: str = TrainSettings.loss,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
) -> keras.Model:
    """Compile with Adam, the named loss for the model's head and :func:`default_metrics`."""
    head = "regions" if model.outputs[0].shape[-1] == REGION_OUTPUTS else "classes"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=get_loss(loss, head),
        metrics=default_metrics(),
    )
    return model


class RunCheckpoint(keras.callbacks.Callback):
    """Writes the run folder at the end of every epoch through ``self.log``, a :class:`RunLog`."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.log = RunLog(*args, **kwargs)
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.log.end_epoch(self.model, epoch, logs or {}, seconds)


class EpochSeeds(keras.callbacks.Callback):
    """Reseed epoch ``k``'s draws from ``(seed, k)`` alone (incl. the dropout ``SeedGenerator``
    s, unsaved by ``.keras``), so a resumed run trains exactly as an uninterrupted one."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        keras.utils.set_random_seed(self.seed + epoch)
        states = [v for v in self.model.non_trainable_variables if v.name == "seed_generator_state"]
        for i, state in enumerate(states):
            drawn = np.random.SeedSequence([self.seed, epoch, i]).generate_state(1)[0]
            state.assign(np.array([int(drawn) % (2**31 - 1), 0], dtype=state.dtype))


class EpochLine(keras.callbacks.Callback):
    """One short line per epoch, for ``model.fit(verbose=0)``: losses and validation Dice."""

    SHOWN = ("loss", "val_loss", "val_dice_wt", "val_dice_tc", "val_dice_et")

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self._started = epochs, time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        values = ", ".join(f"{k} {float(logs[k]):.3f}" for k in self.SHOWN if k in (logs or {}))
        seconds = time.perf_counter() - self._started
        print(f"epoch {epoch + 1}/{self.epochs} ({seconds:.0f} s): {values}", flush=True)


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss, keeping ``stopped = (epoch, batch, loss)``, 1-based."""

    def __init__(self):
        super().__init__()
        self.stopped: tuple[int, int, float] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped = (self._epoch + 1, batch + 1, float(loss))
            self.model.stop_training = True


def callbacks_for_run(
    run_dir: Path | str,
    *,
    epochs: int = TrainSettings.epochs,
    resume: bool = False,
    select: str = TrainSettings.select,
    seed: int | None = TrainSettings.seed,
    validation: bool = True,
) -> tuple[list[keras.callbacks.Callback], int]:
    """``([EpochSeeds, NonFiniteLossGuard, RunCheckpoint], initial_epoch)``, arguments of `fit`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if select == "last":
        monitor = "epoch"  # a later epoch is always "better": model.keras = the last one
    else:
        monitor = select if validation else select.removeprefix("val_")
    initial_epoch, best, best_epoch, history = 0, None, 0, []
    if resume:
        state = load_state(run_dir)
        initial_epoch, best, best_epoch = state["epoch"], state["best"], state["best_epoch"]
        history = load_history(run_dir)[:initial_epoch]
    checkpoint = RunCheckpoint(run_dir, monitor, best, best_epoch, history, epochs)
    seeds = [] if seed is None else [EpochSeeds(seed)]
    return [*seeds, NonFiniteLossGuard(), checkpoint], initial_epoch


def fit(
    model: keras.Model,
    train_data,
    val_data,
    run_dir: Path | str,
    *,
    epochs: int = TrainSettings.epochs,
    resume: bool = False,
    select: str = TrainSettings.select,
    seed: int | None = TrainSettings.seed,
    verbose: str | int = "auto",
) -> list[dict]:
    """Train a compiled model, keeping ``run_dir`` up to date after every epoch; returns the
    history, a dict per epoch (``epoch`` 1-based, every logged value, ``seconds``).

    ``resume``: ``model`` must be the run's ``model_last.keras``; ``select``: ``"val_loss"``,
    ``"val_region_dice"`` or ``"last"``; ``seed`` ``None``: a resume draws other dropout masks.
    A BratsError for a non-finite loss (the message says what was kept).
    """
    run_callbacks, initial_epoch = callbacks_for_run(
        run_dir, epochs=epochs, resume=resume, select=select, seed=seed,
        validation=val_data is not None,
    )  # fmt: skip
    guard, checkpoint = run_callbacks[-2:]
    log = checkpoint.log
    if initial_epoch >= epochs:
        return log.history
    if hasattr(train_data, "set_epoch"):  # SliceDataset: the resumed epoch's draw and order
        train_data.set_epoch(initial_epoch)
    model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=val_data,
        verbose=verbose,
        callbacks=run_callbacks,
    )
    if guard.stopped is not None:
        epoch, batch, value = guard.stopped
        kept = "no epoch had finished, so no model was saved"
        if log.best_epoch:
            kept = (
                f"model.keras (epoch {log.best_epoch}) and model_last.keras (epoch "
                f"{len(log.history)}) in {run_dir} are kept"
            )
        advice = "Lower the learning rate (--lr) or check the cache for bad values"
        if model.dtype_policy.name == "mixed_float16":  # measured: the baseline's decoder overflows
            advice = "With --mixed-precision, add --batch-norm (float16 stops at 65504) or drop it"
        raise BratsError(
            f"training stopped in epoch {epoch}, batch {batch}: the loss became {value}; "
            f"{kept}. {advice}"
        )
    return log.history


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """The ``mixed_float16`` dtype policy inside the block if ``mixed``."""
    previous = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def distribution(data_parallel: bool, batch_size: int) -> Iterator[int]:
    """Data parallelism over all local devices if ``data_parallel`` (JAX or TensorFlow); yields
    the number of devices. A BratsError for another backend or an indivisible ``batch_size``."""
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
