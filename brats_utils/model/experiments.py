"""The three modality-fusion experiments, shared by the notebooks and ``brats train``.

This module imports no Keras: it only says *which* modalities each experiment reads from the
slice cache and *how* they are fused. :func:`brats_utils.model.unet.build_model` turns an
:class:`Experiment` into a network.

How each experiment reads the seed's description:

* ``early4`` - "early fusion of all four modalities as channels": T1, T1ce, T2 and FLAIR are
  stacked as 4 input channels (in :data:`~brats_utils.conventions.MODALITIES` order) and the
  first convolution mixes them.
* ``mean4`` - "a mean fusion of the four modalities": the model takes the same 4-channel input
  as ``early4`` and, inside the network, averages the four (already normalised) modalities
  voxel-wise into ONE channel before the U-Net. The U-Net itself sees a single channel.
* ``early2`` - "early fusion of two modalities (FLAIR + T1ce)": FLAIR and T1ce are stacked as 2
  input channels, in that order (the seed's best configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

from brats_utils.conventions import MODALITIES
from brats_utils.errors import BratsError

__all__ = ["FUSIONS", "Experiment", "EXPERIMENTS", "get_experiment"]

#: Supported fusion front ends: channel concatenation or a voxel-wise mean over channels.
FUSIONS: tuple[str, ...] = ("early", "mean")


@dataclass(frozen=True)
class Experiment:
    """One fusion variant.

    Attributes:
        name: short identifier used on the command line and in run folders (``"early2"``).
        title: human-readable title for plots and tables.
        channels: modalities read from the cache, in the order they are fed to the model
            (each one of :data:`~brats_utils.conventions.MODALITIES`).
        fusion: ``"early"`` (channels concatenated, the model input has ``len(channels)``
            channels) or ``"mean"`` (the model input has ``len(channels)`` channels that the
            model averages voxel-wise into one channel before the U-Net).
        description: how the experiment reads the seed's description.
    """

    name: str
    title: str
    channels: tuple[str, ...]
    fusion: str
    description: str

    def __post_init__(self) -> None:
        unknown = [c for c in self.channels if c not in MODALITIES]
        if unknown or not self.channels:
            raise ValueError(
                f"experiment {self.name!r}: channels must be a non-empty subset of "
                f"{MODALITIES}, got {self.channels}"
            )
        if self.fusion not in FUSIONS:
            raise ValueError(
                f"experiment {self.name!r}: fusion must be one of {FUSIONS}, got {self.fusion!r}"
            )

    @property
    def input_channels(self) -> int:
        """Number of channels of the model input (and of the loader's ``x``)."""
        return len(self.channels)

    @property
    def unet_channels(self) -> int:
        """Number of channels the U-Net body sees after the fusion front end."""
        return 1 if self.fusion == "mean" else len(self.channels)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            name="early4",
            title="Early fusion, 4 modalities",
            channels=MODALITIES,
            fusion="early",
            description=(
                "Early fusion of all four modalities as channels: T1, T1ce, T2, FLAIR "
                "concatenated as 4 input channels."
            ),
        ),
        Experiment(
            name="mean4",
            title="Mean fusion, 4 modalities",
            channels=MODALITIES,
            fusion="mean",
            description=(
                "A mean fusion of the four modalities: the four normalised modalities are "
                "averaged voxel-wise into one channel inside the model (same 4-channel input "
                "as early4)."
            ),
        ),
        Experiment(
            name="early2",
            title="Early fusion, FLAIR + T1ce",
            channels=("flair", "t1ce"),
            fusion="early",
            description="Early fusion of two modalities (FLAIR + T1ce) as 2 input channels.",
        ),
    )
}


def get_experiment(name: str | Experiment) -> Experiment:
    """Look up an experiment by name (an :class:`Experiment` is returned unchanged).

    Raises:
        BratsError: if ``name`` is not a known experiment; the message lists the known names.
    """
    if isinstance(name, Experiment):
        return name
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise BratsError(
            f"unknown experiment {name!r}; expected one of {', '.join(EXPERIMENTS)}"
        ) from None
