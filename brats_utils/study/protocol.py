"""What the study compares, and on which cases: the folds and the configurations."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from brats_utils.errors import BratsError
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.recipes import Recipe
from brats_utils.training.settings import TrainSettings

__all__ = [
    "StudyScale",
    "Config",
    "CONFIGS",
    "make_folds",
    "fold_split",
    "digest",
]


def digest(record: Any) -> str:
    """Ten hex digits of the SHA-1 of ``record`` as sorted JSON: a folder name per setting."""
    return hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class StudyScale:
    """The size of every training of the study: the defaults fit 2 CPU cores (about 3 hours)."""

    size: int = 64
    base_filters: int = 16
    epochs: int = 10
    batch_size: int = 16


@dataclass(frozen=True)
class Config(Recipe):
    """A recipe of one experiment at the study's scale (a training per plane of ``planes``)."""

    experiment: str = "early2"
    model_file: str = "model.keras"
    planes: tuple[str, ...] = ("axial",)
    #: With ``folds``: postprocessing chosen on the inner models' out-of-fold predictions of all
    #: the study fold's training cases (``oof``), or of its validation cases only.
    postprocess_on: str = "oof"

    def preprocess_settings(self, scale: StudyScale, plane: str = "axial") -> PreprocessSettings:
        return super().preprocess_settings(size=scale.size, plane=plane)

    def train_settings(self, scale: StudyScale, seed: int) -> TrainSettings:
        sizes = {"epochs": scale.epochs, "batch_size": scale.batch_size, "seed": seed}
        return super().train_settings(**sizes, base_filters=scale.base_filters)

    def training_key(self, scale: StudyScale, seed: int, plane: str = "axial") -> str:
        """Name of the run folder: configurations with the same training share it. Only
        settings off their defaults are named, so a new setting renames no finished run."""
        pre, train = PreprocessSettings().to_dict(), TrainSettings().flat()
        recipe = {
            "experiment": self.experiment,
            "preprocessing": _changed(self.preprocess_settings(scale, plane).to_dict(), pre),
            "training": _changed(self.train_settings(scale, seed).flat(), train),
        }
        return f"{self.experiment}-{digest(recipe)}"


def _changed(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in defaults or v != defaults[k]}


_CURRENT_PRE = {"slice_start": 0, "slice_stop": None}
_CURRENT_TRAIN = {"loss": "dice_ce", "augment": True, "empty_slice_fraction": 0.3}
_CROP = {**_CURRENT_PRE, "crop_brain": True}
_ALL_TRAIN = {**_CURRENT_TRAIN, "head": "regions", "context_slices": 3}


def _current(name: str, description: str, **changes: Any) -> Config:
    """The ``current`` configuration with ``changes``; ``training`` changes are added to its."""
    training = {**_CURRENT_TRAIN, **changes.pop("training", {})}
    current = Config(name, description, preprocessing=_CURRENT_PRE, training=training, tta=True)
    return replace(current, **changes)


def _all(experiment: str, name: str, description: str, **changes: Any) -> Config:
    training = {**_ALL_TRAIN, **changes.pop("training", {})}
    return Config(name, description, _CROP, training, True, True, experiment=experiment, **changes)


_NNUNET_NET = {"batch_norm": True, "activation": "leaky_relu", "schedule": "poly"}


#: Every configuration, in the order the study runs them (the most needed comparisons first).
CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        _current(
            "current",
            "the project's real-data settings before the study: every slice, 30% empty "
            "slices, Dice + CE, flips, flip TTA",
        ),
        Config("baseline", "the baseline's recipe: slices 22..121, CE, no augmentation, no TTA"),
        _current(
            "+postprocess",
            "current + small components and small ET removed (thresholds on validation)",
            postprocess=True,
        ),
        _current(
            "+last",
            "current, scoring the last epoch instead of the best validation loss",
            model_file="model_last.keras",
        ),
        _current("+crop", "current + brain crop", preprocessing=_CROP),
        _current(
            "+regions",
            "current + region outputs (WT/TC/ET sigmoids, Dice + BCE, nested decoding)",
            training={"head": "regions"},
        ),
        _current(
            "+2.5d", "current + 3 neighbouring slices per modality", training={"context_slices": 3}
        ),
        _current(
            "+triplanar",
            "current, trained on axial, coronal and sagittal slices, scores averaged in 3D",
            planes=("axial", "coronal", "sagittal"),
        ),
        _all("early2", "all", "current + crop + regions + 2.5D + postprocessing"),
        _all("early4", "all-early4", "all options, four modalities as channels"),
        _all("mean4", "all-mean4", "all options, the mean of the four modalities"),
        _all(
            "early2",
            "+nnaug",
            "all + nnU-Net's augmentation (rotation, scaling, elastic, "
            "noise, blur, brightness, contrast, gamma)",
            training={"augment": "nnunet"},
        ),
        _all(
            "early2",
            "+nnnet",
            "all + batch norm, leaky ReLU, poly learning rate",
            training=_NNUNET_NET,
        ),
        _all(
            "early2",
            "ensemble",
            "all as 3 inner fold models averaged, postprocessing chosen "
            "on their out-of-fold predictions of every training case",
            folds=3,
        ),
        _all(
            "early2",
            "ensemble-pp2",
            "ensemble, postprocessing chosen on the 2 validation cases only",
            folds=3,
            postprocess_on="validation",
        ),
        _all(
            "early2",
            "nnunet",
            "all + nnU-Net's augmentation, network and learning rate, as an ensemble of 3 "
            "inner fold models, postprocessing out of fold",
            training={"augment": "nnunet", **_NNUNET_NET},
            folds=3,
        ),
        _all(
            "early2",
            "+pretrain",
            "all, every training started from a model trained on 40 synthetic cases",
            pretrain=40,
        ),
        _current(
            "+select",
            "current, model.keras chosen by the validation cases' region Dice, not their loss",
            training={"select": "val_region_dice"},
        ),
    )
}


def make_folds(case_ids: Sequence[str], folds: int, seed: int) -> list[list[str]]:
    """``folds`` disjoint test sets covering every case (sizes differ by at most 1)."""
    ids = sorted(set(case_ids))
    if folds < 2 or len(ids) < 3 * folds:
        raise BratsError(
            f"{len(ids)} labelled cases cannot make {folds} folds (need at least 2 folds and "
            "3 cases per fold)"
        )
    order = np.random.default_rng(seed).permutation(len(ids))
    return [sorted(ids[i] for i in part) for part in np.array_split(order, folds)]


def fold_split(folds: Sequence[Sequence[str]], fold: int, validation: int, seed: int):
    """``{case: "train" | "validation" | "test"}`` of ``fold``: its cases are the test cases."""
    test = set(folds[fold])
    rest = sorted(c for i, part in enumerate(folds) if i != fold for c in part)
    if not 1 <= validation < len(rest):
        raise BratsError(f"--validation {validation} must lie in 1..{len(rest) - 1}")
    rng = np.random.default_rng([seed, fold])
    chosen = {rest[i] for i in rng.choice(len(rest), size=validation, replace=False)}
    split = {c: "test" for c in test}
    split.update({c: ("validation" if c in chosen else "train") for c in rest})
    return dict(sorted(split.items()))
