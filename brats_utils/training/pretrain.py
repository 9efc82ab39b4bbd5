"""Pretraining on synthetic cases (``brats train --pretrain N``, the study's ``+pretrain``)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from brats_utils.data.split import save_split
from brats_utils.data.synth import write_synthetic_dataset
from brats_utils.errors import BratsError
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.training.run_folder import load_config, load_state

__all__ = ["pretrain"]


def pretrain(experiment, home, n_cases, preprocessing, settings, *, run_name="run", workers=1,
             verbose="auto") -> Path:  # fmt: skip
    """Train ``settings`` in ``home`` on ``n_cases`` synthetic cases (a tenth validate) cached
    with ``preprocessing``; returns the model. Resumable; once done only ``home/run_name`` stays."""
    run_dir = Path(home) / run_name
    resume = (run_dir / "state.json").exists()
    if resume and load_state(run_dir)["epoch"] >= load_config(run_dir)["training"]["epochs"]:
        return run_dir / "model.keras"
    from brats_utils.training.train import train  # loads Keras

    data_dir, cache_dir, progress = Path(home) / "data", Path(home) / "cache", verbose != 0
    write_synthetic_dataset(data_dir, n_cases, settings.seed, workers=workers, progress=progress)
    ids = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    split = {c: "validation" if i < n_cases // 10 else "train" for i, c in enumerate(ids)}
    report = build_cache(data_dir, cache_dir, preprocessing, workers=workers, progress=progress,
                         expected_shape=None)  # fmt: skip
    if report.failed:
        raise BratsError(f"synthetic cases could not be cached in {cache_dir}: {report.failed}")
    train(experiment, cache_dir, run_dir, replace(settings, pretrained=None),
          split=save_split(split, Path(home) / "split.csv"), resume=resume, force=not resume,
          workers=workers, verbose=verbose)  # fmt: skip
    shutil.rmtree(data_dir)
    shutil.rmtree(cache_dir)
    return run_dir / "model.keras"
