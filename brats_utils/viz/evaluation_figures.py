"""Figures of the evaluation: paired comparisons, Dice against tumour volume, error maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from brats_utils.conventions import MODALITIES
from brats_utils.viz.drawing import (
    GREY,
    brain_box,
    error_legend_handles,
    error_overlay,
    finish_figure,
    new_axes,
    slice_2d,
)

__all__ = ["plot_paired_cases", "plot_dice_vs_volume", "plot_error_map"]


def plot_paired_cases(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("dice_WT", "dice_TC", "dice_ET"),
    labels: tuple[str, str] = ("A", "B"),
    title: str = "Paired per-case comparison",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """A panel per metric: a line per case from A to B (green where B does better), the means."""
    from brats_utils.evaluation.compare import paired_cases  # scipy.stats: only when drawn

    a, b = paired_cases(a, b)
    fig, axes = new_axes(ax, len(metrics), panel_size=(2.4, 3.2))
    for axis, metric in zip(axes, metrics, strict=True):
        values = np.stack([a[metric].to_numpy(float), b[metric].to_numpy(float)])
        improved = values[1] > values[0] if "hd95" not in metric else values[1] < values[0]
        for case, better in enumerate(improved):
            axis.plot([0, 1], values[:, case], color="C2" if better else "C3", alpha=0.6, lw=1)
        axis.scatter(np.repeat([0, 1], values.shape[1]), values, s=12, color="black", zorder=3)
        axis.plot([0, 1], values.mean(axis=1), color="black", lw=2.5, label="mean")
        axis.set(xticks=[0, 1], xticklabels=labels, xlim=(-0.3, 1.3))
        axis.set_title(metric, fontsize="medium")
        if metric.startswith(("dice", "lesion_dice")):
            axis.set_ylim(-0.02, 1.02)
    axes[-1].legend(
        handles=[
            Line2D([], [], color="C2", label=f"{labels[1]} better"),
            Line2D([], [], color="C3", label=f"{labels[1]} not better"),
            Line2D([], [], color="black", lw=2.5, label="mean"),
        ],
        fontsize="small",
        loc="lower right",
    )
    return finish_figure(fig, out_path, title)


def plot_dice_vs_volume(
    per_case: Mapping[str, pd.DataFrame],
    *,
    region: str = "ET",
    ax: Axes | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """``dice_<region>`` against ``volume_<region>_ml`` per case, a colour per variant."""
    fig, (axis,) = new_axes(ax, 1, panel_size=(5.0, 3.6))
    largest = 1.0
    for i, (variant, frame) in enumerate(per_case.items()):
        columns = [f"volume_{region}_ml", f"dice_{region}"]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{variant}: per-case table lacks columns {missing}")
        axis.scatter(frame[columns[0]], frame[columns[1]], s=18, color=f"C{i}", label=variant)
        largest = max(largest, float(frame[columns[0]].max()))
    axis.set_xscale("symlog", linthresh=1.0)  # linear below 1 mL (cases without the region: 0)
    ticks = [0.0, *(10.0**k for k in range(int(np.ceil(np.log10(largest))) + 1))]
    axis.set_xticks(ticks, [f"{t:g}" for t in ticks])
    axis.set(xlabel=f"reference {region} volume (mL)", ylabel=f"Dice {region}", ylim=(-0.02, 1.02))
    axis.legend(fontsize="small")
    return finish_figure(fig, out_path, f"Dice {region} against tumour volume")


def plot_error_map(
    image: np.ndarray,
    errors: np.ndarray,
    *,
    index: int | None = None,
    title: str | None = None,
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """The TP / FP / FN voxels of WT, TC and ET over FLAIR on one axial slice; ``errors``:
    ``(X, Y, Z, 3)``; ``index`` default: the slice with the most WT errors."""
    if errors.shape != (*image.shape[:3], 3):
        raise ValueError(f"errors must be {(*image.shape[:3], 3)}, got {errors.shape}")
    if index is None:
        index = int(np.argmax(np.count_nonzero(errors[..., 0] >= 2, axis=(0, 1))))
    background = slice_2d(image[..., MODALITIES.index("flair")], "axial", index)
    codes = slice_2d(errors, "axial", index)
    box = brain_box((background == 0) & ~np.any(codes >= 2, axis=-1))  # errors stay in view
    fig, axes = new_axes(ax, 3, panel_size=(3.2, 3.4))
    for channel, (axis, region) in enumerate(zip(axes, ("WT", "TC", "ET"), strict=True)):
        axis.imshow(np.ma.masked_equal(background, 0), cmap=GREY, interpolation="nearest")
        axis.imshow(error_overlay(codes[..., channel], 0.55), interpolation="nearest")
        axis.set(xlim=box[0], ylim=box[1])
        axis.set_title(region, fontsize="medium")
        axis.set_axis_off()
    axes[-1].legend(handles=error_legend_handles(), loc="lower right", fontsize="small")
    return finish_figure(fig, out_path, title or f"errors on axial slice {index}")
