"""The steps notebooks 03-05 share after fitting their model, and their own questions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brats_utils.conventions import MODALITIES, MODALITY_NAMES, channel_indices, classes_from_scores
from brats_utils.data.split import cases_in
from brats_utils.evaluation.volumes import evaluate_folder
from brats_utils.files import write_csv
from brats_utils.inference.predict import predict_cases
from brats_utils.notebooks.support import OutputPaths, evaluate_slices, example_slices

__all__ = [
    "variant_cases",
    "score_volumes",
    "predict_examples",
    "modality_ablation",
    "channel_contrast",
]

#: The splits a variant notebook scores, in this order.
SCORED = ("validation", "test")
#: Slice metrics a variant notebook reports, in this order.
SLICE_COLUMNS = ("dice_necrotic", "dice_edema", "dice_enhancing", "dice", "mean_iou")


def variant_cases(split: Mapping[str, str], max_cases: int = 0) -> dict[str, list[str]]:
    """``{"validation": [...], "test": [...]}``, sorted, at most ``max_cases`` each (0: all)."""
    cases = {s: cases_in(split, s)[: max_cases or None] for s in SCORED}
    return {s: ids for s, ids in cases.items() if ids}


def score_volumes(
    model_path: Path | str,
    data_dir: Path | str,
    cases: Mapping[str, Sequence[str]],
    paths: OutputPaths,
    notebook: str,
    *,
    batch_size: int = 64,
    tta: bool = False,
) -> dict[str, pd.DataFrame]:
    """``{split: per-case table}`` of whole-volume metrics, also written to ``tables/``."""
    experiment = Path(model_path).parent.name
    tables = {}
    for split, case_ids in cases.items():
        pred_dir = paths.predictions(experiment, split)
        predict_cases(model_path, data_dir, pred_dir, case_ids=list(case_ids),
                      batch_size=batch_size, tta=tta, overwrite=True)  # fmt: skip
        tables[split] = evaluate_folder(pred_dir, data_dir, case_ids=list(case_ids))
        write_csv(tables[split], paths.table(f"{notebook}_cases_{split}.csv"))
    return tables


def predict_examples(
    model, cache, case_ids: Sequence[str], channels: Sequence[str], n: int, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(images, truth, predicted, titles)``; ``images`` keep all four modalities."""
    images, truth, titles = example_slices(cache, case_ids, n)
    scores = model.predict(images[..., channel_indices(channels)], batch_size=batch_size, verbose=0)
    return images, truth, classes_from_scores(scores), titles


def modality_ablation(
    model, cache, case_ids: Sequence[str], channels: Sequence[str], *, batch_size: int = 64
) -> pd.DataFrame:
    """Slice metrics with each of the model's ``channels`` set to 0, a row per ``input``;
    ``drop``: the intact Dice minus this row's."""
    if not channels:
        raise ValueError("modality_ablation needs the model's channels, got none")
    inputs = {"all": cache}
    for channel, index in zip(channels, channel_indices(channels), strict=True):
        inputs[f"without {MODALITY_NAMES.get(channel, channel)}"] = _BlankedCache(cache, index)
    rows = {
        name: evaluate_slices(
            model, images, case_ids, channels, batch_size=batch_size, progress=False
        )
        for name, images in inputs.items()
    }
    columns = [*SLICE_COLUMNS, "region_dice_WT", "region_dice_TC", "region_dice_ET"]
    table = pd.DataFrame.from_dict(rows, orient="index")[columns]
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
    """Cohen's d of each pair of :data:`CONTRASTS` per modality and their mean, per case over
    the brain, then the median over cases; ``cases``: the fewest cases any pair had."""
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
