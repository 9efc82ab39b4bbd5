"""Shared figure helpers and slices with label overlays, in radiological view."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from brats_utils.conventions import MODALITIES, MODALITY_NAMES, TUMOUR_CLASSES
from brats_utils.files import atomic_path

__all__ = [
    "LABEL_ABBREVIATIONS",
    "LABEL_COLORS",
    "error_overlay",
    "error_legend_handles",
    "REGION_COLORS",
    "PLANES",
    "GREY",
    "save_figure",
    "finish_figure",
    "new_axes",
    "axial_view",
    "slice_2d",
    "brain_box",
    "default_slice_index",
    "display_ranges",
    "label_overlay",
    "label_legend_handles",
    "draw_slice",
]

#: Short names of the tumour classes, as the BraTS papers write them.
LABEL_ABBREVIATIONS: dict[int, str] = dict(zip(TUMOUR_CLASSES, ("NCR", "ED", "ET"), strict=True))
#: One colour per tumour class, used by every figure (necrosis red, edema green, ET yellow).
LABEL_COLORS: dict[int, str] = dict(
    zip(TUMOUR_CLASSES, ("#e41a1c", "#4daf4a", "#ffd92f"), strict=True)
)
#: One colour per evaluation region (WT, TC, ET); ET shares the enhancing label's hue family.
REGION_COLORS: dict[str, str] = {"WT": "#377eb8", "TC": "#984ea3", "ET": "#ff7f00"}
#: Grey levels with masked (background) pixels drawn black.
GREY = colormaps["gray"].with_extremes(bad="black")
#: Plane name -> the volume axis that is fixed on that plane.
PLANES: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}


def save_figure(fig: Figure, out_path: Path | str) -> Path:
    """Save ``fig`` atomically; the format follows the suffix."""
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        fig.savefig(tmp, dpi=110)
    return out_path


def new_axes(
    ax: Axes | Sequence[Axes] | np.ndarray | None,
    n_panels: int,
    *,
    ncols: int | None = None,
    panel_size: tuple[float, float] = (3.0, 3.0),
) -> tuple[Figure, list[Axes]]:
    """The given Axes (exactly ``n_panels``) or a new figure's grid of ``ncols`` columns."""
    if ax is not None:
        axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != n_panels:
            raise ValueError(f"this figure needs {n_panels} Axes, got {len(axes)}")
        return axes[0].figure, axes
    ncols = max(1, min(ncols or n_panels, n_panels))
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for extra in axes[n_panels:]:
        extra.remove()
    return fig, axes[:n_panels]


def finish_figure(fig: Figure, out_path: Path | str | None, title: str = "") -> Figure:
    """``fig`` with its ``title`` (if any), saved to ``out_path`` (if any)."""
    if title:
        fig.suptitle(title)
    if out_path is not None:
        save_figure(fig, out_path)
    return fig


def _check_plane(plane: str) -> int:
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {tuple(PLANES)}, got {plane!r}")
    return PLANES[plane]


def axial_view(plane: np.ndarray) -> np.ndarray:
    """Axial ``(X, Y[, C])`` -> ``(Y, X[, C])`` as drawn: anterior up, the patient's right left."""
    return np.swapaxes(plane, 0, 1)


