""":class:`UNetSettings`: what ``build_model`` builds and a run's ``config.json`` records."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from brats_utils.errors import check_choice, from_known_keys

__all__ = ["ACTIVATIONS", "HEADS", "UPSAMPLING_MODES", "UNetSettings"]

#: How the expanding path doubles the size: up-sampling + 2x2 conv (the baseline's) or transposed.
UPSAMPLING_MODES: tuple[str, ...] = ("upsampling", "transpose")
#: Network output: a softmax over 4 classes (the baseline's), or sigmoids of WT, TC, ET (nnU-Net).
HEADS: tuple[str, ...] = ("classes", "regions")
#: After each 3x3 convolution: ReLU (the baseline's) or leaky ReLU, slope 0.01 (nnU-Net's).
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu")


@dataclass(frozen=True)
class UNetSettings:
    """Architecture of the 2D U-Net (defaults: the baseline's): ``base_filters * 2**level`` filters
    on levels ``0..depth``; ``batch_norm`` is not in the baseline."""

    depth: int = 4
    base_filters: int = 32
    dropout: float = 0.2
    batch_norm: bool = False
    upsampling: str = "upsampling"
    head: str = "classes"
    activation: str = "relu"

    def __post_init__(self) -> None:
        for name in ("depth", "base_filters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be True or False, got {self.batch_norm!r}")
        check_choice("upsampling", self.upsampling, UPSAMPLING_MODES)
        check_choice("head", self.head, HEADS)
        check_choice("activation", self.activation, ACTIVATIONS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetSettings:
        return from_known_keys(cls, d, "U-Net settings")
