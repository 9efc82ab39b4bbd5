"""Postprocessing of predicted segmentations, thresholds chosen on validation cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from brats_utils.conventions import CLASS_NAMES, REGIONS
from brats_utils.errors import BratsError, from_known_keys
from brats_utils.evaluation.lesions import lesion_scores
from brats_utils.evaluation.volumes import dice
from brats_utils.files import read_json, write_json

__all__ = [
    "POSTPROCESSING_FILE",
    "THRESHOLD_GRID_MM3",
    "PostprocessSettings",
    "postprocess",
    "fit_postprocessing",
    "load_postprocessing",
    "save_postprocessing",
]

#: ``RUN_DIR/postprocessing.json``: the settings chosen on validation cases, and how.
POSTPROCESSING_FILE = "postprocessing.json"
#: Candidate thresholds of every stage (mm^3; 0 = the stage does nothing).
THRESHOLD_GRID_MM3: tuple[float, ...] = (0, 25, 50, 100, 200, 400, 800, 1600, 3200)

_NCR, _ED, _ET = (CLASS_NAMES.index(n) for n in ("necrotic", "edema", "enhancing"))
_CONNECTIVITY_26 = ndimage.generate_binary_structure(3, 3)


#: The stages in the order they are chosen: the region each is scored on, what it does.
_STAGES: tuple[tuple[str, str, str], ...] = (
    ("wt_min_mm3", "WT", "WT components < {:g} mm^3 removed"),
    ("wt_largest_only", "WT", "only the largest WT component kept"),  # nnU-Net's test, 0 or 1
    ("tc_min_mm3", "TC", "TC components < {:g} mm^3 -> edema"),
    ("et_min_mm3", "ET", "ET components < {:g} mm^3 -> necrosis"),
    ("et_to_ncr_below_mm3", "ET", "all ET -> necrosis when ET < {:g} mm^3"),
)


@dataclass(frozen=True)
class PostprocessSettings:
    """Thresholds in mm^3 of the stages of :func:`postprocess` (``wt_largest_only``: 0 or 1);
    0 disables one."""

    wt_largest_only: float = 0.0
    wt_min_mm3: float = 0.0
    tc_min_mm3: float = 0.0
    et_min_mm3: float = 0.0
    et_to_ncr_below_mm3: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ValueError(f"{f.name} must be a finite number >= 0 mm^3, got {value!r}")

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PostprocessSettings:
        return from_known_keys(cls, d, "postprocessing settings")

    def describe(self) -> str:
        parts = [what.format(getattr(self, s)) for s, _, what in _STAGES if getattr(self, s)]
        return "; ".join(parts) or "none"


def _small_components(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    if min_voxels <= 0 or not mask.any():
        return np.zeros_like(mask)
    labelled, _ = ndimage.label(mask, structure=_CONNECTIVITY_26)
    sizes = np.bincount(labelled.ravel())
    small = sizes < min_voxels
    small[0] = False
    return small[labelled]


def postprocess(
    classes: np.ndarray, settings: PostprocessSettings, spacing: Sequence[float]
) -> np.ndarray:
    """The stages on (X, Y, Z) classes 0..3 with voxel ``spacing`` in mm: a new uint8 array. All
    but the largest WT component, or small ones, become background, small TC components edema,
    small ET ones necrosis; little ET becomes necrosis."""
    out = np.array(classes, dtype=np.uint8, copy=True)
    voxel_mm3 = float(np.prod([float(s) for s in spacing]))
    if settings.wt_largest_only and out.any():
        labelled, _ = ndimage.label(out > 0, structure=_CONNECTIVITY_26)
        sizes = np.bincount(labelled.ravel())
        out[labelled != np.argmax(sizes[1:]) + 1] = 0
    out[_small_components(out > 0, settings.wt_min_mm3 / voxel_mm3)] = 0
    out[_small_components(np.isin(out, REGIONS["TC"]), settings.tc_min_mm3 / voxel_mm3)] = _ED
    out[_small_components(out == _ET, settings.et_min_mm3 / voxel_mm3)] = _NCR
    if 0 < np.count_nonzero(out == _ET) * voxel_mm3 < settings.et_to_ncr_below_mm3:
        out[out == _ET] = _NCR
    return out


def _region_score(cases, settings: PostprocessSettings, region: str) -> float:
    """Mean over cases of (Dice + lesion-wise Dice) / 2 of ``region`` after ``settings``."""
    scores = []
    for pred, ref, spacing in cases:
        processed = np.isin(postprocess(pred, settings, spacing), REGIONS[region])
        truth = np.isin(ref, REGIONS[region])
        lesion = lesion_scores(processed, truth, spacing).dice
        scores.append((dice(processed, truth) + lesion) / 2)
    return float(np.mean(scores))


def fit_postprocessing(
    cases: Sequence[tuple[np.ndarray, np.ndarray, Sequence[float]]],
    grid: Sequence[float] = THRESHOLD_GRID_MM3,
) -> tuple[PostprocessSettings, list[dict[str, Any]]]:
    """``(settings, trials)`` chosen on validation cases, stage by stage; ties: lowest threshold."""
    if not cases:
        raise ValueError("postprocessing thresholds need at least one validation case")
    settings = PostprocessSettings()
    trials = []
    for stage, region, _ in _STAGES:
        scored = []
        values = (0.0, 1.0) if stage == "wt_largest_only" else grid
        for threshold in sorted(set(float(g) for g in values)):
            candidate = replace(settings, **{stage: threshold})
            score = _region_score(cases, candidate, region)
            trials.append(
                {"stage": stage, "threshold": threshold, "region": region, "score": score}
            )
            scored.append((score, -threshold, candidate))
        settings = max(scored, key=lambda item: (item[0], item[1]))[2]
    return settings, trials


def save_postprocessing(
    run_dir: Path | str,
    settings: PostprocessSettings,
    *,
    chosen_on: Sequence[str],
    trials: Sequence[dict[str, Any]] = (),
) -> Path:
    record = {"settings": settings.to_dict(), "chosen_on": list(chosen_on), "trials": list(trials)}
    return write_json(Path(run_dir) / POSTPROCESSING_FILE, record)


def load_postprocessing(run_dir: Path | str) -> PostprocessSettings | None:
    path = Path(run_dir) / POSTPROCESSING_FILE
    if not path.is_file():
        return None
    record = read_json(path, "postprocessing settings")
    try:
        return PostprocessSettings.from_dict(record["settings"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BratsError(f"{path}: invalid postprocessing settings: {exc}") from exc
