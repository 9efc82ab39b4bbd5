"""Figures of ``brats study`` from the tables it writes, so a partial study draws too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brats_utils.evaluation.compare import MIN_CASES
from brats_utils.viz.drawing import finish_figure, new_axes

__all__ = ["plot_study_summary", "plot_study_differences"]

_DICE = ("dice_WT", "dice_TC", "dice_ET", "lesion_dice_WT", "lesion_dice_TC", "lesion_dice_ET")


def plot_study_summary(summary: pd.DataFrame, *, out_path: Path | str | None = None) -> Figure:
    """A panel per metric: each configuration's mean with its CI (``summarize_study``'s table)."""
    metrics = _DICE
    fig, axes = new_axes(None, len(metrics), ncols=3, panel_size=(3.6, 0.35 * len(summary) + 1))
    y = np.arange(len(summary))
    for ax, metric in zip(axes, metrics, strict=False):
        mean = summary[metric].to_numpy(dtype=float)
        low = mean - summary[f"{metric}_low"].to_numpy(dtype=float)
        high = summary[f"{metric}_high"].to_numpy(dtype=float) - mean
        ax.errorbar(mean, y, xerr=[low, high], fmt="o", color="tab:blue", capsize=3)
        ax.set_yticks(y, summary.index)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    return finish_figure(fig, out_path, "Cross-validated test cases: mean and 95% bootstrap CI")


def plot_study_differences(
    compared: pd.DataFrame, baseline: str, *, out_path: Path | str | None = None
) -> Figure:
    """A panel per Dice-like metric: each configuration minus ``baseline`` with its CI."""
    configs = list(dict.fromkeys(compared["config"]))
    metrics = _DICE
    fig, axes = new_axes(None, len(metrics), ncols=3, panel_size=(3.6, 0.35 * len(configs) + 1))
    y = np.arange(len(configs))
    for ax in axes[1:]:
        ax.sharex(axes[0])  # one scale: the panels compare with each other
    for ax, metric in zip(axes, metrics, strict=False):
        rows = compared[compared["metric"] == metric].set_index("config").reindex(configs)
        mean = rows["mean_difference"].to_numpy(dtype=float)
        low, high = rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float)
        colours = np.where(low > 0, "tab:green", np.where(high < 0, "tab:red", "tab:grey"))
        for k in range(len(configs)):
            ax.errorbar(mean[k], y[k], xerr=[[mean[k] - low[k]], [high[k] - mean[k]]], fmt="o",
                        color=colours[k], capsize=3)  # fmt: skip
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, configs)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(f"configuration - {baseline}")
        ax.grid(axis="x", alpha=0.3)
    spread = compared[["mean_difference", "ci_low", "ci_high"]].abs().to_numpy(dtype=float)
    reach = max(0.05, float(np.nanmax(spread, initial=0.0))) * 1.1
    axes[0].set_xlim(-reach, reach)  # symmetric about 0, never a scale of rounding errors
    fig.suptitle(
        f"Paired differences against {baseline} (95% bootstrap CI over cases; none "
        f"below {MIN_CASES} cases)"
    )
    return finish_figure(fig, out_path)
