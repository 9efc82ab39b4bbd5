"""Synthetic BraTS-like cases as BraTS 2021 case folders (docs/synthetic_data.md)."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from brats_utils.conventions import LEGACY, MODALITIES, VOLUME_SHAPE, classes_to_labels
from brats_utils.data.nifti import write_nifti
from brats_utils.data.synth_anatomy import (
    OUTSIDE,
    Box,
    brain_box,
    brain_tissues,
    one_blas_thread,
    plan_tumour,
    smooth_noise,
    tumour_fields,
)
from brats_utils.files import in_workers, remove_stale_temporaries

__all__ = [
    "SyntheticCase",
    "REAL_LABEL_RATIOS",
    "RATIO_LABELS",
    "TISSUE_INTENSITY",
    "case_id_for",
    "generate_case",
    "write_case",
    "case_is_complete",
    "write_synthetic_dataset",
    "label_intensity_ratios",
    "csf_intensity_ratios",
]

#: Labels whose intensity ratios are calibrated, as internal classes (NCR, ED, ET).
RATIO_LABELS: tuple[int, ...] = (1, 2, 3)

#: Mean of NCR, ED, ET over normal brain per modality, on the 16 real BraTS 2018 sample cases,
#: measured with ``.venv/bin/python scripts/calibrate_synth.py --real-only``.
REAL_LABEL_RATIOS: dict[str, tuple[float, float, float]] = {
    "t1": (0.874, 1.063, 1.003),
    "t1ce": (0.846, 0.998, 1.450),
    "t2": (1.810, 1.312, 1.478),
    "flair": (1.884, 1.766, 1.885),
}

#: Relative intensity of each tissue code (index) per modality, before scanner scale.
#: WM brighter than GM on T1; CSF dark on T1/T1ce/FLAIR and bright on T2.
TISSUE_INTENSITY: dict[str, tuple[float, ...]] = {
    #        outside, CSF, GM, WM, deep grey
    "t1": (0.0, 0.45, 0.82, 1.12, 0.95),
    "t1ce": (0.0, 0.50, 0.88, 1.05, 0.95),
    "t2": (0.0, 2.90, 1.12, 0.78, 0.95),
    "flair": (0.0, 0.35, 1.12, 0.88, 1.00),
}
# Median normal-brain intensity per modality in scanner units (log-normal across cases).
_SCANNER_MEDIAN = {"t1": 400.0, "t1ce": 400.0, "t2": 400.0, "flair": 250.0}
_INT16_MAX = 32767
# Log-normal spread of the tumour/brain ratios between cases (real cases spread ~0.1-0.25).
_RATIO_SPREAD = 0.14
# Gaussian partial-volume blur, in voxels.
_BLUR_VOXELS = 0.6


@dataclass
class SyntheticCase:
    """``image`` (X, Y, Z, 4) int16, 0 outside the brain; ``classes`` (X, Y, Z) uint8 0..3;
    ``tissue`` (X, Y, Z) uint8 codes without the tumour (not written)."""

    case_id: str
    image: np.ndarray
    classes: np.ndarray
    affine: np.ndarray
    tissue: np.ndarray | None = None


def case_id_for(index: int) -> str:
    if index < 0 or index > 99999:
        raise ValueError(f"case index must lie in 0..99999, got {index}")
    return f"BraTS2021_{index:05d}"


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f"shape must be 3 sizes of at least 16 voxels, got {shape}")
    return shape  # type: ignore[return-value]


def generate_case(
    seed: int, index: int, shape: tuple[int, int, int] = VOLUME_SHAPE
) -> SyntheticCase:
    """Case ``index`` (0..99999); a smaller ``shape`` (>= 16 voxels) is a coarser view of it."""
    shape = _check_shape(shape)
    with one_blas_thread():
        return _render_case(case_id_for(index), np.random.default_rng([seed, index]), shape)


def _acquire(
    rng: np.random.Generator,
    values: np.ndarray,
    box: Box,
    brain_index: np.ndarray,
    normal_mean: float,
    scanner_median: float,
) -> np.ndarray:
    """Bias field, Rician noise and scanner scale: int16 >= 1 (``values`` modified in place)."""
    values *= np.exp(0.1 * smooth_noise(rng, box, 70.0))
    inside = values.reshape(-1)[brain_index]
    sigma = float(rng.uniform(0.02, 0.045)) * normal_mean
    real = inside + rng.standard_normal(inside.shape, dtype=np.float32) * sigma
    imag = rng.standard_normal(inside.shape, dtype=np.float32) * sigma
    inside = np.sqrt(real * real + imag * imag)
    scale = float(np.clip(scanner_median * np.exp(rng.normal(0.0, 0.7)), 40.0, 8000.0))
    return np.clip(np.rint(inside * (scale / normal_mean)), 1, _INT16_MAX).astype(np.int16)


def _render_case(
    case_id: str, rng: np.random.Generator, shape: tuple[int, int, int]
) -> SyntheticCase:
    box = brain_box(shape)
    tissue, depth = brain_tissues(rng, box)
    plan = plan_tumour(rng, depth, box)
    tbox, local, tumour_classes, edema_weight = tumour_fields(rng, plan, box, tissue)

    classes_box = np.zeros(box.shape, dtype=np.uint8)
    classes_box[local] = tumour_classes
    brain = tissue != OUTSIDE
    normal = brain & (classes_box == 0)
    texture = smooth_noise(rng, box, 3.0)
    heterogeneity = smooth_noise(rng, tbox, 3.5)
    masks = {cls: tumour_classes == cls for cls in RATIO_LABELS}
    brain_index = np.flatnonzero(brain)

    image = np.zeros((*shape, len(MODALITIES)), dtype=np.int16)
    for channel, modality in enumerate(MODALITIES):
        ratios = np.asarray(REAL_LABEL_RATIOS[modality]) * np.exp(
            np.clip(rng.normal(0.0, _RATIO_SPREAD, len(RATIO_LABELS)), -0.3, 0.3)
        )
        values = np.asarray(TISSUE_INTENSITY[modality], dtype=np.float32)[tissue]
        values *= 1.0 + 0.025 * texture
        normal_mean = float(values[normal].mean())
        tumour = values[local]  # a copy: written back below
        for cls, ratio in zip(RATIO_LABELS, ratios, strict=True):
            mask = masks[cls]
            signal = ratio * normal_mean * (1.0 + 0.12 * heterogeneity[mask])
            if cls == 2:  # edema fades into the tissue beneath it
                signal = tumour[mask] + edema_weight[mask] * (signal - tumour[mask])
            tumour[mask] = signal
        values[local] = tumour
        values = ndimage.gaussian_filter(values, _BLUR_VOXELS, truncate=2.5, output=np.float32)
        # the blur mixes a thin rim with its neighbours: put each label's mean back
        tumour, means = values[local], ratios * float(values[normal].mean())
        for cls, mean in zip(RATIO_LABELS, means, strict=True):
            if masks[cls].any():
                tumour[masks[cls]] *= mean / float(tumour[masks[cls]].mean())
        values[local] = tumour
        channel_box = np.zeros(box.shape, dtype=np.int16)
        channel_box.reshape(-1)[brain_index] = _acquire(
            rng, values, box, brain_index, normal_mean, _SCANNER_MEDIAN[modality]
        )
        image[(*box.slices, channel)] = channel_box

    classes = np.zeros(shape, dtype=np.uint8)
    classes[box.slices] = classes_box
    tissue_full = np.zeros(shape, dtype=np.uint8)
    tissue_full[box.slices] = tissue
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[1, 3] = shape[1] - 1
    return SyntheticCase(case_id, image, classes, affine, tissue_full)


def _case_paths(case_id: str, out_dir: Path) -> dict[str, Path]:
    folder = out_dir / case_id
    return {kind: folder / LEGACY.file_name(case_id, kind) for kind in (*MODALITIES, "seg")}


def case_is_complete(case_id: str, out_dir: Path | str) -> bool:
    return all(p.is_file() for p in _case_paths(case_id, Path(out_dir)).values())


def write_case(case: SyntheticCase, out_dir: Path | str) -> Path:
    """Write ``out_dir/<case_id>/``: int16 images, then the uint8 segmentation (0, 1, 2, 4)."""
    paths = _case_paths(case.case_id, Path(out_dir))
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm")
    header.set_qform(case.affine, code=2)  # codes as in the real BraTS files
    header.set_sform(case.affine, code=1)
    for channel, modality in enumerate(MODALITIES):
        write_nifti(paths[modality], case.image[..., channel], case.affine, header)
    labels = classes_to_labels(case.classes, LEGACY).astype(np.uint8)
    write_nifti(paths["seg"], labels, case.affine, header)
    return paths["seg"].parent


def _generate_and_write(index: int, seed: int, out_dir: Path, shape: tuple[int, int, int]) -> Path:
    return write_case(generate_case(seed, index, shape), out_dir)


def write_synthetic_dataset(
    out_dir: Path | str,
    n_cases: int,
    seed: int = 0,
    *,
    start: int = 0,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    shape: tuple[int, int, int] = VOLUME_SHAPE,
) -> list[Path]:
    """Write cases ``start .. start + n_cases - 1`` (complete ones kept unless ``overwrite``)."""
    if n_cases < 1:
        raise ValueError(f"n_cases must be at least 1, got {n_cases}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = _check_shape(shape)
    indices = range(start, start + n_cases)
    folders = [out_dir / case_id_for(i) for i in indices]
    todo = [i for i in indices if overwrite or not case_is_complete(case_id_for(i), out_dir)]
    _check_recipe(out_dir, seed, shape, kept=n_cases - len(todo), overwrite=overwrite)
    for index in todo:  # what a killed run left half-written in the cases to write
        remove_stale_temporaries(out_dir / case_id_for(index))
    write = partial(_generate_and_write, seed=seed, out_dir=out_dir, shape=shape)
    spawn = multiprocessing.get_context("spawn")
    with tqdm(total=n_cases, initial=n_cases - len(todo), disable=not progress, unit="case") as bar:
        for _ in in_workers(write, todo, min(workers, os.cpu_count() or 1), spawn):
            bar.update()
    return folders


#: ``DATA_DIR/synthetic.json``: the seed and shape the folder's synthetic cases were drawn with.
RECIPE_FILE = "synthetic.json"


def _check_recipe(out_dir: Path, seed: int, shape, *, kept: int, overwrite: bool) -> None:
    """Refuse to keep cases drawn with another seed or shape (BratsError); record ours."""
    from brats_utils.errors import BratsError
    from brats_utils.files import read_json, write_json

    path, wanted = out_dir / RECIPE_FILE, {"seed": int(seed), "shape": [int(s) for s in shape]}
    found = read_json(path, "synthetic data recipe") if path.is_file() else None
    if kept and not overwrite and found is not None and found != wanted:
        raise BratsError(
            f"{out_dir} holds synthetic cases drawn with seed {found['seed']} and shape "
            f"{tuple(found['shape'])}, not seed {seed} and shape {tuple(shape)}; pass "
            "--overwrite to draw them again, or choose another --out"
        )
    if found is None and kept and not overwrite:
        print(f"note: {out_dir} has {kept} cases made before {RECIPE_FILE} existed; their seed "
              "and shape cannot be checked (--overwrite draws them again)")  # fmt: skip
    write_json(path, wanted)


def _check_image_and_classes(image: np.ndarray, classes: np.ndarray) -> None:
    expected = (*classes.shape, len(MODALITIES))
    if classes.ndim != 3 or image.shape != expected:
        raise ValueError(
            f"image must be (X, Y, Z, {len(MODALITIES)}) matching classes {classes.shape}, "
            f"got {image.shape}"
        )


def label_intensity_ratios(image: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(4, 3)``: mean of NCR, ED, ET over normal brain, per modality; NaN for an absent label."""
    _check_image_and_classes(image, classes)
    normal = (image != 0).any(axis=-1) & (classes == 0)
    ratios = np.full((len(MODALITIES), len(RATIO_LABELS)), np.nan)
    label_masks = [classes == cls for cls in RATIO_LABELS]
    for channel in range(len(MODALITIES)):
        values = image[..., channel]
        reference = float(values[normal].mean(dtype=np.float64))
        for column, mask in enumerate(label_masks):
            if mask.any():
                ratios[channel, column] = float(values[mask].mean(dtype=np.float64)) / reference
    return ratios


#: CSF-like voxels: normal-appearing brain whose T2 exceeds this many times its median T2.
_CSF_T2_FACTOR = 2.0


def csf_intensity_ratios(image: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``(4,)`` mean of CSF-like voxels over the mean of normal brain, per modality, or NaN."""
    _check_image_and_classes(image, classes)
    normal = (image != 0).any(axis=-1) & (classes == 0)
    t2 = image[..., MODALITIES.index("t2")][normal]
    csf = t2 > _CSF_T2_FACTOR * np.median(t2)
    ratios = np.full(len(MODALITIES), np.nan)
    if csf.any():
        for channel in range(len(MODALITIES)):
            values = image[..., channel][normal]
            ratios[channel] = values[csf].mean(dtype=np.float64) / values.mean(dtype=np.float64)
    return ratios
