"""How a run trains: :class:`TrainSettings`, the one source of training defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from brats_utils.errors import check_choice
from brats_utils.model.settings import UNetSettings
from brats_utils.training.augment import AUGMENTATIONS

__all__ = ["LOSSES", "SCHEDULES", "SELECTIONS", "TrainSettings"]

#: Loss names (:func:`brats_utils.training.losses.get_loss`): cross-entropy, soft Dice + CE.
LOSSES: tuple[str, ...] = ("ce", "dice_ce")
#: What picks ``model.keras``: lowest val loss, highest mean val region Dice, or the last epoch.
SELECTIONS: tuple[str, ...] = ("val_loss", "val_region_dice", "last")
#: Learning rate over the run: constant (the baseline's) or nnU-Net's poly, lr * (1 - t)**0.9.
SCHEDULES: tuple[str, ...] = ("constant", "poly")
#: The optimizer every run uses (recorded in ``config.json``).
OPTIMIZER = "adam"


@dataclass(frozen=True)
class TrainSettings:
    """How a training run learns (defaults: the baseline's); odd ``context_slices``: 2.5D input;
    ``pretrained``: a ``.keras`` file of the same network whose weights the run starts from."""

    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str = "constant"
    loss: str = "ce"
    seed: int = 0
    empty_slice_fraction: float = 1.0
    augment: str = "none"
    mixed_precision: bool = False
    data_parallel: bool = False
    max_cases: int | None = None
    select: str = "val_loss"
    context_slices: int = 1
    pretrained: str | None = None
    unet: UNetSettings = field(default_factory=UNetSettings)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:  # bool is no int here
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_cases is not None and (type(self.max_cases) is not int or self.max_cases < 1):
            raise ValueError(
                f"max_cases must be None or a positive integer, got {self.max_cases!r}"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.learning_rate, int | float) or not 0 < self.learning_rate < 1e3:
            raise ValueError(f"learning_rate must be > 0 and < 1000, got {self.learning_rate!r}")
        check_choice("select", self.select, SELECTIONS)
        if isinstance(self.augment, bool):  # runs and recipes before "nnunet": flips on or off
            object.__setattr__(self, "augment", "flips" if self.augment else "none")
        check_choice("augment", self.augment, AUGMENTATIONS)
        k = self.context_slices
        if type(k) is not int or k < 1 or k % 2 == 0:
            raise ValueError(f"context_slices must be an odd positive integer, got {k!r}")
        check_choice("loss", self.loss, LOSSES)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise ValueError(f"pretrained must be a path or None, got {self.pretrained!r}")
        fraction = self.empty_slice_fraction
        if not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
            raise ValueError(f"empty_slice_fraction must lie in [0, 1], got {fraction!r}")
        if not isinstance(self.unet, UNetSettings):
            raise ValueError(f"unet must be UNetSettings, got {type(self.unet).__name__}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        own = tuple(f.name for f in fields(cls) if f.name != "unet")
        return own + tuple(f.name for f in fields(UNetSettings))

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any], base: TrainSettings | None = None):
        """``base`` with the flat names of ``parameters`` replacing its values (others ignored,
        ``max_cases`` 0: all)."""
        base = base or cls()
        unet_names = {f.name for f in fields(UNetSettings)}
        own = {k: parameters[k] for k in cls.names() if k in parameters and k not in unet_names}
        if own.get("max_cases") == 0:
            own["max_cases"] = None
        unet = {k: parameters[k] for k in unet_names if k in parameters}
        return replace(base, **own, unet=replace(base.unet, **unet))

    def flat(self) -> dict[str, Any]:
        own = {k: v for k, v in asdict(self).items() if k != "unet"}
        return {**own, **self.unet.to_dict()}

    def to_config(self) -> dict[str, Any]:
        """``config.json`` sections ``training``, ``model`` (the network as built) and ``seed``."""
        training = {k: v for k, v in self.flat().items() if k in _TRAINING_KEYS}
        return {
            "training": {"optimizer": OPTIMIZER, **training},
            "model": self.unet.to_dict(),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        """Inverse of :meth:`to_config`; ``ValueError`` on unknown keys or invalid values."""
        training = dict(config.get("training", {}))
        training.pop("optimizer", None)
        unknown = sorted(set(training) - set(_TRAINING_KEYS))
        if unknown:
            raise ValueError(f"unknown training settings {unknown} in the run config")
        unet = UNetSettings.from_dict(dict(config.get("model", {})))
        return cls(**training, seed=int(config.get("seed", 0)), unet=unet)

    def differences(self, other: TrainSettings, ignore: tuple[str, ...] = ()) -> list[str]:
        """``"name: mine -> other's"`` for every flat setting that differs."""
        mine, theirs = self.flat(), other.flat()
        return [
            f"{k}: {mine[k]!r} -> {theirs[k]!r}"
            for k in sorted(mine)
            if k not in ignore and mine[k] != theirs[k]
        ]


_TRAINING_KEYS: tuple[str, ...] = tuple(
    f.name for f in fields(TrainSettings) if f.name not in ("unet", "seed")
)
