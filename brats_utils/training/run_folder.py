"""The run folder of ``brats train --out RUN_DIR``, written atomically for ``--resume``."""

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
]

CONFIG_FILE = "config.json"
#: Files a run folder holds (``--force`` removes exactly these).
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
    path = Path(run_dir) / "history.json"
    return read_json(path, "history") if path.exists() else []


def load_config(run_dir: Path | str) -> dict:
    return read_json(Path(run_dir) / CONFIG_FILE, "run config")


def write_config(run_dir: Path | str, config: Mapping[str, Any]) -> Path:
    return write_json(Path(run_dir) / CONFIG_FILE, config)


def check_run_dir(run_dir: Path | str, *, resume: bool = False, force: bool = False) -> None:
    """Refuse (``BratsError``) a run folder that may not be used, changing nothing."""
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
    """:func:`check_run_dir`, then create the folder; ``force`` removes only :data:`RUN_FILES`."""
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
    """``RUN_DIR/.model_last.epoch3.keras``: ``name`` of 1-based ``epoch``, not committed."""
    return run_dir / f".{Path(name).stem}.epoch{epoch}.keras"


def _pending_models(run_dir: Path) -> list[Path]:
    return sorted(
        p for name in _MODEL_FILES for p in run_dir.glob(f".{Path(name).stem}.epoch*.keras")
    )


def finish_epoch_files(run_dir: Path | str) -> list[str]:
    """Put the pending models of the epoch ``state.json`` names in place, remove the others."""
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


def region_dice_of(logs: Mapping[str, float]) -> dict[str, float]:
    """``region_dice`` / ``val_region_dice``: the mean of logged ``dice_wt/tc/et`` (if all are)."""
    derived = {}
    for prefix in ("", "val_"):
        keys = [f"{prefix}dice_{region}" for region in ("wt", "tc", "et")]
        if all(key in logs for key in keys):
            derived[f"{prefix}region_dice"] = float(sum(logs[k] for k in keys) / 3)
    return derived


class RunLog:
    """A run folder's models, history and state, epoch by epoch; a ``*loss`` monitor: lower wins."""

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
        self.minimize = monitor.endswith("loss")
        self.best = best if best is not None else (math.inf if self.minimize else -math.inf)
        self.best_epoch = best_epoch
        self.history = list(history or [])
        self.target_epochs = target_epochs

    def end_epoch(
        self, model: Any, epoch: int, logs: Mapping[str, Any], seconds: float
    ) -> dict[str, Any]:
        """Record finished ``epoch`` (0-based); returns its history record (``epoch`` 1-based).
        ``state.json`` is the commit point between the pending and the renamed models."""
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
        write_csv(self.history, self.run_dir / "history.csv")
        write_json(self.run_dir / "history.json", self.history)
        names = ["model_last.keras"]
        if (value < self.best) if self.minimize else (value > self.best):
            self.best, self.best_epoch = value, epoch + 1
            names.append("model.keras")
        for name in names:
            with atomic_path(_pending_path(self.run_dir, name, epoch + 1), suffix=".keras") as tmp:
                model.save(tmp)
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
