"""Fitting a compiled model and keeping its run folder up to date, epoch after epoch.

:func:`fit` trains on any data Keras accepts (a ``PyDataset`` such as
:class:`~brats_utils.training.loader.SliceDataset`, or in-memory ``(x, y)`` arrays); the
:class:`RunCheckpoint` callback writes ``model.keras``, ``model_last.keras``, ``history.csv``,
``history.json`` and ``state.json`` after every epoch (:mod:`brats_utils.training.run_folder`).
:func:`precision_policy` and :func:`distribution` wrap mixed precision and data parallelism.
:func:`brats_utils.training.train.train` (``brats train``) puts the pieces together.

``tf.*`` is used here only for the data-parallel option on TensorFlow.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
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
    "callbacks_for_run",
    "fit",
    "precision_policy",
    "distribution",
]


def compile_model(
    model: keras.Model,
    loss: str = TrainSettings.loss,
    learning_rate: float = TrainSettings.learning_rate,
    metrics: Sequence[keras.metrics.Metric] | None = None,
) -> keras.Model:
    """Compile with Adam, the named loss (``"ce"`` or ``"dice_ce"``) and the label metrics.

    The loss takes the form of the model's head: class losses for a 4-channel softmax,
    region losses for the 3 sigmoids of a ``head="regions"`` model
    (:func:`~brats_utils.training.losses.get_loss`).

    Returns:
        The same model, compiled; it logs ``loss`` and the :func:`default_metrics`.
    """
    head = "regions" if model.outputs[0].shape[-1] == REGION_OUTPUTS else "classes"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=get_loss(loss, head),
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
        best: float | None = None,
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


class EpochSeeds(keras.callbacks.Callback):
    """Reseed every random draw of training at the start of each epoch, from (seed, epoch) alone.

    Epoch ``k`` (0-based) starts with ``keras.utils.set_random_seed(seed + k)`` (Python, numpy,
    TensorFlow and Keras' global generator) and sets the state of each of the model's own
    ``SeedGenerator`` s (the dropout masks) to a value drawn from ``(seed, k, i)``, ``i`` its
    position. Keras does not save those states in a ``.keras`` file, so without this a run
    resumed from ``model_last.keras`` would draw other dropout masks than the run it
    continues; with it, epoch ``k`` draws the same masks whether the run was resumed or not,
    and a resumed run's history equals an uninterrupted one's (``tests/training``).

    Args:
        seed: the run's seed (:attr:`TrainSettings.seed`).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        keras.utils.set_random_seed(self.seed + epoch)
        for i, state in enumerate(_seed_states(self.model)):
            drawn = np.random.SeedSequence([self.seed, epoch, i]).generate_state(1)[0]
            state.assign(np.array([int(drawn) % (2**31 - 1), 0], dtype=state.dtype))


def _seed_states(model: keras.Model) -> list:
    """The state variables of ``model``'s ``SeedGenerator`` s, in the model's variable order.

    Keras lists them among ``non_trainable_variables`` under the name that
    ``keras.random.SeedGenerator`` gives them, but leaves them out of saved models.
    """
    return [v for v in model.non_trainable_variables if v.name == "seed_generator_state"]


def callbacks_for_run(
    run_dir: Path | str,
    *,
    epochs: int = TrainSettings.epochs,
    resume: bool = False,
    select: str = TrainSettings.select,
    seed: int | None = TrainSettings.seed,
    validation: bool = True,
) -> tuple[list[keras.callbacks.Callback], int]:
    """The callbacks that keep ``run_dir`` up to date, and the epoch ``model.fit`` starts at.

    ``[EpochSeeds(seed), NonFiniteLossGuard(), RunCheckpoint(...)]`` (no :class:`EpochSeeds`
    when ``seed`` is ``None``); a resumed run starts after the last epoch of its
    ``state.json`` and keeps its history and best value. Arguments as in :func:`fit`;
    ``validation``: whether ``model.fit`` gets validation data (else ``select`` reads the
    training values).
    """
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
    batch_size: int | None = TrainSettings.batch_size,
    resume: bool = False,
    select: str = TrainSettings.select,
    seed: int | None = TrainSettings.seed,
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
        select: what picks ``model.keras``: ``"val_loss"`` (lowest), ``"val_region_dice"``
            (highest mean validation region Dice; without validation data, the same on the
            training data) or ``"last"`` (the last epoch).
        seed: reseeds every epoch's random draws (dropout masks) from ``(seed, epoch)``
            (:class:`EpochSeeds`), so that a resumed run trains exactly as an uninterrupted
            one; ``None``: Keras' own seed state runs on (a resume then draws other masks).
        verbose: Keras' progress display (``"auto"``: a progress bar).
        callbacks: extra Keras callbacks.

    Returns:
        The history: one dict per epoch (``epoch`` 1-based, every logged value, ``seconds``).
    """
    run_callbacks, initial_epoch = callbacks_for_run(
        run_dir, epochs=epochs, resume=resume, select=select, seed=seed,
        validation=val_data is not None,
    )  # fmt: skip
    guard, checkpoint = run_callbacks[-2:]
    if initial_epoch >= epochs:
        return checkpoint.history
    if hasattr(train_data, "set_epoch"):  # SliceDataset: the resumed epoch's draw and order
        train_data.set_epoch(initial_epoch)
    fit_kwargs = dict(
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=verbose,
        callbacks=[*run_callbacks, *callbacks],
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
    if guard.stopped is not None:
        raise BratsError(_non_finite_message(guard.stopped, checkpoint, run_dir))
    return checkpoint.history


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite, and remember where.

    Unlike ``keras.callbacks.TerminateOnNaN`` it records ``(epoch, batch, value)`` in
    :attr:`stopped`, so :func:`fit` can say which epoch failed and what was kept.
    """

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


def _non_finite_message(stopped: tuple[int, int, float], checkpoint, run_dir: Path) -> str:
    epoch, batch, value = stopped
    if checkpoint.best_epoch:
        kept = (
            f"model.keras (epoch {checkpoint.best_epoch}) and model_last.keras (epoch "
            f"{len(checkpoint.history)}) in {run_dir} are kept"
        )
    else:
        kept = "no epoch had finished, so no model was saved"
    return (
        f"training stopped in epoch {epoch}, batch {batch}: the loss became {value}; {kept}. "
        "Lower the learning rate (--lr) or check the cache for bad values"
    )


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
