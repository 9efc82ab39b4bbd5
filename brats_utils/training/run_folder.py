"""The run folder of a training run (``brats train --out RUN_DIR``): its files, read and written.

A run folder holds:

* ``model.keras``: the model with the best monitored value so far (``--select``: lowest
  validation loss, or highest validation region Dice);
* ``model_last.keras``: the model after the last finished epoch, with its optimizer state;
* ``history.csv`` / ``history.json``: every logged value (loss and metrics on training and
  ``val_`` validation data) per epoch, plus the epoch's wall time in seconds;
* ``config.json``: experiment, preprocessing settings, training settings, seed, versions
  (written by :func:`brats_utils.training.train.train`);
* ``state.json``: the number of finished epochs and the best monitored value: the commit
  point of an epoch (below), so ``--resume`` continues from the last finished epoch.

Every file is written to a temporary name and renamed, so an interrupted run never leaves a
half-written file. An epoch ends in this order: the history (a resumed run reads only the
records of its finished epochs), the two models under hidden pending names
(``.model_last.epoch<k>.keras``), ``state.json``, then the pending models renamed into place.
A run killed before ``state.json`` keeps the previous epoch's models; one killed after it has
its pending models put in place by :func:`prepare_run_dir` on ``--resume``
(:func:`finish_epoch_files`). So ``model_last.keras`` is always the model of the epoch
``state.json`` names, and a resume is exact (see :class:`brats_utils.training.fit.EpochSeeds`).

This module does not import Keras: the files can be read (and a run folder checked) without a
deep-learning backend. :class:`RunLog` keeps the folder up to date
epoch after epoch; :class:`brats_utils.training.fit.RunCheckpoint` is the Keras callback that
drives it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brats_utils.errors import BratsError
from brats_utils.files import (
    atomic_path,
    read_json,
    remove_stale_temporaries,
    write_csv,
    write_json,
)

__all__ = [
    "RUN_FILES",
    "CONFIG_FILE",
    "RunLog",
    "load_state",
    "load_history",
    "load_config",
    "write_config",
    "check_run_dir",
    "prepare_run_dir",
    "finish_epoch_files",
    "write_history",
    "save_model",
]

#: Files a run folder holds (``--force`` removes exactly these before a new run).
CONFIG_FILE = "config.json"
RUN_FILES: tuple[str, ...] = (
    "model.keras",
    "model_last.keras",
    "history.csv",
    "history.json",
    "config.json",
    "state.json",
)


def load_state(run_dir: Path | str) -> dict:
    """``state.json`` of a run: ``epoch`` (finished epochs), ``best``, ``best_epoch``, ..."""
    return read_json(Path(run_dir) / "state.json", "run state (nothing to resume)")


def load_history(run_dir: Path | str) -> list[dict]:
    """``history.json`` of a run: one dict per finished epoch (``[]`` if absent)."""
    path = Path(run_dir) / "history.json"
    return read_json(path, "history") if path.exists() else []


def load_config(run_dir: Path | str) -> dict:
    """``config.json`` of a run (see :func:`brats_utils.training.train.run_config`)."""
    return read_json(Path(run_dir) / CONFIG_FILE, "run config")


def write_config(run_dir: Path | str, config: Mapping[str, Any]) -> Path:
    """Write ``RUN_DIR/config.json`` atomically."""
    return write_json(Path(run_dir) / CONFIG_FILE, config)


def check_run_dir(run_dir: Path | str, *, resume: bool = False, force: bool = False) -> None:
    """Refuse a run folder that may not be used, changing nothing (see :func:`prepare_run_dir`).

    Raises:
        BratsError: if the folder is not empty (without ``resume``/``force``), if there is
            nothing to resume, if both flags are given, or if ``run_dir`` is a file.
    """
    run_dir = Path(run_dir)
    if resume and force:
        raise BratsError("choose either --resume (continue a run) or --force (start over)")
    if run_dir.exists() and not run_dir.is_dir():
        raise BratsError(f"run folder {run_dir} is a file, expected a folder")
    if resume:
        missing = [n for n in ("state.json", "model_last.keras") if not (run_dir / n).is_file()]
        if missing == ["model_last.keras"]:  # killed after its first state.json, before the rename
            epoch = load_state(run_dir)["epoch"]
            if _pending_path(run_dir, "model_last.keras", epoch).is_file():
                missing = []
        if missing:
            raise BratsError(
                f"cannot resume {run_dir}: missing {', '.join(missing)} (expected a run "
                "interrupted after at least one finished epoch)"
            )
    elif not force and run_dir.is_dir() and any(run_dir.iterdir()):
        raise BratsError(
            f"run folder {run_dir} is not empty; pass --resume to continue that run, "
            "--force to start over in it, or choose another --out"
        )


def prepare_run_dir(run_dir: Path | str, *, resume: bool = False, force: bool = False) -> Path:
    """Check that ``run_dir`` may be used (:func:`check_run_dir`) and create it.

    * missing or empty: created;
    * ``resume``: must hold ``state.json`` and ``model_last.keras`` from an earlier run (the
      hidden temporaries of a killed run are removed, the models of its last epoch put in
      place, :func:`finish_epoch_files`);
    * ``force``: the run files (:data:`RUN_FILES`) are removed, other files are left alone;
    * otherwise a non-empty folder is refused: a run is never overwritten silently.

    Raises:
        BratsError: see :func:`check_run_dir`.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume=resume, force=force)
    if resume or force:
        remove_stale_temporaries(run_dir)  # what a killed run left half-written
    if resume:
        finish_epoch_files(run_dir)
        return run_dir
    if force and run_dir.is_dir():
        for path in [*(run_dir / name for name in RUN_FILES), *_pending_models(run_dir)]:
            path.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