def slice_2d(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """One plane of ``(X, Y, Z[, C])`` as drawn: axial ``(Y, X)``, coronal/sagittal ``(Z, X/Y)``."""
    axis = _check_plane(plane)
    if volume.ndim not in (3, 4):
        raise ValueError(f"volume must be (X, Y, Z) or (X, Y, Z, C), got shape {volume.shape}")
    if not 0 <= index < volume.shape[axis]:
        raise ValueError(
            f"{plane} slice index must lie in 0..{volume.shape[axis] - 1}, got {index}"
        )
    plane_view = axial_view(np.take(volume, index, axis=axis))
    return plane_view if plane == "axial" else plane_view[::-1]


def brain_box(background: np.ndarray, margin: int = 2):
    """``(xlim, ylim)`` of an ``imshow`` Axes around what is not ``background``."""
    rows, cols = np.nonzero(~background)
    if rows.size == 0:
        rows, cols = np.array([0, background.shape[0] - 1]), np.array([0, background.shape[1] - 1])
    x0, x1 = max(cols.min() - margin, 0), min(cols.max() + margin, background.shape[1] - 1)
    y0, y1 = max(rows.min() - margin, 0), min(rows.max() + margin, background.shape[0] - 1)
    return (x0 - 0.5, x1 + 0.5), (y1 + 0.5, y0 - 0.5)


def default_slice_index(seg: np.ndarray | None, plane: str, shape: Sequence[int]) -> int:
    """The slice with the most tumour in ``seg``; the middle one without tumour."""
    axis = _check_plane(plane)
    if seg is not None and np.any(seg):
        other = tuple(a for a in range(3) if a != axis)
        return int(np.argmax(np.count_nonzero(seg, axis=other)))
    return int(shape[axis]) // 2


def display_ranges(image: np.ndarray) -> dict[str, tuple[float, float]]:
    """``{modality: (low, high)}``, the 0.5 and 99.5 percentiles of non-zero ``(..., 4)`` voxels."""
    if image.shape[-1] != len(MODALITIES):
        raise ValueError(
            f"image has {image.shape[-1]} channels, expected {len(MODALITIES)} "
            f"({', '.join(MODALITIES)})"
        )
    ranges = {}
    for c, name in enumerate(MODALITIES):
        values = np.asarray(image[..., c]).ravel()[::7]  # a sample is plenty for percentiles
        values = values[values != 0]
        low, high = np.percentile(values, (0.5, 99.5)) if values.size else (0.0, 1.0)
        ranges[name] = (float(low), float(high if high > low else low + 1.0))
    return ranges


def _overlay(codes: np.ndarray, colors: Mapping[int, str], alpha: float) -> np.ndarray:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    rgba = np.zeros((*codes.shape, 4), dtype=np.float32)
    for code, color in colors.items():
        rgba[codes == code] = (*to_rgba(color)[:3], alpha)
    return rgba


def label_overlay(
    seg: np.ndarray, labels_shown: Iterable[int] = TUMOUR_CLASSES, alpha: float = 0.4
) -> np.ndarray:
    """``(H, W, 4)`` RGBA of the shown classes of ``seg`` ``(H, W)``; the rest transparent."""
    unknown = [c for c in labels_shown if c not in LABEL_COLORS]
    if unknown:
        raise ValueError(f"labels_shown holds {unknown}; tumour classes are {TUMOUR_CLASSES}")
    return _overlay(seg, {c: LABEL_COLORS[c] for c in labels_shown}, alpha)


#: Colours and names of the error-map codes 1 TP, 2 FP, 3 FN (``brats evaluate --error-maps``).
ERROR_COLORS: dict[int, str] = {1: "#2ca02c", 2: "#d62728", 3: "#1f77b4"}
ERROR_LABELS: dict[int, str] = {1: "true positive", 2: "false positive", 3: "false negative"}


def error_overlay(codes: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return _overlay(codes, ERROR_COLORS, alpha)


def error_legend_handles() -> list[Patch]:
    return [Patch(color=ERROR_COLORS[c], label=ERROR_LABELS[c]) for c in ERROR_COLORS]


def label_legend_handles(labels_shown: Iterable[int] = TUMOUR_CLASSES) -> list[Patch]:
    return [Patch(color=LABEL_COLORS[c], label=LABEL_ABBREVIATIONS[c]) for c in labels_shown]


def draw_slice(
    image: np.ndarray,
    seg: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    *,
    plane: str = "axial",
    index: int | None = None,
    modality: str = "flair",
    labels_shown: Iterable[int] = TUMOUR_CLASSES,
    alpha: float = 0.4,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    case_id: str = "",
    errors: np.ndarray | None = None,
    errors_title: str = "errors",
    ax: Axes | Sequence[Axes] | None = None,
    out_path: Path | str | None = None,
) -> Figure:
    """One slice of a case: a panel per modality shown and per label source. ``image``
    ``(X, Y, Z, C)``; ``seg``, ``pred`` ``(X, Y, Z)`` classes or ``None``; ``errors`` ``(X, Y,
    Z)`` codes 0 TN, 1 TP, 2 FP, 3 FN of one region."""
    _check_slice_arguments(image, seg, pred, modality)
    labels_shown = tuple(labels_shown)
    if index is None:
        index = default_slice_index(seg if seg is not None else pred, plane, image.shape)
    view = slice_2d(image, plane, index)
    background = ~np.any(view != 0, axis=-1)
    ranges = ranges or display_ranges(view)
    modalities = list(MODALITIES) if modality == "all" else [modality]
    sources = [(n, s) for n, s in (("ground truth", seg), ("prediction", pred)) if s is not None]
    if errors is not None:
        sources.append((errors_title, errors))
    sources = sources or [("", None)]
    ncols = len(sources) if len(modalities) == 1 else len(modalities)
    fig, axes = new_axes(ax, len(modalities) * len(sources), ncols=ncols)
    panels = [(m, s) for s in sources for m in modalities]
    last_of_kind = {(s[0] == errors_title): i for i, (_, s) in enumerate(panels)}
    for panel, (axis, (mod, (source, labels))) in enumerate(zip(axes, panels, strict=True)):
        is_errors = errors is not None and source == errors_title
        overlay, handles = None, None
        if labels is not None and is_errors:
            overlay = error_overlay(slice_2d(labels, plane, index), alpha)
            handles = error_legend_handles()
        elif labels is not None:
            overlay = label_overlay(slice_2d(labels, plane, index), labels_shown, alpha)
            handles = label_legend_handles(labels_shown) if labels_shown else None
        low, high = ranges[mod]
        shown = np.ma.masked_array(view[..., MODALITIES.index(mod)], background)
        axis.imshow(shown, cmap=GREY, vmin=low, vmax=high, interpolation="nearest")
        if overlay is not None:
            axis.imshow(overlay)
        name = MODALITY_NAMES.get(mod, mod)
        axis.set_title(f"{name} + {source}" if source else name, fontsize="medium")
        axis.set_axis_off()
        if handles and panel == last_of_kind[is_errors]:
            axis.legend(handles=handles, loc="lower right", fontsize="small", framealpha=0.6)
    return finish_figure(fig, out_path, f"{case_id + ': ' if case_id else ''}{plane} slice {index}")


def _check_slice_arguments(image, seg, pred, modality: str) -> None:
    if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
        raise ValueError(
            f"image must be (X, Y, Z, {len(MODALITIES)}) for channels {MODALITIES}, "
            f"got shape {image.shape}"
        )
    for name, labels in (("seg", seg), ("pred", pred)):
        if labels is not None and labels.shape != image.shape[:3]:
            raise ValueError(f"{name} has shape {labels.shape}, expected {image.shape[:3]}")
    if modality != "all" and modality not in MODALITIES:
        raise ValueError(f"modality must be 'all' or one of {MODALITIES}, got {modality!r}")
