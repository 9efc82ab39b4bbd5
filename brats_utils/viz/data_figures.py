"""Figures of the data set: intensity histograms, label volumes, splits, preprocessing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from brats_utils.conventions import MODALITIES, MODALITY_NAMES, TUMOUR_CLASSES
from brats_utils.data.split import SPLITS
from brats_utils.preprocessing.normalize import normalize_image
from brats_utils.viz.drawing import (
    LABEL_ABBREVIATIONS,
    LABEL_COLORS,
    axial_view,
    finish_figure,
    label_legend_handles,
    label_overlay,
    new_axes,
)

__all__ = [
    "IntensityHistograms",
    "intensity_histograms",
    "plot_intensity_histograms",
    "label_volumes",
    "plot_label_volumes",
    "plot_split_counts",
    "plot_preprocessing",
    "slice_label_stats",
    "plot_slice_label_stats",
]


@dataclass
class IntensityHistograms:
    """Voxel counts ``counts[modality][tissue]`` over ``edges``; tissues brain, NCR, ED, ET."""

    edges: np.ndarray
    counts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    n_cases: int = 0


def intensity_histograms(
    cases: Iterable[tuple[np.ndarray, np.ndarray | None]], *, normalize: bool = True
) -> IntensityHistograms:
    """Brain-voxel intensity histograms over ``(image, seg)`` pairs in 100 bins over [-4, 6],
    outside values in the end bins; ``normalize``: z-score each case first."""
    bins, edges = 100, np.linspace(-4.0, 6.0, 101)
    tissues = {"brain": 0, **{LABEL_ABBREVIATIONS[c]: c for c in TUMOUR_CLASSES}}
    result = IntensityHistograms(
        edges=edges, counts={m: {t: np.zeros(bins, np.int64) for t in tissues} for m in MODALITIES}
    )
    for image, seg in cases:
        if normalize:
            image = normalize_image(image, "zscore")
        brain = np.any(image != 0, axis=-1)
        classes = seg[brain] if seg is not None else np.zeros(int(brain.sum()), np.uint8)
        clipped = np.clip(image[brain], edges[0], edges[-1])
        for c, name in enumerate(MODALITIES):
            for tissue, cls in tissues.items():
                values = clipped[classes == cls, c]
                result.counts[name][tissue] += np.histogram(values, bins=edges)[0]
        result.n_cases += 1
    return result


def plot_intensity_histograms(
    histograms: IntensityHistograms,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    modalities = list(histograms.counts)
    fig, axes = new_axes(ax, len(modalities), panel_size=(3.6, 2.8))
    centres = (histograms.edges[:-1] + histograms.edges[1:]) / 2
    width = np.diff(histograms.edges)
    colors = {"brain": "0.4", **{LABEL_ABBREVIATIONS[c]: LABEL_COLORS[c] for c in TUMOUR_CLASSES}}
    for axis, modality in zip(axes, modalities, strict=True):
        for tissue, counts in histograms.counts[modality].items():
            total = counts.sum()
            if total == 0:
                continue
            axis.plot(centres, counts / (total * width), color=colors[tissue], label=tissue)
        axis.set_title(MODALITY_NAMES.get(modality, modality))
        axis.set_xlabel("intensity (z-score over brain)")
    axes[0].set_ylabel("density")
    axes[-1].legend(fontsize="small")
    return finish_figure(fig, out_path, f"Intensity by label, {histograms.n_cases} cases")


def label_volumes(seg: np.ndarray, voxel_volume_ml: float = 0.001) -> dict[str, float]:
    """``{"NCR": mL, "ED": mL, "ET": mL}`` of a class array."""
    counts = np.bincount(np.asarray(seg, dtype=np.int64).ravel(), minlength=4)
    return {LABEL_ABBREVIATIONS[c]: float(counts[c] * voxel_volume_ml) for c in TUMOUR_CLASSES}


def plot_label_volumes(
    volumes, *, ax: Axes | None = None, out_path: Path | str | None = None
) -> Figure:
    """Stacked NCR, ED, ET bars (``volumes``: mL columns, indexed by case), largest first."""
    names = [LABEL_ABBREVIATIONS[c] for c in TUMOUR_CLASSES]
    missing = [n for n in names if n not in volumes.columns]
    if missing:
        raise ValueError(f"volumes lacks columns {missing}; expected {names}")
    order = volumes[names].sum(axis=1).sort_values(ascending=False).index
    table = volumes.loc[order, names]
    fig, (axis,) = new_axes(ax, 1, panel_size=(max(5.0, 0.25 * len(table)), 3.2))
    colors = [LABEL_COLORS[c] for c in TUMOUR_CLASSES]
    table.plot.bar(stacked=True, ax=axis, color=colors, width=0.85, xlabel="")
    axis.tick_params(axis="x", labelsize="x-small")
    if len(table) > 60:
        axis.set(xticks=[], xlabel=f"{len(table)} cases, sorted by tumour volume")
    axis.set_ylim(0, 1.08 * max(float(table.sum(axis=1).max()), 1e-3))
    axis.set(ylabel="volume (mL)", title="Tumour label volumes per case")
    axis.legend()
    return finish_figure(fig, out_path)


def plot_split_counts(
    split: Mapping[str, str], *, ax: Axes | None = None, out_path: Path | str | None = None
) -> Figure:
    names = [s for s in SPLITS if s in split.values()]  # load_split allows no other
    counts = [sum(1 for v in split.values() if v == s) for s in names]
    fig, (axis,) = new_axes(ax, 1, panel_size=(4.0, 3.0))
    bars = axis.bar(names, counts, color=["#4c72b0", "#dd8452", "#55a868"][: len(names)])
    axis.bar_label(bars)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set(ylabel="cases", title=f"Cases per split ({len(split)} in all)")
    return finish_figure(fig, out_path)


def plot_preprocessing(
    raw_image: np.ndarray,
    raw_seg: np.ndarray,
    cached_image: np.ndarray,
    cached_labels: np.ndarray,
    *,
    raw_index: int,
    cached_index: int,
    case_id: str = "",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """One slice before (``(X, Y, Z, C)``) and after (``(S, size, size, C)``) preprocessing."""
    n = len(MODALITIES)
    if raw_image.shape[-1] != n or cached_image.shape[-1] != n:
        raise ValueError(
            f"both images need {n} channels, got {raw_image.shape} and {cached_image.shape}"
        )
    fig, axes = new_axes(ax, 2 * (n + 1), ncols=n + 1, panel_size=(2.9, 2.8))
    rows = [
        ("raw", raw_image[:, :, raw_index], raw_seg[:, :, raw_index]),
        ("preprocessed", cached_image[cached_index], cached_labels[cached_index]),
    ]
    for r, (row_name, image, labels) in enumerate(rows):
        view = axial_view(image)
        for c, name in enumerate(MODALITIES):
            axis = axes[r * (n + 1) + c]
            shown = axis.imshow(view[..., c], cmap="gray", interpolation="nearest")
            fig.colorbar(shown, ax=axis, shrink=0.75)
            axis.set_title(
                f"{MODALITY_NAMES.get(name, name)}, {row_name} {view.shape[:2]}", fontsize="small"
            )
            axis.set_axis_off()
        axis = axes[r * (n + 1) + n]
        axis.imshow(np.zeros(view.shape[:2]), cmap="gray")
        axis.imshow(label_overlay(axial_view(labels), alpha=1.0))
        axis.set_title(f"labels, {row_name}", fontsize="small")
        axis.set_axis_off()
    axes[-1].legend(handles=label_legend_handles(), loc="lower right", fontsize="x-small")
    fig.suptitle(f"{case_id + ': ' if case_id else ''}axial slice {raw_index}, before and after")
    return finish_figure(fig, out_path)


def slice_label_stats(cache) -> pd.DataFrame:
    """Label pixels per ``axial_slice`` over the labelled cached cases, and ``tumour_cases``."""
    counts, with_tumour, n_cases = None, None, 0
    for case_id in (c for c in cache.case_ids if cache.has_labels(c)):
        labels = np.asarray(cache.labels(case_id))
        per_slice = np.stack([np.count_nonzero(labels == c, axis=(1, 2)) for c in range(4)], 1)
        if counts is None:
            counts, with_tumour = np.zeros_like(per_slice), np.zeros(len(labels))
        if per_slice.shape != counts.shape:
            raise ValueError(f"{case_id}: {len(labels)} cached slices, expected {len(counts)}")
        counts += per_slice
        with_tumour += per_slice[:, 1:].sum(axis=1) > 0
        n_cases += 1
    if counts is None:
        raise ValueError("slice_label_stats needs at least one cached case, got none")
    columns = ["background", *(LABEL_ABBREVIATIONS[c] for c in TUMOUR_CLASSES)]
    index = pd.Index(cache.settings.slice_start + np.arange(len(counts)), name="axial_slice")
    table = pd.DataFrame(counts, index=index, columns=columns)
    table["tumour_cases"] = with_tumour / n_cases
    return table


def plot_slice_label_stats(
    stats: pd.DataFrame, *, ax: Sequence[Axes] | None = None, out_path: Path | str | None = None
) -> Figure:
    """Tumour pixels per axial slice (stacked) and the share of cases with tumour there."""
    fig, (left, right) = new_axes(ax, 2, panel_size=(4.6, 3.0))
    names = [LABEL_ABBREVIATIONS[c] for c in TUMOUR_CLASSES]
    stats[names].plot.area(ax=left, color=[LABEL_COLORS[c] for c in TUMOUR_CLASSES], lw=0)
    left.set(
        xlabel="axial slice index", ylabel="pixels (all cases)", title="Tumour labels per slice"
    )
    left.legend(fontsize="small")
    right.plot(stats.index, 100 * stats["tumour_cases"], color="black")
    right.set(xlabel="axial slice index", ylabel="% of cases", ylim=(0, 100))
    right.set_title("Cases with tumour on the slice")
    return finish_figure(fig, out_path)