#: The models an epoch writes under a pending name before ``state.json`` commits it.
_MODEL_FILES = ("model.keras", "model_last.keras")


def _pending_path(run_dir: Path, name: str, epoch: int) -> Path:
    """``RUN_DIR/.model_last.epoch3.keras``: ``name`` of 1-based ``epoch``, not yet committed."""
    return run_dir / f".{Path(name).stem}.epoch{epoch}.keras"


def _pending_models(run_dir: Path) -> list[Path]:
    return sorted(
        p for name in _MODEL_FILES for p in run_dir.glob(f".{Path(name).stem}.epoch*.keras")
    )


def finish_epoch_files(run_dir: Path | str) -> list[str]:
    """Complete the last epoch of a killed run: the models of the epoch ``state.json`` names
    are put in place, pending models of an epoch it does not name (never committed) removed.

    Returns:
        The names of the models put in place.
    """
    run_dir = Path(run_dir)
    epoch = load_state(run_dir)["epoch"]
    placed = []
    for name in _MODEL_FILES:
        pending = _pending_path(run_dir, name, epoch)
        if pending.is_file():
            os.replace(pending, run_dir / name)
            placed.append(name)
    for stale in _pending_models(run_dir):
        stale.unlink(missing_ok=True)
    return placed


def write_history(run_dir: Path, records: list[dict]) -> None:
    """Write ``history.csv`` (columns in order of first appearance) and ``history.json``."""
    write_csv(records, run_dir / "history.csv")
    write_json(run_dir / "history.json", records)


def save_model(model: Any, path: Path) -> None:
    """``model.save(path)`` atomically (``model``: a Keras model; ``path``: ``*.keras``)."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def lower_is_better(monitor: str) -> bool:
    """True for a loss (``loss``, ``val_loss``), False for a score such as a Dice."""
    return monitor.endswith("loss")


def region_dice_of(logs: Mapping[str, float]) -> dict[str, float]:
    """``region_dice`` / ``val_region_dice``: the mean of logged ``dice_wt/tc/et`` (if all are).

    On the validation data this is the whole-volume region Dice the challenge scores, pooled
    over the validation cases' cached slices (every slice with a cache of ``--slices all``).
    """
    derived = {}
    for prefix in ("", "val_"):
        keys = [f"{prefix}dice_{region}" for region in ("wt", "tc", "et")]
        if all(key in logs for key in keys):
            derived[f"{prefix}region_dice"] = float(sum(logs[k] for k in keys) / 3)
    return derived


class RunLog:
    """Keep a run folder's models, history and state up to date, one epoch at a time.

    Args:
        run_dir: the run folder.
        monitor: the value that picks ``model.keras``: a logged one (a ``*loss`` is better
            lower, anything else higher) or ``region_dice`` / ``val_region_dice``, the mean of
            the logged region Dice WT, TC, ET (:func:`region_dice_of`).
        best: the best monitored value so far (``None``: a new run).
        best_epoch: the epoch (1-based) that reached ``best``, 0 if none.
        history: records of the epochs already finished (for a resumed run).
        target_epochs: the run's total number of epochs, recorded in ``state.json``.
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
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.minimize = lower_is_better(monitor)
        self.best = best if best is not None else (math.inf if self.minimize else -math.inf)
        self.best_epoch = best_epoch
        self.history = list(history or [])
        self.target_epochs = target_epochs

    def end_epoch(
        self, model: Any, epoch: int, logs: Mapping[str, Any], seconds: float
    ) -> dict[str, Any]:
        """Record a finished epoch: the history, ``model_last.keras`` and ``model.keras`` if it
        is the best so far (pending), ``state.json``, then the models put in place (see the
        module's docstring for why in this order).

        Args:
            model: the Keras model (anything with ``.save(path)``).
            epoch: the finished epoch, 0-based as Keras counts (recorded 1-based).
            logs: the values Keras logged for the epoch.
            seconds: the epoch's wall time.

        Returns:
            The epoch's history record: ``epoch`` (1-based), every logged value as a float,
            ``seconds`` rounded to ms.

        Raises:
            BratsError: if the monitored value is not among the logged ones.
        """
        record: dict[str, Any] = {"epoch": epoch + 1}
        record.update({key: float(value) for key, value in logs.items()})
        record.update(region_dice_of(record))
        record["seconds"] = round(seconds, 3)
        self.history.append(record)
        value = record.get(self.monitor)
        if value is None:
            raise BratsError(
                f"cannot pick the best model: {self.monitor!r} is not logged "
                f"(logged: {sorted(logs)})"
            )
        write_history(self.run_dir, self.history)
        names = ["model_last.keras"]
        if (value < self.best) if self.minimize else (value > self.best):
            self.best, self.best_epoch = value, epoch + 1
            names.append("model.keras")
        for name in names:
            save_model(model, _pending_path(self.run_dir, name, epoch + 1))
        state = {
            "epoch": epoch + 1,
            "epochs": self.target_epochs,
            "monitor": self.monitor,
            "mode": "min" if self.minimize else "max",
            "best": self.best,
            "best_epoch": self.best_epoch,
        }
        write_json(self.run_dir / "state.json", state)
        for name in names:
            os.replace(_pending_path(self.run_dir, name, epoch + 1), self.run_dir / name)
        return record
