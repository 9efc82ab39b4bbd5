"""Named recipes (``--recipe``): ``baseline`` (the defaults) and ``best`` (the study's)."""

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
    """One named way to preprocess, train and predict: settings, TTA and postprocessing."""

    name: str
    description: str
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    tta: bool = False
    postprocess: bool = False
    #: > 0: training starts from a model trained on this many synthetic cases.
    pretrain: int = 0
    #: > 0: this many fold models predict as one ensemble, postprocessing chosen out of fold.
    folds: int = 0

    def preprocess_settings(self, **overrides: Any) -> PreprocessSettings:
        return replace(PreprocessSettings(), **{**self.preprocessing, **overrides})

    def train_settings(self, **overrides: Any) -> TrainSettings:
        base = TrainSettings.from_parameters(self.training)
        return TrainSettings.from_parameters(overrides, base=base)

    def to_config(self) -> dict[str, Any]:
        return {"recipe": self.name, "inference": {"tta": self.tta}}


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("baseline", "the baseline's settings exactly (the defaults)"),
        Recipe(
            "best",
            "the study's 'nnunet': every slice (30% of empty ones per epoch), brain crop, regions "
            "(Dice + BCE), 2.5D (3 slices), nnU-Net's augmentation, batch norm, leaky ReLU, poly "
            "lr, 3 fold models as one ensemble, flip TTA, out-of-fold postprocessing",
            preprocessing={"slice_start": 0, "slice_stop": None, "crop_brain": True},
            training={
                "loss": "dice_ce",
                "augment": "nnunet",
                "empty_slice_fraction": 0.3,
                "head": "regions",
                "context_slices": 3,
                "batch_norm": True,
                "activation": "leaky_relu",
                "schedule": "poly",
            },
            tta=True,
            postprocess=True,
            folds=3,
        ),
    )
}


def get_recipe(name: str | Recipe) -> Recipe:
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise BratsError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}") from None
