"""The one place that defines modality order, label conventions, classes and regions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MODALITIES",
    "MODALITY_NAMES",
    "CLASS_NAMES",
    "NUM_CLASSES",
    "TUMOUR_CLASSES",
    "REGIONS",
    "REGION_OUTPUTS",
    "classes_from_scores",
    "VOLUME_SHAPE",
    "HD95_MAX_MM",
    "AFFINE_TOLERANCE_MM",
    "channel_indices",
    "Release",
    "RELEASES",
    "LEGACY",
    "GLI2023",
    "labels_to_classes",
    "classes_to_labels",
]

#: Canonical modality order of the channel axis (the baseline's "T1, T1ce, T2, FLAIR").
MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
MODALITY_NAMES: dict[str, str] = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR"}

#: Internal classes (index = value): necrotic / non-enhancing core, edema, GD-enhancing tumour.
CLASS_NAMES: tuple[str, ...] = ("background", "necrotic", "edema", "enhancing")
NUM_CLASSES: int = len(CLASS_NAMES)
TUMOUR_CLASSES: tuple[int, ...] = (1, 2, 3)

#: BraTS evaluation regions as class sets: WT = NCR + ED + ET, TC = NCR + ET, ET = ET.
REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
#: Channels of a region-output model (``head="regions"``): one sigmoid per nested region.
REGION_OUTPUTS: int = len(REGIONS)

#: Geometry shared by every BraTS release (1 mm isotropic, SRI24 space).
VOLUME_SHAPE: tuple[int, int, int] = (240, 240, 155)
#: HD95 assigned when exactly one of prediction/reference is empty (volume diagonal in mm).
HD95_MAX_MM: float = 373.13
#: Largest difference (mm) tolerated between the affines of two files of one case.
AFFINE_TOLERANCE_MM: float = 1e-3


def channel_indices(channels: Sequence[str]) -> list[int]:
    """Positions of ``channels`` in :data:`MODALITIES`: ``["flair", "t1ce"] -> [3, 1]``."""
    if isinstance(channels, str) or not channels:
        raise ValueError(f"channels must be a non-empty list of names from {MODALITIES}")
    unknown = [c for c in channels if c not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown channels {unknown}; expected names from {MODALITIES}")
    return [MODALITIES.index(c) for c in channels]


@dataclass(frozen=True)
class Release:
    """File naming and labels of a family of releases (suffixes, separator, source labels)."""

    name: str
    separator: str
    suffixes: dict[str, str]
    labels: tuple[int, int, int, int]

    def file_name(self, case_id: str, kind: str, ext: str = ".nii.gz") -> str:
        return f"{case_id}{self.separator}{self.suffixes[kind]}{ext}"


#: BraTS 2018, 2019, 2020 and 2021: ``<case>_{flair,t1,t1ce,t2,seg}``, ET label 4.
LEGACY = Release(
    name="legacy",
    separator="_",
    suffixes={"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair", "seg": "seg"},
    labels=(0, 1, 2, 4),
)
#: BraTS 2023+ (GLI): ``<case>-{t1n,t1c,t2w,t2f,seg}``, ET label 3.
GLI2023 = Release(
    name="gli2023",
    separator="-",
    suffixes={"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"},
    labels=(0, 1, 2, 3),
)
RELEASES: dict[str, Release] = {r.name: r for r in (LEGACY, GLI2023)}


def _as_integer_labels(values: np.ndarray, what: str) -> np.ndarray:
    """``values`` as integers; floats must be finite whole numbers."""
    if values.dtype.kind in "ui":
        return values
    if values.dtype.kind == "b":
        return values.astype(np.uint8)
    if values.dtype.kind != "f":
        raise ValueError(f"{what} must hold integers, found dtype {values.dtype}")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{what} holds {values.size - np.count_nonzero(finite)} NaN/inf values")
    whole = np.rint(values)
    fractional = whole != values
    if fractional.any():
        examples = sorted({float(v) for v in values[fractional][:5]})
        raise ValueError(f"{what} holds non-integer values, e.g. {examples}")
    return whole.astype(np.int64)


def _unique_integers(values: np.ndarray) -> list[int]:
    """Sorted distinct values (a bincount when small and non-negative: faster than unique)."""
    if values.size == 0:
        return []
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high < 65536 and values.dtype.itemsize <= 4:
        return np.flatnonzero(np.bincount(values.ravel(order="K"), minlength=high + 1)).tolist()
    return [int(v) for v in np.unique(values)]


def labels_to_classes(seg: np.ndarray, release: Release = LEGACY) -> np.ndarray:
    """A release's labels -> uint8 classes 0..3; ``ValueError`` on an unknown or non-whole value."""
    seg = _as_integer_labels(np.asarray(seg), "segmentation")
    bad = [v for v in _unique_integers(seg) if v not in release.labels]
    if bad:
        raise ValueError(
            f"labels {bad} are not valid for release {release.name!r} "
            f"(expected a subset of {sorted(release.labels)})"
        )
    table = np.full(256, 255, dtype=np.uint8)  # label -> class
    table[list(release.labels)] = np.arange(NUM_CLASSES)
    return table[seg]


def classes_to_labels(classes: np.ndarray, release: Release = LEGACY) -> np.ndarray:
    """Classes 0..3 (integers or whole-number floats) -> uint8 labels of ``release``."""
    classes = _as_integer_labels(np.asarray(classes), "classes")
    if classes.size and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
        raise ValueError(
            f"classes must lie in 0..{NUM_CLASSES - 1}, got {classes.min()}..{classes.max()}"
        )
    return np.asarray(release.labels, dtype=np.uint8)[classes]


def classes_from_scores(scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``(...)`` uint8 classes of ``(..., 4)`` class scores (argmax) or ``(..., 3)`` WT/TC/ET,
    decoded by nesting as nnU-Net's BraTS models are, so ET lies in TC lies in WT."""
    scores = np.asarray(scores)
    if scores.shape[-1] == NUM_CLASSES:
        return np.argmax(scores, axis=-1).astype(np.uint8)
    if scores.shape[-1] != REGION_OUTPUTS:
        raise ValueError(
            f"expected {NUM_CLASSES} class or {REGION_OUTPUTS} region channels, got "
            f"shape {scores.shape}"
        )
    whole = scores[..., 0] > threshold
    core = whole & (scores[..., 1] > threshold)
    enhancing = core & (scores[..., 2] > threshold)
    classes = whole.astype(np.uint8) * 2  # edema
    classes[core] = 1
    classes[enhancing] = 3
    return classes
