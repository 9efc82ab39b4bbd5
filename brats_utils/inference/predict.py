"""Whole-volume inference with a trained run, written back in each case's space."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from brats_utils.conventions import NUM_CLASSES, classes_from_scores, classes_to_labels
from brats_utils.data.cases import CaseVolumes, read_case_volumes, select_cases
from brats_utils.data.nifti import write_nifti
from brats_utils.data.predictions import prediction_path
from brats_utils.errors import CaseError
from brats_utils.files import remove_stale_temporaries
from brats_utils.inference.postprocess import (
    PostprocessSettings,
    fit_postprocessing,
    load_postprocessing,
    postprocess,
)
from brats_utils.inference.run_config import load_models, run_context, run_settings
from brats_utils.preprocessing.normalize import brain_mask
from brats_utils.preprocessing.resize import resize_images
from brats_utils.preprocessing.settings import from_plane, to_plane
from brats_utils.preprocessing.slices import (
    frame_box,
    image_channels,
    model_input,
    stack_context,
    window_overlap,
)

__all__ = [
    "PredictionReport",
    "predict_volume",
    "predict_case",
    "predict_cases",
    "fit_run_postprocessing",
]


def _predict_slices(model, x: np.ndarray, batch_size: int, tta: bool) -> np.ndarray:
    """Scores of ``x`` (N, H, W, C) -> (N, H, W, 4 or 3) float32, averaged over flips if ``tta``."""
    flips = [(), (1,), (2,)] if tta else [()]  # rows: X (left-right), columns: Y
    total = np.float32(0)
    for axes in flips:  # axis=(): no flip
        batch = np.ascontiguousarray(np.flip(x, axis=axes))
        probs = model.predict(batch, batch_size=batch_size, verbose=0)
        total = total + np.flip(np.asarray(probs, dtype=np.float32), axis=axes)
    return total / np.float32(len(flips))


def predict_volume(
    model,
    image: np.ndarray | Sequence[np.ndarray],
    config: dict[str, Any],
    *,
    batch_size: int = 32,
    tta: bool = False,
    case_id: str = "",
) -> np.ndarray:
    """The model's scores of every voxel of one case.

    ``image``: (X, Y, Z, 4) float in scanner units, or the four (X, Y, Z) volumes as read;
    ``config``: the run's ``config.json`` (preprocessing, channels, 2.5D context). Returns
    (X, Y, Z, 4) float32 class probabilities, exactly (1, 0, 0, 0) outside the brain, or
    (X, Y, Z, 3) region probabilities, 0 outside the brain.
    """
    settings, channels = run_settings(config)
    context = run_context(config)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    volumes = image_channels(image, case_id) if isinstance(image, np.ndarray) else image
    shape = np.shape(volumes[0])
    if len(shape) != 3:
        raise CaseError(case_id, f"volumes must be (X, Y, Z), got shape {shape}")
    x = model_input(volumes, settings, channels, case_id)  # (S, size, size, C), S along the plane
    if context > 1:  # (S, size, size, context * C): the loader's 2.5D stacks
        x = stack_context(x, np.arange(len(x)), context)
    probs = _predict_slices(model, x, batch_size, tta)  # (S, size, size, 4 or 3)
    inside = brain_mask(volumes)
    in_plane = to_plane(inside, settings.plane)  # (A, B, S): the frame the slices came from
    box = frame_box(in_plane, settings.crop_brain)
    if box is None:  # the whole square frame was resized
        full = np.moveaxis(resize_images(probs, in_plane.shape[0]), 0, 2)  # (A, B, S, C)
    else:  # back into the square (the brain's, or the padded frame), then into the frame
        full = _uncrop(resize_images(probs, box[2]), box, in_plane.shape)
    full = np.ascontiguousarray(from_plane(full, settings.plane))  # (X, Y, Z, C)
    full[~inside] = _background(full.shape[-1])
    return full


def _background(n_channels: int) -> np.ndarray:
    if n_channels == NUM_CLASSES:
        return np.eye(NUM_CLASSES, dtype=np.float32)[0]
    return np.zeros(n_channels, dtype=np.float32)


def _uncrop(probs: np.ndarray, box: tuple[int, int, int], shape) -> np.ndarray:
    """(S, side, side, C) scores of a square -> (A, B, S, C) of the plane's frame."""
    x0, y0, side = box
    full = np.empty((*shape, probs.shape[-1]), dtype=np.float32)
    full[...] = _background(probs.shape[-1])  # outside the square: background
    frame_x, box_x = window_overlap(x0, side, shape[0])
    frame_y, box_y = window_overlap(y0, side, shape[1])
    full[frame_x, frame_y] = np.moveaxis(probs[:, box_x, box_y], 0, 2)
    return full


