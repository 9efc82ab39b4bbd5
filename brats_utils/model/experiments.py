"""The three modality-fusion experiments: which modalities each reads and fuses."""

from __future__ import annotations

from dataclasses import dataclass

from brats_utils.conventions import MODALITIES, channel_indices
from brats_utils.errors import BratsError, check_choice

__all__ = ["FUSIONS", "Experiment", "EXPERIMENTS", "get_experiment"]

#: Supported fusion front ends: channel concatenation or a voxel-wise mean over channels.
FUSIONS: tuple[str, ...] = ("early", "mean")


@dataclass(frozen=True)
class Experiment:
    """One fusion variant: ``channels`` side by side (``"early"``) or averaged (``"mean"``)."""

    name: str
    title: str
    channels: tuple[str, ...]
    fusion: str
    description: str

    def __post_init__(self) -> None:
        channel_indices(self.channels)  # ValueError on unknown or no channels
        check_choice("fusion", self.fusion, FUSIONS)


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
    if isinstance(name, Experiment):
        return name
    if name not in EXPERIMENTS:
        raise BratsError(f"unknown experiment {name!r}; expected one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
