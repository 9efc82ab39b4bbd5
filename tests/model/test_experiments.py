"""The experiment registry: names, channels, fusion, errors."""

from __future__ import annotations

import pytest

from brats_utils.conventions import MODALITIES
from brats_utils.errors import BratsError
from brats_utils.model.experiments import EXPERIMENTS, Experiment, get_experiment


def test_registry_holds_the_three_experiments():
    assert set(EXPERIMENTS) == {"early4", "mean4", "early2"}


@pytest.mark.parametrize(
    ("name", "channels", "fusion"),
    [
        ("early4", MODALITIES, "early"),
        ("mean4", MODALITIES, "mean"),
        ("early2", ("flair", "t1ce"), "early"),
    ],
)
def test_experiment_channels_and_fusion(name, channels, fusion):
    experiment = get_experiment(name)
    assert experiment.channels == channels
    assert experiment.fusion == fusion
    assert len(experiment.channels) == len(channels)
    assert experiment.description


def test_unknown_experiment_lists_known_names():
    with pytest.raises(BratsError, match="early4, mean4, early2"):
        get_experiment("late3")


def test_get_experiment_passes_objects_through():
    experiment = EXPERIMENTS["mean4"]
    assert get_experiment(experiment) is experiment


@pytest.mark.parametrize(
    ("channels", "fusion", "message"),
    [
        (("flair", "pd"), "early", "channels"),
        (("flair",), "late", "fusion"),
        ((), "early", "non-empty"),
    ],
)
def test_invalid_experiment_definition_is_refused(channels, fusion, message):
    with pytest.raises(ValueError, match=message):
        Experiment("bad", "Bad", channels, fusion, "")
