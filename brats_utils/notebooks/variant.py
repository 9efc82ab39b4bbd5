"""One fusion variant, as notebooks 03, 04 and 05 run it, and the question each asks of it.

The three variant notebooks share every step through :class:`Variant` (train, score on
slices and whole volumes, save the record notebook 06 reads, show examples) and differ in
their subject:

* 03 (``early4``) asks which modality the network needs: :func:`modality_ablation` blanks
  one input channel at a time at inference (0 is the brain mean after the z-score) and
  measures the slice Dice again;
* 04 (``mean4``) asks what averaging the modalities keeps and loses:
  :func:`channel_contrast` measures how far apart the tissues lie in each modality and in
  their mean (Cohen's d of brain vs tumour, edema vs core, enhancing vs necrotic);
* 05 (``early2``) asks whether FLAIR + T1ce does as well as all four, case by case:
  :func:`compare_variant_tables` pairs its per-case whole-volume metrics with 03's.

Keras is imported only by the methods that train or load a model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brats_utils.conventions import MODALITIES, MODALITY_NAMES, channel_indices
from brats_utils.errors import BratsError
from brats_utils.notebooks.support import (
    OutputPaths,
    ensure_split,
    evaluate_slices,
    example_slices,
    variant_record,
)

__all__ = [
    "Variant",
    "modality_ablation",
    "CONTRASTS",
    "channel_contrast",
    "compare_variant_tables",
]

#: Slice metrics a variant notebook reports, in this order.
SLICE_COLUMNS = ("dice_necrotic", "dice_edema", "dice_enhancing", "dice", "mean_iou")


@dataclass
class Variant:
    """One fusion variant of a notebook run: its settings, run folder and results so far.

    Build it with :meth:`from_parameters`; then :meth:`train`, :meth:`score_slices`,
    :meth:`score_volumes`, :meth:`save` in that order (each later step needs the earlier).

    Attributes:
        notebook: the notebook's number (``"03"``), the prefix of its figures and tables.
        experiment: the :class:`~brats_utils.model.experiments.Experiment`.
        paths: the run's :class:`~brats_utils.notebooks.support.OutputPaths`.
        cache: the open slice cache (notebook 02's).
        data_dir: the folder of case folders (for whole-volume prediction).
        split_path: the split file.
        subsets: the validation and test case ids scored.
        settings: the :class:`~brats_utils.training.settings.TrainSettings`.
        predict_batch_size: slices per prediction batch.
        tta: flip test-time augmentation for whole volumes.
        result: what :func:`~brats_utils.training.train.train` returned.
        train_seconds: seconds the training took here.
        slice_metrics: ``{split: evaluate_slices(...)}``.
        region_metrics: ``{split: per-case DataFrame}`` of the whole volumes.
    """

    notebook: str
    experiment: Any
    paths: OutputPaths
    cache: Any
    data_dir: Path
    split_path: Path
    subsets: dict[str, list[str]]
    settings: Any
    predict_batch_size: int = 64
    tta: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = float("nan")
    slice_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    region_metrics: dict[str, pd.DataFrame] = field(default_factory=dict)
    _model: Any = None

    @classmethod
    def from_parameters(
        cls, notebook: str, experiment: Any, namespace: Mapping[str, Any]
    ) -> Variant:
        """The variant of a notebook's parameter cell (``globals()``, after ``use_profile``).

        Reads ``data_dir``, ``out_dir``, ``cache_dir``, ``split_csv``, ``max_cases``,
        ``predict_batch_size``, ``tta`` and the training parameters
        (:meth:`TrainSettings.from_parameters`); opens the cache and the split.
        """
        from brats_utils.data.split import cases_in
        from brats_utils.model.experiments import get_experiment
        from brats_utils.preprocessing.cache import open_cache
        from brats_utils.training.settings import TrainSettings

        paths = OutputPaths(namespace["out_dir"])
        cache = open_cache(namespace.get("cache_dir") or paths.cache)
        split, split_path = ensure_split(namespace["data_dir"], namespace.get("split_csv", ""))
        limit = int(namespace.get("max_cases", 0)) or None
        subsets = {s: cases_in(split, s)[:limit] for s in ("validation", "test")}
        return cls(
            notebook=notebook,
            experiment=get_experiment(experiment),
            paths=paths,
            cache=cache,
            data_dir=Path(namespace["data_dir"]),
            split_path=Path(split_path),
            subsets=subsets,
            settings=TrainSettings.from_parameters(namespace),
            predict_batch_size=int(namespace.get("predict_batch_size", 64)),
            tta=bool(namespace.get("tta", False)),
        )

    @property
    def run_dir(self) -> Path:
        """``OUT_DIR/runs/<experiment>``."""
        return self.paths.run(self.experiment.name)

    @property
    def scored_splits(self) -> list[str]:
        """The splits with cases (validation first)."""
        return [s for s, ids in self.subsets.items() if ids]

    def build_model(self):
        """The untrained network (for its summary)."""
        from brats_utils.model.unet import build_model

        return build_model(self.experiment, self.cache.settings.size, self.settings.unet)

    def train(self, *, resume: bool = False, verbose: int | str = 2) -> dict[str, Any]:
        """Train into :attr:`run_dir` (from scratch, or resumed), timing it."""
        from brats_utils.training.train import train

        start = time.perf_counter()
        self.result = train(
            self.experiment,
            self.cache.cache_dir,
            self.run_dir,
            self.settings,
            split=self.split_path,
            resume=resume,
            force=not resume,
            verbose=verbose,
        )
        self.train_seconds = time.perf_counter() - start
        self._model = None
        return self.result

    @property
    def model(self):
        """The selected model of the run (``model.keras``), loaded once."""
        if self._model is None:
            from brats_utils.inference.run_config import load_run

            self._model, _ = load_run(self.run_dir / "model.keras")
        return self._model

    def score_slices(self) -> pd.DataFrame:
        """Slice label metrics of each scored split (one confusion matrix per split)."""
        self.slice_metrics = {
            s: evaluate_slices(
                self.model,
                self.cache,
                self.subsets[s],
                self.experiment.channels,
                batch_size=self.predict_batch_size,
            )
            for s in self.scored_splits
        }
        return pd.DataFrame(self.slice_metrics)

    def score_volumes(self) -> pd.DataFrame:
        """Whole-volume region metrics per case (``brats predict`` + ``brats evaluate``).

        Writes ``tables/NN_cases_<split>.csv``; returns the mean and median per split.
        """
        from brats_utils.evaluation.volumes import evaluate_folder, summarize
        from brats_utils.files import write_csv
        from brats_utils.inference.predict import predict_cases

        for s in self.scored_splits:
            pred_dir = self.paths.predictions(self.experiment.name, s)
            predict_cases(
                self.run_dir / "model.keras",
                self.data_dir,
                pred_dir,
                case_ids=self.subsets[s],
                batch_size=self.predict_batch_size,
                tta=self.tta,
                overwrite=True,
            )
            self.region_metrics[s] = evaluate_folder(
                pred_dir, self.data_dir, case_ids=self.subsets[s]
            )
            write_csv(self.region_metrics[s], self.paths.table(f"{self.notebook}_cases_{s}.csv"))
        return pd.concat(
            {s: summarize(df)[["mean", "median"]] for s, df in self.region_metrics.items()},
            axis=1,
        )

    def save(self) -> Path:
        """Write ``tables/NN_metrics.json`` (:func:`variant_record`), read by notebook 06."""
        from brats_utils.files import write_json

        record = variant_record(
            self.experiment,
            self.notebook,
            self.slice_metrics,
            self.region_metrics,
            epochs=self.settings.epochs,
            best_epoch=self.result.get("best_epoch"),
            train_seconds=round(self.train_seconds, 1),
            image_size=self.cache.settings.size,
            base_filters=self.settings.unet.base_filters,
        )
        return write_json(self.paths.table(f"{self.notebook}_metrics.json"), record)

    def examples(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """``(images, truth, predicted classes, titles)`` of the ``n`` slices with most tumour
        (validation cases, else test), images with all four modalities for context."""
        from brats_utils.conventions import classes_from_scores

        case_ids = self.subsets["validation"] or self.subsets["test"]
        images, truth, titles = example_slices(self.cache, case_ids, n)
        x = images[..., channel_indices(self.experiment.channels)]
        scores = self.model.predict(x, batch_size=self.predict_batch_size, verbose=0)
        return images, truth, classes_from_scores(scores), titles


def modality_ablation(
    model,
    cache,
    case_ids: Sequence[str],
    channels: Sequence[str],
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> pd.DataFrame:
    """Slice metrics with each input channel blanked in turn, against the intact input.

    Blanking sets the channel to 0 everywhere: after the brain z-score that is the brain's mean
    intensity inside the brain and the background value outside, so the network sees a flat,
    uninformative modality rather than an out-of-range one.

    Args:
        model: a Keras model on ``len(channels)`` input channels.
        cache: an open slice cache.
        case_ids: the cases (validation cases in notebook 03).
        channels: the model's channels in order (``experiment.channels``).
        batch_size: slices per prediction batch.
        progress: show a progress bar per configuration.

    Returns:
        DataFrame indexed by ``input`` (``"all"``, then ``"without T1"``, ...) with
        :data:`SLICE_COLUMNS`, the slice region Dice ``region_dice_WT/TC/ET``, and ``drop``:
        the intact mean Dice minus this row's (positive = the network needed it).
    """
    if not channels:
        raise ValueError("modality_ablation needs the model's channels, got none")
    rows = {"all": evaluate_slices(model, cache, case_ids, channels, batch_size=batch_size,
                                   progress=progress)}  # fmt: skip
    for position, channel in enumerate(channels):
        blanked = _BlankedCache(cache, channel_indices(channels)[position])
        name = f"without {MODALITY_NAMES.get(channel, channel)}"
        rows[name] = evaluate_slices(
            model, blanked, case_ids, channels, batch_size=batch_size, progress=progress
        )
    table = pd.DataFrame.from_dict(rows, orient="index")
    columns = [*SLICE_COLUMNS, "region_dice_WT", "region_dice_TC", "region_dice_ET"]
    table = table[columns]
    table.index.name = "input"
    table["drop"] = table.loc["all", "dice"] - table["dice"]
    return table


class _BlankedCache:
    """A slice cache whose images have one channel (cache order) set to 0."""

    def __init__(self, cache, channel: int):
        self._cache, self._channel = cache, channel

    def images(self, case_id: str) -> np.ndarray:
        images = np.array(self._cache.images(case_id), dtype=np.float32)
        images[..., self._channel] = 0.0
        return images

    def labels(self, case_id: str):
        return self._cache.labels(case_id)


#: The tissue pairs :func:`channel_contrast` measures: name -> (classes A, classes B).
CONTRASTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "tumour vs brain": ((1, 2, 3), (0,)),
    "edema vs core": ((2,), (1, 3)),
    "enhancing vs necrotic": ((3,), (1,)),
}


def channel_contrast(cache, case_ids: Sequence[str]) -> pd.DataFrame:
    """How far apart the tissues lie in each modality and in the four modalities' mean.

    For every cached case, brain pixels (any channel non-zero) are grouped by class, and for
    each pair of :data:`CONTRASTS` the absolute Cohen's d is taken,
    ``|mean_A - mean_B| / pooled standard deviation``, per channel and for the channel mean
    (what ``mean4`` feeds its U-Net). The table holds the median over cases that have both
    tissues (so one large case does not dominate).

    Returns:
        DataFrame indexed by channel (``T1``, ``T1ce``, ``T2``, ``FLAIR``, ``mean``) with one
        column per contrast and ``cases`` (how many cases had each tissue pair; the minimum).

    Raises:
        ValueError: no case ids.
    """
    if not case_ids:
        raise ValueError("channel_contrast needs at least one case id, got none")
    names = [*(MODALITY_NAMES[m] for m in MODALITIES), "mean"]
    per_case: dict[str, list[list[float]]] = {c: [[] for _ in names] for c in CONTRASTS}
    for case_id in case_ids:
        images = np.asarray(cache.images(case_id), dtype=np.float32)
        labels = np.asarray(cache.labels(case_id))
        values = np.concatenate([images, images.mean(axis=-1, keepdims=True)], axis=-1)
        brain = np.any(images != 0, axis=-1)
        for contrast, (a, b) in CONTRASTS.items():
            in_a, in_b = brain & np.isin(labels, a), brain & np.isin(labels, b)
            if in_a.sum() < 2 or in_b.sum() < 2:
                continue
            for k in range(len(names)):
                per_case[contrast][k].append(_cohens_d(values[..., k][in_a], values[..., k][in_b]))
    table = pd.DataFrame(
        {c: [float(np.median(v)) if v else np.nan for v in per_case[c]] for c in CONTRASTS},
        index=pd.Index(names, name="channel"),
    )
    table["cases"] = min(len(per_case[c][0]) for c in CONTRASTS)
    return table


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    pooled = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    return float(abs(a.mean() - b.mean()) / np.sqrt(pooled)) if pooled > 0 else 0.0


def compare_variant_tables(
    paths: OutputPaths,
    baseline: str,
    variant: str,
    split: str,
    metrics: Sequence[str] = ("dice_WT", "dice_TC", "dice_ET", "hd95_WT", "hd95_TC", "hd95_ET"),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """Paired per-case comparison of two variant notebooks' whole-volume tables.

    Args:
        paths: the output folders.
        baseline: notebook number of model A (``"03"``).
        variant: notebook number of model B (``"05"``).
        split: ``"test"`` or ``"validation"``.
        metrics: per-case columns to compare.

    Returns:
        ``(a, b, comparison)``: the two per-case tables and
        :func:`~brats_utils.evaluation.compare.compare_tables` of ``B - A``; ``None`` when
        the baseline's table is not there yet (its notebook has not run).

    Raises:
        BratsError: the two tables hold different cases (different splits or ``max_cases``).
    """
    from brats_utils.evaluation.compare import compare_tables

    path_a = paths.tables / f"{baseline}_cases_{split}.csv"
    path_b = paths.tables / f"{variant}_cases_{split}.csv"
    if not path_a.is_file():
        return None
    if not path_b.is_file():
        raise BratsError(f"{path_b} is missing: run this notebook's whole-volume cell first")
    a, b = pd.read_csv(path_a), pd.read_csv(path_b)
    return a, b, compare_tables(a, b, [m for m in metrics if m in a.columns and m in b.columns])
