"""What the numbered notebooks share: output folders, the split, metrics, tables."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from brats_utils.conventions import channel_indices, classes_from_scores, labels_to_classes
from brats_utils.data.cases import discover_cases, find_case, load_case
from brats_utils.data.nifti import read_nifti
from brats_utils.data.predictions import load_prediction
from brats_utils.data.split import load_split, resolve_split
from brats_utils.errors import BratsError, CaseError
from brats_utils.evaluation.slice_metrics import (
    confusion_matrix,
    label_metrics,
    region_dice_from_cm,
)
from brats_utils.files import read_json
from brats_utils.preprocessing.normalize import normalize_image
from brats_utils.preprocessing.slices import stack_context
from brats_utils.viz.data_figures import label_volumes

__all__ = [
    "native_logs_to",
    "require_cases",
    "OutputPaths",
    "ensure_split",
    "label_volume_table",
    "evaluate_slices",
    "example_slices",
    "volume_examples",
    "variant_record",
    "load_variant_metrics",
    "load_per_case",
    "rank_cases",
]


class OutputPaths:
    """A notebook series' folders under ``root``: figures, tables, cache, runs, predictions."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    @property
    def figures(self) -> Path:
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        (self.root / "tables").mkdir(parents=True, exist_ok=True)
        return self.root / "tables"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def figure(self, name: str) -> Path:
        return self.figures / name

    def table(self, name: str) -> Path:
        return self.tables / name

    def run(self, experiment: str) -> Path:
        return self.root / "runs" / experiment

    def predictions(self, experiment: str, split: str) -> Path:
        return self.root / "predictions" / experiment / split


def ensure_split(data_dir: Path | str, split_csv: str | Path = "", seed: int = 2021):
    """``({case_id: "train"|"validation"|"test"}, CSV path)``; the split is written if missing."""
    path, _ = resolve_split(split_csv or None, data_dir, create=True, seed=seed)
    return load_split(path), path


def label_volume_table(cases: Sequence) -> pd.DataFrame:
    """Label volumes in mL (``NCR``, ``ED``, ``ET``, ``WT``) by case id, from file headers."""
    rows = {}
    for files in tqdm(cases, desc="label volumes", unit="case"):
        if files.seg is None:
            continue
        labels, image = read_nifti(files.seg, files.case_id)
        voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000.0
        rows[files.case_id] = label_volumes(labels_to_classes(labels, files.release), voxel_ml)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["NCR", "ED", "ET"])
    table["WT"] = table.sum(axis=1)
    table.index.name = "case"
    return table


def require_cases(data_dir: Path | str) -> list:
    """The case folders of ``data_dir``, or a BratsError that says how to make some."""
    cases = discover_cases(data_dir) if Path(data_dir).exists() else []
    if not cases:
        raise BratsError(
            f"no BraTS case folders in data_dir={str(data_dir)!r}. Generate synthetic cases "
            "with `make lab` or `brats synth --out data/synthetic --cases 24` (from the project "
            "folder), or set data_dir to your BraTS folder"
        )
    return cases


def native_logs_to(out_dir: Path | str) -> Path | None:
    """Send this kernel's native stderr to ``OUT_DIR/logs/native_stderr.log`` (or ``None``)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    path = Path(out_dir) / "logs" / "native_stderr.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    return path


def evaluate_slices(
    model,
    cache,
    case_ids: Sequence[str],
    channels: Sequence[str],
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> dict[str, float]:
    """Slice label metrics of ``model`` over cached cases from one summed confusion matrix;
    the model takes ``(B, size, size, len(channels))`` and returns softmax scores."""
    if not case_ids:
        raise ValueError("evaluate_slices needs at least one case id, got none")
    index = channel_indices(channels)
    cm = np.zeros((4, 4), dtype=np.int64)
    n_slices = 0
    for case_id in tqdm(case_ids, desc="slice metrics", unit="case", disable=not progress):
        images = cache.images(case_id)
        x = stack_context(images, np.arange(len(images)), 1, index)
        y = np.asarray(cache.labels(case_id))
        scores = model.predict(x, batch_size=batch_size, verbose=0)
        cm += confusion_matrix(y, classes_from_scores(scores))
        n_slices += len(x)
    regions = {f"region_dice_{k}": v for k, v in region_dice_from_cm(cm).items()}
    return {**label_metrics(cm), **regions, "n_slices": n_slices}


def example_slices(
    cache, case_ids: Sequence[str], n: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each case's cached slice with the most tumour, for up to ``n`` cases: ``(images, labels,
    titles)``, ``(k, size, size, 4)`` float32, ``(k, size, size)`` uint8, ``"case, axial z"``."""
    if n < 1 or not case_ids:
        raise ValueError(f"need n >= 1 and at least one case, got n={n}, {len(case_ids)} cases")
    chosen = []
    for case_id in case_ids[:n]:
        area = np.count_nonzero(np.asarray(cache.labels(case_id)), axis=(1, 2))
        chosen.append((case_id, int(np.argmax(area))))
    images = np.stack([np.asarray(cache.images(c)[s], dtype=np.float32) for c, s in chosen])
    labels = np.stack([np.asarray(cache.labels(c)[s]) for c, s in chosen])
    titles = [f"{c}, axial {cache.slice_indices(c)[s]}" for c, s in chosen]
    return images, labels, titles


