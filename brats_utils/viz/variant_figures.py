"""Figures of the variant notebooks' own questions: modality blanking (03), the mean image (04)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from brats_utils.conventions import CLASS_NAMES, MODALITIES, MODALITY_NAMES, TUMOUR_CLASSES
from brats_utils.viz.drawing import (
    GREY,
    LABEL_ABBREVIATIONS,
    axial_view,
    finish_figure,
    label_legend_handles,
    label_overlay,
    new_axes,
)

__all__ = ["plot_modality_ablation", "plot_mean_image", "plot_channel_contrast"]

_ABLATION_BARS = {
    **{f"dice_{CLASS_NAMES[c]}": LABEL_ABBREVIATIONS[c] for c in TUMOUR_CLASSES},
    "dice": "mean",
}


def plot_modality_ablation(
    table: pd.DataFrame,
    *,
    title: str = "Slice Dice with one modality blanked",
    ax: Axes | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """Grouped bars of the modality-ablation table: label Dice, intact and each modality blanked."""
    fig, (axis,) = new_axes(ax, 1, panel_size=(1.3 * len(table) + 2.0, 3.4))
    bars = table[list(_ABLATION_BARS)].rename(columns=_ABLATION_BARS)
    bars.plot.bar(ax=axis, width=0.8, color=["C0", "C1", "C2", "black"], rot=0, xlabel="")
    axis.tick_params(axis="x", labelsize="small")
    axis.set(ylim=(0, 1.15), ylabel="slice Dice")
    axis.legend(fontsize="small", ncols=4, loc="upper right")
    axis.set_title(title)
    return finish_figure(fig, out_path)


def plot_mean_image(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    title: str = "",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """The four modalities of one ``(H, W, 4)`` z-scored slice, their mean and labels, one scale."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != len(MODALITIES):
        raise ValueError(f"image must be (H, W, {len(MODALITIES)}), got {image.shape}")
    mean = image.mean(axis=-1)
    panels = [*(image[..., k] for k in range(image.shape[-1])), mean]
    names = [*(MODALITY_NAMES[m] for m in MODALITIES), "mean of the four"]
    brain = np.any(image != 0, axis=-1)
    low, high = np.percentile(image[brain], (1, 99)) if brain.any() else (-1.0, 1.0)
    fig, axes = new_axes(ax, len(panels) + 1, panel_size=(2.3, 2.5))
    for axis, panel, name in zip(axes, panels, names, strict=False):
        axis.imshow(axial_view(np.where(brain, panel, np.nan)), cmap=GREY, vmin=low, vmax=high)
        axis.set_title(name, fontsize="medium")
        axis.set_axis_off()
    axes[-1].imshow(axial_view(np.where(brain, mean, np.nan)), cmap=GREY, vmin=low, vmax=high)
    axes[-1].imshow(axial_view(label_overlay(np.asarray(labels), alpha=0.35)))
    axes[-1].set_title("labels", fontsize="medium")
    axes[-1].set_axis_off()
    axes[-1].legend(handles=label_legend_handles(), fontsize="x-small", loc="lower right")
    return finish_figure(fig, out_path, title)


def plot_channel_contrast(
    table: pd.DataFrame, *, ax: Axes | None = None, out_path: Path | str | None = None
) -> Figure:
    """Grouped bars of :func:`~brats_utils.notebooks.variant.channel_contrast`, one per channel."""
    contrasts = [c for c in table.columns if c != "cases"]
    fig, (axis,) = new_axes(ax, 1, panel_size=(2.2 * len(contrasts) + 1.5, 3.4))
    colors = ["black" if c == "mean" else f"C{k}" for k, c in enumerate(table.index)]
    table[contrasts].T.plot.bar(ax=axis, width=0.8, color=colors, rot=0)
    axis.set_ylabel("|Cohen's d|")
    top = np.nanmax(table[contrasts].to_numpy(float)) if len(table) else 1.0
    axis.set_ylim(0, 1.25 * (top if np.isfinite(top) and top > 0 else 1.0))
    axis.legend(fontsize="small", ncols=len(table), loc="upper center")
    axis.set_title("Tissue contrast per channel (median Cohen's d over cases)", fontsize="medium")
    return finish_figure(fig, out_path)
