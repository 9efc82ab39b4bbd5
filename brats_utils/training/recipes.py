"""Named recipes: every setting of a way to train, from the cache to the written segmentation.

``brats preprocess --recipe NAME`` and ``brats train --recipe NAME`` start from a recipe's
settings, and any option given on the command line replaces the recipe's value. A run
records its recipe and its inference settings in ``config.json`` (``"recipe"`` and
``"inference"``), so ``brats predict`` reads all of it from the run.

* ``seed``: the seed notebook's settings exactly (the defaults of every command): 128 x 128
  slices 22..121, z-score, cross-entropy, no augmentation, every tumour-free slice,
  ``model.keras`` by validation loss, no test-time augmentation, no postprocessing.
* ``best``: the study's ``all`` configuration, the best measured on the 16 real cases
  (``brats study``; README, "Beyond the seed"): every axial slice with 30% of the
  tumour-free ones drawn each epoch, the brain crop, region outputs (WT/TC/ET sigmoids, Dice
  + BCE), 2.5D input (3 neighbouring slices per modality), flips, flip TTA at inference, and
  postprocessing thresholds chosen on the validation cases after training. A test keeps it
  equal to the study's ``all``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from brats_utils.errors import BratsError
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.training.settings import TrainSettings

__all__ = ["Recipe", "RECIPES", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """One named way to preprocess, train and predict.

    Attributes:
        name: ``seed`` or ``best``.
        description: one line for ``--help`` and the run config.
        preprocessing: :class:`PreprocessSettings` fields that differ from the defaults.
        training: :class:`TrainSettings` flat names that differ from the defaults.
        tta: flip test-time augmentation at inference (``brats predict``'s default).
        postprocess: choose postprocessing on the validation cases after training
            (``brats postprocess``), which ``brats predict`` then applies.
    """

    name: str
    description: str
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    tta: bool = False
    postprocess: bool = False

    def preprocess_settings(self, **overrides: Any) -> PreprocessSettings:
        """The recipe's preprocessing settings, ``overrides`` (field names) replacing them."""
        return replace(PreprocessSettings(), **{**self.preprocessing, **overrides})

    def train_settings(self, **overrides: Any) -> TrainSettings:
        """The recipe's training settings, ``overrides`` (flat names) replacing them."""
        base = TrainSettings.from_parameters(self.training)
        return TrainSettings.from_parameters(overrides, base=base)

    def to_config(self) -> dict[str, Any]:
        """``config.json``'s ``"recipe"`` and ``"inference"`` sections."""
        return {"recipe": self.name, "inference": {"tta": self.tta}}


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("seed", "the seed notebook's settings exactly (the defaults)"),
        Recipe(
            "best",
            "every slice (30% of the empty ones per epoch), brain crop, region outputs with "
            "Dice + BCE, 2.5D (3 slices), flips, flip TTA, postprocessing chosen on the "
            "validation cases (the study's 'all')",
            preprocessing={"slice_start": 0, "slice_stop": None, "crop_brain": True},
            training={
                "loss": "dice_ce",
                "augment": True,
                "empty_slice_fraction": 0.3,
                "head": "regions",
                "context_slices": 3,
            },  # fmt: skip
            tta=True,
            postprocess=True,
        ),
    )
}


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` is returned unchanged).

    Raises:
        BratsError: an unknown name (the message lists the known ones).
    """
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise BratsError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}") from None
