""":class:`PreprocessSettings`, the one settings object of preprocessing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from brats_utils.errors import CaseError, check_choice, from_known_keys

__all__ = ["NORMALIZATIONS", "MAX_SIZE", "PLANES", "PreprocessSettings", "to_plane", "from_plane"]

#: Normalisations over the brain: ``"zscore"`` (x - mean) / std, ``"max"`` x / max (the baseline's).
NORMALIZATIONS: tuple[str, ...] = ("zscore", "max")
#: Slicing planes and the axis order that puts each plane's slicing axis last: axial slices
#: are ``(X, Y)`` at each Z, coronal ``(X, Z)`` at each Y, sagittal ``(Y, Z)`` at each X.
PLANES: dict[str, tuple[int, int, int]] = {
    "axial": (0, 1, 2),
    "coronal": (0, 2, 1),
    "sagittal": (1, 2, 0),
}


def to_plane(volume: np.ndarray, plane: str) -> np.ndarray:
    """``(X, Y, Z[, C])`` -> the plane's frame, slicing axis last (a view; axial: unchanged)."""
    axes = PLANES[plane]
    return volume if plane == "axial" else np.transpose(volume, (*axes, *range(3, volume.ndim)))


def from_plane(volume: np.ndarray, plane: str) -> np.ndarray:
    """Inverse of :func:`to_plane`: the plane's frame back to ``(X, Y, Z[, C])`` (a view)."""
    if plane == "axial":
        return volume
    inverse = tuple(int(i) for i in np.argsort(PLANES[plane]))
    return np.transpose(volume, (*inverse, *range(3, volume.ndim)))


#: The largest slice size (pixels): 100 slices of 4 channels at 512 x 512 are 420 MB per case.
MAX_SIZE = 512


@dataclass(frozen=True)
class PreprocessSettings:
    """How volumes become training slices (defaults: the baseline's); ``crop_brain`` crops
    to the brain's box, else a non-square frame is padded to a square."""

    size: int = 128
    slice_start: int = 22
    slice_stop: int | None = 122
    normalization: str = "zscore"
    crop_brain: bool = False
    plane: str = "axial"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 1 <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be an integer in 1..{MAX_SIZE}, got {self.size!r}")
        if not isinstance(self.slice_start, int) or self.slice_start < 0:
            raise ValueError(f"slice_start must be an integer >= 0, got {self.slice_start!r}")
        if self.slice_stop is not None and (
            not isinstance(self.slice_stop, int) or self.slice_stop <= self.slice_start
        ):
            raise ValueError(
                f"slice_stop must be None or an integer > slice_start={self.slice_start}, "
                f"got {self.slice_stop!r}"
            )
        if not isinstance(self.crop_brain, bool):
            raise ValueError(f"crop_brain must be True or False, got {self.crop_brain!r}")
        check_choice("plane", self.plane, PLANES)
        check_choice("normalization", self.normalization, NORMALIZATIONS)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> PreprocessSettings:
        """From notebook parameters (``image_size`` is ``size``, ``slice_stop`` 0 is ``None``)."""
        names = {"image_size": "size", "slice_start": "slice_start", "slice_stop": "slice_stop",
                 "normalization": "normalization", "crop_brain": "crop_brain"}  # fmt: skip
        values = {field: parameters[name] for name, field in names.items() if name in parameters}
        if values.get("slice_stop") == 0:
            values["slice_stop"] = None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON dict; ``plane`` left out when axial, so older caches and runs keep theirs."""
        d = asdict(self)
        if d["plane"] == "axial":
            del d["plane"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSettings:
        return from_known_keys(cls, d, "preprocessing settings")

    def every_slice(self) -> PreprocessSettings:
        """The same settings keeping every slice (what inference feeds the model)."""
        return replace(self, slice_start=0, slice_stop=None)

    def slice_indices(self, depth: int, case_id: str = "") -> np.ndarray:
        """``(S,)`` int64 indices kept of ``depth`` slices; ``CaseError`` if there are too few."""
        stop = depth if self.slice_stop is None else self.slice_stop
        if stop > depth or self.slice_start >= depth:
            raise CaseError(
                case_id,
                f"volume has {depth} axial slices, but slices {self.slice_start}:{stop} "
                "were asked for (use --slices all or a range inside the volume)",
            )
        return np.arange(self.slice_start, stop, dtype=np.int64)
