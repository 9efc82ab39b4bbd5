"""Figures of results: training curves, metric bars against the baseline, Dice boxes, examples,
the variant notebooks' own questions (modality blanking, the mean image) and ``brats study``'s
tables (so a partial study draws too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from brats_utils.conventions import CLASS_NAMES, MODALITIES, MODALITY_NAMES, TUMOUR_CLASSES
from brats_utils.viz.drawing import (
    GREY,
    LABEL_ABBREVIATIONS,
    REGION_COLORS,
    axial_view,
    brain_box,
    display_ranges,
    finish_figure,
    label_legend_handles,
    label_overlay,
    new_axes,
)

__all__ = [
    "BASELINE_LABEL_DICE",
    "baseline_table",
    "plot_training_curves",
    "plot_metric_bars",
    "plot_region_dice_boxes",
    "plot_prediction_examples",
    "plot_modality_ablation",
    "plot_mean_image",
    "plot_channel_contrast",
    "plot_study_summary",
    "plot_study_differences",
]

#: Label Dice on 128 x 128 slices reported by the baseline notebook, per experiment and split
#: (not comparable with region Dice on whole volumes).
BASELINE_LABEL_DICE: dict[str, dict[str, dict[str, float]]] = {
    "early2": {
        "validation": {"dice_necrotic": 0.69, "dice_edema": 0.73, "dice_enhancing": 0.80},
        "test": {"dice_necrotic": 0.65, "dice_edema": 0.72, "dice_enhancing": 0.76},
    },
    "early4": {"validation": {"dice_necrotic": 0.61, "dice_edema": 0.76, "dice_enhancing": 0.77}},
}


def baseline_table(measured: pd.DataFrame) -> pd.DataFrame:
    """``measured`` and the rows ``(split, "baseline <experiment>")`` of BASELINE_LABEL_DICE."""
    rows = {
        (split, f"baseline {experiment}"): values
        for experiment, by_split in BASELINE_LABEL_DICE.items()
        for split, values in by_split.items()
    }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["split", "experiment"])
    return pd.concat([frame, measured]).sort_index()


def plot_training_curves(
    history: Path | str,
    *,
    title: str = "Training curves",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """Loss and every metric per epoch of ``history.csv``: training solid, validation dashed."""
    frame = pd.read_csv(history)  # FileNotFoundError names the path
    logged = [c for c in frame.columns if not c.startswith("val_")]
    logged = [c for c in logged if c not in ("epoch", "lr", "learning_rate")]
    if any(f"val_{m}" in frame.columns for m in logged):
        logged = [m for m in logged if f"val_{m}" in frame.columns]  # drops e.g. timings
    metrics = (["loss"] if "loss" in logged else []) + [m for m in logged if m != "loss"]
    if not metrics:
        raise ValueError(f"no metric in {history}; its columns: {list(frame.columns)}")
    fig, axes = new_axes(ax, len(metrics), ncols=3, panel_size=(3.4, 2.6))
    for axis, metric in zip(axes, metrics, strict=True):
        for split, column, style in (("train", metric, "-"), ("validation", f"val_{metric}", "--")):
            if column in frame.columns:
                axis.plot(frame["epoch"], frame[column], style, marker=".", label=split)
        axis.set(title=metric.replace("_", " "), xlabel="epoch")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    return finish_figure(fig, out_path, title)


def plot_metric_bars(
    table: pd.DataFrame,
    *,
    reference: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """A panel per numeric column, a bar per variant (row); ``reference`` values as black marks."""
    metrics = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    if not metrics:
        raise ValueError(f"no numeric column to plot in the table: {list(table.columns)}")
    variants = [str(v) for v in table.index]
    colors = [f"C{i}" for i in range(len(variants))]
    fig, axes = new_axes(ax, len(metrics), ncols=4, panel_size=(2.2 + 0.5 * len(variants), 2.8))
    x = np.arange(len(variants))
    marked = False
    for axis, metric in zip(axes, metrics, strict=True):
        values = table[metric].to_numpy(dtype=float)
        bars = axis.bar(x, values, color=colors, width=0.7)
        # inside the bar, so a reference mark at its top never hides the value
        box = {"boxstyle": "round,pad=0.15", "fc": "white", "lw": 0, "alpha": 0.8}
        axis.bar_label(bars, fmt="%.2f", label_type="center", fontsize="x-small", bbox=box)
        for i, variant in enumerate(variants):
            if reference and metric in reference.get(variant, {}):
                axis.hlines(reference[variant][metric], i - 0.4, i + 0.4, "black", linewidth=2.5)
                marked = True
        axis.set_xticks(x, variants, rotation=30, fontsize="small")
        axis.set_title(metric.replace("_", " "), fontsize="medium")
        if np.nanmax(np.append(values, 0)) <= 1.0:
            axis.set_ylim(0, 1.05)
    if marked:
        mark = Line2D([], [], color="black", linewidth=2.5, label="baseline (reported)")
        fig.legend(handles=[mark], loc="outside lower center", fontsize="small")
    return finish_figure(fig, out_path, title)


def plot_region_dice_boxes(
    per_case: Mapping[str, pd.DataFrame],
    *,
    prefix: str = "dice_",
    title: str = "Region Dice per case",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """Box plots of ``prefix + region`` per case, a panel per region."""
    regions = ("WT", "TC", "ET")
    for variant, frame in per_case.items():
        missing = [f"{prefix}{r}" for r in regions if f"{prefix}{r}" not in frame.columns]
        if missing:
            raise ValueError(f"{variant}: per-case table lacks columns {missing}")
    variants = list(per_case)
    rng = np.random.default_rng(0)
    fig, axes = new_axes(ax, len(regions), panel_size=(1.6 + 0.8 * len(variants), 3.2))
    for axis, region in zip(axes, regions, strict=True):
        data = [per_case[v][f"{prefix}{region}"].dropna().to_numpy(float) for v in variants]
        boxes = axis.boxplot(data, patch_artist=True, widths=0.6, showfliers=False)
        for patch in boxes["boxes"]:
            patch.set(facecolor=REGION_COLORS.get(region, "C0"), alpha=0.35)
        for i, values in enumerate(data, start=1):
            axis.scatter(
                i + rng.uniform(-0.12, 0.12, len(values)), values, s=10, color="black", zorder=3
            )
        axis.set_xticks(np.arange(1, len(variants) + 1), variants, rotation=30, fontsize="small")
        axis.set_title(f"{prefix.rstrip('_')} {region}")
        if prefix == "dice_":
            axis.set_ylim(-0.02, 1.02)
    return finish_figure(fig, out_path, title)


def plot_prediction_examples(
    images: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    *,
    row_titles: Sequence[str] | None = None,
    title: str = "Examples: modalities | ground truth | prediction",
    ax: Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """A row per slice: each modality, then truth and prediction over FLAIR, zoomed on the brain.
    ``images``: ``(N, X, Y, 4)`` axial slices; ``truth``, ``pred``: ``(N, X, Y)`` classes."""
    if images.ndim != 4 or images.shape[-1] != len(MODALITIES):
        raise ValueError(f"images must be (N, X, Y, {len(MODALITIES)}), got shape {images.shape}")
    if truth.shape != images.shape[:3] or pred.shape != images.shape[:3]:
        raise ValueError(
            f"truth {truth.shape} and pred {pred.shape} must both be {images.shape[:3]}"
        )
    if row_titles is not None and len(row_titles) != len(images):
        raise ValueError(f"{len(row_titles)} row titles for {len(images)} rows")
    names = list(MODALITIES)
    under = names.index("flair")
    ncols = len(names) + 2
    fig, axes = new_axes(ax, len(images) * ncols, ncols=ncols, panel_size=(2.2, 2.2))
    ranges = display_ranges(images)
    for r in range(len(images)):
        view = axial_view(images[r])
        background = ~np.any(view != 0, axis=-1)  # outside the brain: drawn black
        labelled = (axial_view(truth[r]) != 0) | (axial_view(pred[r]) != 0)
        box = brain_box(background & ~labelled)  # every label in view, even outside the brain
        panels = [(MODALITY_NAMES.get(n, n), c, None) for c, n in enumerate(names)]
        panels += [("ground truth", under, truth[r]), ("prediction", under, pred[r])]
        for c, (name, channel, labels) in enumerate(panels):
            axis = axes[r * ncols + c]
            low, high = ranges[names[channel]]
            shown = np.ma.masked_array(view[..., channel], background)
            axis.imshow(shown, cmap=GREY, vmin=low, vmax=high, interpolation="nearest")
            if labels is not None:
                axis.imshow(label_overlay(axial_view(labels), TUMOUR_CLASSES, 0.5))
            axis.set(xlim=box[0], ylim=box[1], xticks=[], yticks=[])  # zoomed on the brain
            axis.set_title(name if r == 0 else "", fontsize="small")
            axis.spines[:].set_visible(False)
        if row_titles is not None:  # a y label: the layout keeps it inside the figure
            axes[r * ncols].set_ylabel(row_titles[r].replace(", ", "\n"), fontsize="small")
    fig.legend(handles=label_legend_handles(), loc="outside right upper", fontsize="small")
    return finish_figure(fig, out_path, title)


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
    top = np.nanmax(table[contrasts].to_numpy(float)) if len(table) else 1.0
    axis.set(ylabel="|Cohen's d|", ylim=(0, 1.25 * (top if np.isfinite(top) and top > 0 else 1.0)))
    axis.legend(fontsize="small", ncols=len(table), loc="upper center")
    axis.set_title("Tissue contrast per channel (median Cohen's d over cases)", fontsize="medium")
    return finish_figure(fig, out_path)


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
    from brats_utils.evaluation.compare import MIN_CASES  # scipy.stats: only when drawn

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