@dataclass
class PredictionReport:
    """What :func:`predict_cases` did: ``written``, ``skipped``, ``failed`` case messages."""

    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    postprocessing: PostprocessSettings | None = None
    tta: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed


def predict_case(
    members: Sequence[tuple[Any, dict[str, Any]]],
    volumes: CaseVolumes,
    *,
    batch_size: int = 32,
    tta: bool = False,
    case_id: str = "",
) -> np.ndarray:
    """(X, Y, Z) uint8 classes of one case; several ``(model, config)`` members are averaged."""
    total = None
    for model, config in members:
        scores = predict_volume(
            model, volumes.channels, config, batch_size=batch_size, tta=tta, case_id=case_id
        )
        total = scores if total is None else total + scores
    return classes_from_scores(total / np.float32(len(members)))


def fit_run_postprocessing(
    model_path: Path | str | Mapping[Path, Sequence[str]],
    data_dir: Path | str,
    case_ids: Sequence[str] = (),
    *,
    batch_size: int = 32,
    tta: bool = False,
    progress: bool = True,
) -> tuple[PostprocessSettings, list[dict[str, Any]]]:
    """Postprocessing chosen on ``case_ids`` predicted by ``model_path``, or on the cases of
    each model of ``{model_path: case_ids}`` (out-of-fold predictions)."""
    plan = model_path if isinstance(model_path, Mapping) else {model_path: case_ids}
    scored = []
    for path, ids in plan.items():
        members, _ = load_models(path)
        for files in tqdm(select_cases(data_dir, ids), desc="validation", unit="case",
                          disable=not progress):  # fmt: skip
            volumes = read_case_volumes(files, require_seg=True, expected_shape=None)
            classes = predict_case(
                members, volumes, batch_size=batch_size, tta=tta, case_id=files.case_id
            )
            scored.append((classes, volumes.seg, tuple(volumes.image.header.get_zooms()[:3])))
    return fit_postprocessing(scored)


def predict_cases(
    model_path: Path | str,
    input_path: Path | str,
    out_dir: Path | str,
    *,
    batch_size: int = 32,
    tta: bool | str = False,
    overwrite: bool = False,
    case_ids: Iterable[str] | None = None,
    progress: bool = True,
    postprocessing: PostprocessSettings | None | str = "run",
) -> PredictionReport:
    """Predict and write every case of a data or case folder; failures go to ``report.failed``."""
    cases = select_cases(input_path, case_ids)  # before the model is loaded
    out_dir = Path(out_dir)
    members, home = load_models(model_path)
    if postprocessing == "run":
        postprocessing = load_postprocessing(home)
    if tta == "run":
        tta = bool(members[0][1].get("inference", {}).get("tta", False))
    remove_stale_temporaries(out_dir)  # what a killed run left half-written
    report = PredictionReport(postprocessing=postprocessing, tta=bool(tta))
    bar = tqdm(cases, desc="predict", unit="case", disable=not progress)
    for files in bar:
        bar.set_postfix_str(files.case_id)
        out_path = prediction_path(out_dir, files.case_id)
        if out_path.exists() and not overwrite:
            report.skipped.append(files.case_id)
            continue
        try:
            volumes = read_case_volumes(files, expected_shape=None)  # files need only agree
            classes = predict_case(
                members, volumes, batch_size=batch_size, tta=tta, case_id=files.case_id
            )
            if postprocessing is not None:
                spacing = volumes.image.header.get_zooms()[:3]
                classes = postprocess(classes, postprocessing, spacing)
            labels = classes_to_labels(classes, files.release)
            write_nifti(out_path, labels, volumes.image.affine, volumes.image.header)
        except CaseError as exc:
            report.failed[files.case_id] = str(exc)
            tqdm.write(f"failed: {exc}")
            continue
        report.written.append(out_path)
    return report