def volume_examples(
    data_dir: Path | str, pred_dir: Path | str, case_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Each case's axial slice with most tumour: ``(images, truth, pred, titles)``, ``(N, X, Y,
    4)`` float32 z-scored over the brain, ``(N, X, Y)`` uint8 classes twice, titles."""
    rows = []
    for case_id in case_ids:
        case = load_case(find_case(data_dir, case_id), require_seg=True)
        pred = load_prediction(pred_dir, case_id, case.release)
        if pred is None:
            raise CaseError(case_id, "no prediction", Path(pred_dir) / f"{case_id}.nii.gz")
        z = int(np.argmax(np.count_nonzero(case.seg, axis=(0, 1))))
        image = normalize_image(case.image, "zscore", case_id)[:, :, z]  # as in training
        rows.append((image, case.seg[:, :, z], pred[:, :, z], f"{case_id}, axial {z}"))
    images, truth, pred, titles = zip(*rows, strict=True)
    return np.stack(images), np.stack(truth), np.stack(pred), list(titles)


def variant_record(
    experiment,
    notebook: str,
    slice_metrics: Mapping[str, Mapping[str, float]],
    region_metrics: Mapping[str, pd.DataFrame],
    **extra: Any,
) -> dict[str, Any]:
    """The ``tables/NN_metrics.json`` record of a variant's notebook, read by 06."""
    regions = {}
    for split, frame in region_metrics.items():
        numeric = frame.select_dtypes("number")
        regions[split] = {"n_cases": len(frame), **numeric.mean().astype(float).to_dict()}
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "channels": list(experiment.channels),
        "notebook": notebook,
        "slice_metrics": {s: dict(m) for s, m in slice_metrics.items()},
        "region_metrics": regions,
        **extra,
    }


def load_variant_metrics(tables_dir: Path | str, kind: str = "slice_metrics") -> pd.DataFrame:
    """A DataFrame of ``kind`` indexed by ``(split, experiment)``; a BratsError if there is none."""
    if kind not in ("slice_metrics", "region_metrics"):
        raise ValueError(f"kind must be 'slice_metrics' or 'region_metrics', got {kind!r}")
    paths = sorted(Path(tables_dir).glob("*_metrics.json"))
    if not paths:
        raise BratsError(f"no NN_metrics.json in {tables_dir}: run notebooks 03-05 first")
    records = [read_json(path, "variant metrics") for path in paths]
    rows = {(s, r["experiment"]): metrics for r in records for s, metrics in r[kind].items()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["split", "experiment"])
    return frame


def load_per_case(tables_dir: Path | str, split: str) -> dict[str, pd.DataFrame]:
    """``{experiment: per-case table}`` of the ``NN_cases_<split>.csv`` in ``tables_dir``."""
    found = {}
    for path in sorted(Path(tables_dir).glob("*_metrics.json")):
        record = read_json(path, "variant metrics")
        cases = Path(tables_dir) / f"{record['notebook']}_cases_{split}.csv"
        if cases.is_file():
            found[record["experiment"]] = pd.read_csv(cases)
    return found


def rank_cases(per_case: pd.DataFrame) -> pd.DataFrame:
    """A per-case table sorted best first by ``mean_dice``, the mean of ``dice_<region>``."""
    columns = ["dice_WT", "dice_TC", "dice_ET"]
    missing = [c for c in columns if c not in per_case.columns]
    if missing:
        raise ValueError(f"per-case table lacks columns {missing}")
    ranked = per_case.assign(mean_dice=per_case[columns].mean(axis=1))
    return ranked.sort_values("mean_dice", ascending=False, kind="stable").reset_index(drop=True)
