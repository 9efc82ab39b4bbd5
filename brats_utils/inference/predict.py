"""Whole-volume inference with a trained run, back in the source space of each case.

A case is prepared exactly as the training slices were (:mod:`brats_utils.preprocessing.slices`):
per-modality normalisation over the whole volume with the run's method, the run's channels
in the run's order, every axial slice resized to the run's size. Unlike training, **every**
axial slice is predicted (all 155, not only the training range). The class probabilities
are resized back to the source slice size by linear interpolation (each pixel stays a convex
combination, so they still sum to 1) and the argmax gives the classes. Voxels outside the
brain (no modality > 0, the mask the normalisation uses) are background.

Predictions are written as ``OUT_DIR/<case_id>.nii.gz``, uint8, in the source release's own
labels (0, 1, 2, 4 for 2018-2021; 0, 1, 2, 3 for 2023+), with the source affine and header:
the naming the BraTS submission portals expect.

Keras is imported inside the functions that need it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from brats_utils.conventions import MODALITIES, NUM_CLASSES, classes_to_labels
from brats_utils.data.cases import CaseFiles, discover_cases, load_case
from brats_utils.data.nifti import write_nifti
from brats_utils.errors import BratsError, CaseError
from brats_utils.preprocessing.normalize import normalize_image, to_slices
from brats_utils.preprocessing.resize import resize_images
from brats_utils.preprocessing.settings import PreprocessSettings

__all__ = [
    "PredictionReport",
    "load_run",
    "run_settings",
    "predict_volume",
    "predict_classes",
    "predict_cases",
    "prediction_path",
]


def _read_config(config_path: Path) -> dict[str, Any]:
    if not config_path.is_file():
        raise BratsError(
            f"no run config {config_path} beside the model; expected the run folder written by "
            "`brats train` (model.keras with config.json)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BratsError(f"{config_path}: not a readable JSON file: {exc}") from exc
    missing = [
        k for k in ("experiment", "channels", "image_size", "preprocessing") if k not in config
    ]
    if missing:
        raise BratsError(f"{config_path}: missing keys {missing}")
    return config


def run_settings(config: dict[str, Any]) -> tuple[PreprocessSettings, tuple[str, ...]]:
    """Preprocessing settings and channels of a run config, checked against each other.

    Raises:
        BratsError: unknown experiment, channels that are not modalities or differ in number
            from the experiment's, an image size that differs from the preprocessing size,
            a number of classes other than 4.
    """
    from brats_utils.model.experiments import get_experiment

    experiment = get_experiment(config["experiment"])
    channels = tuple(config["channels"])
    unknown = [c for c in channels if c not in MODALITIES]
    if unknown or not channels:
        raise BratsError(f"run config channels {list(channels)} must be a subset of {MODALITIES}")
    if len(channels) != experiment.input_channels:
        raise BratsError(
            f"run config has channels {list(channels)} but experiment {experiment.name!r} "
            f"takes {experiment.input_channels} channels {list(experiment.channels)}"
        )
    try:
        settings = PreprocessSettings.from_dict(config["preprocessing"])
    except (TypeError, ValueError) as exc:
        raise BratsError(f"run config preprocessing settings are invalid: {exc}") from exc
    if int(config["image_size"]) != settings.size:
        raise BratsError(
            f"run config image_size {config['image_size']} differs from the preprocessing "
            f"size {settings.size}"
        )
    if int(config.get("num_classes", NUM_CLASSES)) != NUM_CLASSES:
        raise BratsError(f"run config num_classes {config['num_classes']}, expected {NUM_CLASSES}")
    return settings, channels


def load_run(model_path: Path | str):
    """Load a trained model and the ``config.json`` beside it, and check they match.

    Args:
        model_path: ``RUN_DIR/model.keras`` (or ``model_last.keras``).

    Returns:
        ``(model, config)``: the Keras model (not compiled) and the run config dict.

    Raises:
        BratsError: missing model or config, unknown experiment, model input channels or
            size different from the config's, model output not 4 classes.
    """
    import keras

    import brats_utils.model.unet  # noqa: F401  (registers the custom layers)

    model_path = Path(model_path)
    if not model_path.is_file():
        raise BratsError(f"model file not found: {model_path}")
    config = _read_config(model_path.parent / "config.json")
    settings, channels = run_settings(config)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise BratsError(f"{model_path}: not a loadable Keras model: {exc}") from exc
    input_shape = tuple(model.inputs[0].shape)
    if len(model.inputs) != 1 or len(input_shape) != 4:
        raise BratsError(f"{model_path}: expected one (B, H, W, C) input, got {model.inputs}")
    if input_shape[-1] != len(channels):
        raise BratsError(
            f"{model_path}: model takes {input_shape[-1]} input channels but config.json says "
            f"{len(channels)} ({list(channels)}); the model and config are from different runs"
        )
    if any(s is not None and s != settings.size for s in input_shape[1:3]):
        raise BratsError(
            f"{model_path}: model takes {input_shape[1]}x{input_shape[2]} slices but "
            f"config.json says image_size {settings.size}"
        )
    if tuple(model.outputs[0].shape)[-1] != NUM_CLASSES:
        raise BratsError(
            f"{model_path}: model outputs {tuple(model.outputs[0].shape)[-1]} classes, "
            f"expected {NUM_CLASSES}"
        )
    return model, config


def _resolve(
    config_or_settings: dict[str, Any] | PreprocessSettings, channels: Sequence[str] | None
) -> tuple[PreprocessSettings, tuple[str, ...]]:
    if isinstance(config_or_settings, PreprocessSettings):
        if channels is None:
            raise ValueError("channels are required when PreprocessSettings are given")
        settings = config_or_settings
    else:
        settings, config_channels = run_settings(config_or_settings)
        channels = config_channels if channels is None else channels
    channels = tuple(channels)
    unknown = [c for c in channels if c not in MODALITIES]
    if unknown or not channels:
        raise ValueError(f"channels must be a non-empty subset of {MODALITIES}, got {channels}")
    return settings, channels


def _predict_slices(model, x: np.ndarray, batch_size: int, tta: bool) -> np.ndarray:
    """Softmax of ``x`` (N, H, W, C) -> (N, H, W, 4) float32, averaged over flips if ``tta``."""
    flips: list[tuple[int, ...]] = [()]
    if tta:
        # slice rows are X (left-right in BraTS orientation), columns Y (anterior-posterior)
        flips += [(1,), (2,)]
    total = None
    for axes in flips:
        batch = np.flip(x, axis=axes) if axes else x
        probs = model.predict(np.ascontiguousarray(batch), batch_size=batch_size, verbose=0)
        probs = np.asarray(probs, dtype=np.float32)
        if axes:
            probs = np.flip(probs, axis=axes)
        total = probs if total is None else total + probs
    return total / np.float32(len(flips))


def predict_volume(
    model,
    image: np.ndarray,
    config_or_settings: dict[str, Any] | PreprocessSettings,
    channels: Sequence[str] | None = None,
    *,
    batch_size: int = 32,
    tta: bool = False,
    case_id: str = "",
) -> np.ndarray:
    """Class probabilities of every voxel of one case.

    Args:
        model: Keras model taking (B, size, size, len(channels)) float32 and returning
            softmax (B, size, size, 4).
        image: (X, Y, Z, 4) float, channels in ``MODALITIES`` order, scanner units
            (``Case.image``).
        config_or_settings: the run config dict (``config.json``) or
            :class:`~brats_utils.preprocessing.slices.PreprocessSettings`.
        channels: modalities fed to the model, in order; default the config's (required
            with ``PreprocessSettings``).
        batch_size: slices per forward pass.
        tta: average the softmax over the identity and the flips of every slice along X
            (left-right in BraTS orientation) and along Y (up-down on screen), each
            flipped back before averaging.
        case_id: for error messages.

    Returns:
        (X, Y, Z, 4) float32 probabilities over internal classes 0..3; outside the brain
        exactly (1, 0, 0, 0).

    Raises:
        CaseError: wrong image shape or non-square slices, no brain voxels, a constant modality.
        ValueError: bad channels or batch size.
    """
    settings, channels = _resolve(config_or_settings, channels)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    image = np.asarray(image)
    if image.ndim != 4 or image.shape[-1] != len(MODALITIES):
        raise CaseError(
            case_id, f"image must be (X, Y, Z, {len(MODALITIES)}), got shape {image.shape}"
        )
    n_x, n_y, _, _ = image.shape
    if n_x != n_y:
        raise CaseError(
            case_id, f"axial slices must be square like BraTS' 240 x 240, got {n_x} x {n_y}"
        )
    normalized = normalize_image(image, settings.normalization, case_id)  # (X, Y, Z, 4)
    selected = normalized[..., [MODALITIES.index(c) for c in channels]]
    x = resize_images(to_slices(selected), settings.size)  # (Z, size, size, C)
    del normalized, selected
    probs = _predict_slices(model, x, batch_size, tta)  # (Z, size, size, 4)
    full = resize_images(probs, n_x)  # (Z, X, Y, 4)
    full = np.ascontiguousarray(np.moveaxis(full, 0, 2))  # (X, Y, Z, 4)
    outside = ~np.any(image > 0, axis=-1)
    full[outside] = np.eye(NUM_CLASSES, dtype=np.float32)[0]
    return full


def predict_classes(
    model,
    image: np.ndarray,
    config_or_settings: dict[str, Any] | PreprocessSettings,
    channels: Sequence[str] | None = None,
    **kwargs,
) -> np.ndarray:
    """Argmax of :func:`predict_volume`: (X, Y, Z) uint8 internal classes 0..3."""
    probs = predict_volume(model, image, config_or_settings, channels, **kwargs)
    return np.argmax(probs, axis=-1).astype(np.uint8)


def prediction_path(out_dir: Path | str, case_id: str) -> Path:
    """``OUT_DIR/<case_id>.nii.gz``, the name BraTS submission portals expect."""
    return Path(out_dir) / f"{case_id}.nii.gz"


@dataclass
class PredictionReport:
    """What :func:`predict_cases` did.

    Attributes:
        written: prediction files written.
        skipped: case ids whose prediction already existed (no ``overwrite``).
        failed: ``{case_id: message}`` of cases that could not be read or predicted.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True if no case failed."""
        return not self.failed


def _input_cases(input_path: Path, case_ids: Iterable[str] | None) -> list[CaseFiles]:
    cases = discover_cases(input_path)
    if not cases:
        raise BratsError(
            f"no case folders found under {input_path} (expected folders like "
            "BraTS2021_00000/BraTS2021_00000_flair.nii.gz)"
        )
    if case_ids is None:
        return cases
    wanted = list(case_ids)
    by_id = {c.case_id: c for c in cases}
    unknown = sorted(set(wanted) - set(by_id))
    if unknown:
        raise BratsError(f"cases {unknown} are not in {input_path}")
    return [by_id[c] for c in sorted(set(wanted))]


def predict_cases(
    model_path: Path | str,
    input_path: Path | str,
    out_dir: Path | str,
    *,
    batch_size: int = 32,
    tta: bool = False,
    overwrite: bool = False,
    case_ids: Iterable[str] | None = None,
    progress: bool = True,
) -> PredictionReport:
    """Predict every case of a data folder (or one case folder) and write NIfTI files.

    Cases without segmentation (validation/test data) are fine. A case that cannot be read
    or predicted (:class:`~brats_utils.errors.CaseError`) is reported in
    ``report.failed`` and skipped; the others go on.

    Args:
        model_path: ``RUN_DIR/model.keras`` with ``RUN_DIR/config.json`` beside it.
        input_path: data folder (case folders found recursively) or one case folder.
        out_dir: where ``<case_id>.nii.gz`` are written (uint8, source release's labels,
            source affine and header), atomically.
        batch_size: slices per forward pass.
        tta: flip test-time augmentation (see :func:`predict_volume`).
        overwrite: predict again cases whose output exists (default: skip them).
        case_ids: predict only these cases (e.g. the test split).
        progress: show a progress bar over cases.

    Returns:
        The :class:`PredictionReport`.

    Raises:
        BratsError: bad model/config, no cases, unknown ``case_ids``.
    """
    model, config = load_run(model_path)
    cases = _input_cases(Path(input_path), case_ids)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = PredictionReport()
    bar = tqdm(cases, desc="predict", unit="case", disable=not progress)
    for files in bar:
        bar.set_postfix_str(files.case_id)
        out_path = prediction_path(out_dir, files.case_id)
        if out_path.exists() and not overwrite:
            report.skipped.append(files.case_id)
            continue
        try:
            case = load_case(files, expected_shape=None)  # any geometry whose files agree
            classes = predict_classes(
                model, case.image, config, batch_size=batch_size, tta=tta, case_id=case.case_id
            )
            labels = classes_to_labels(classes, case.release)
            write_nifti(out_path, labels, case.affine, case.header)
        except CaseError as exc:
            report.failed[files.case_id] = str(exc)
            tqdm.write(f"failed: {exc}")
            continue
        report.written.append(out_path)
    return report
