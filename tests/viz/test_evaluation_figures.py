"""Figures of the evaluation: paired comparison, Dice against volume, error maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brats_utils.errors import BratsError
from brats_utils.evaluation.failures import error_map
from brats_utils.viz.evaluation_figures import (
    plot_dice_vs_volume,
    plot_error_map,
    plot_paired_cases,
)


def _per_case(shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "case": [f"c{i}" for i in range(5)],
            "dice_ET": np.clip(rng.uniform(0.3, 0.9, 5) + shift, 0, 1),
            "volume_ET_ml": rng.uniform(0.5, 30, 5),
        }
    )


def test_paired_cases_draw_one_line_per_case(tmp_path):
    a, b = _per_case(0.0), _per_case(0.05)
    fig = plot_paired_cases(a, b, metrics=["dice_ET"], out_path=tmp_path / "p.png")
    (axis,) = fig.axes
    assert len(axis.lines) == 5 + 1  # a line per case and the mean
    assert (tmp_path / "p.png").stat().st_size > 0
    with pytest.raises(BratsError, match="same cases"):
        plot_paired_cases(a, b.iloc[1:], metrics=["dice_ET"])


def test_dice_against_volume(tmp_path):
    fig = plot_dice_vs_volume({"early4": _per_case(0), "early2": _per_case(0.1)}, region="ET")
    assert len(fig.axes[0].collections) == 2
    with pytest.raises(ValueError, match="lacks columns"):
        plot_dice_vs_volume({"x": pd.DataFrame({"case": ["a"]})}, region="ET")


def test_error_map_figure_shows_the_three_regions(tmp_path):
    truth = np.zeros((12, 12, 6), dtype=np.uint8)
    truth[3:8, 3:8, 2:4] = 2
    truth[4:6, 4:6, 2:4] = 3
    pred = np.roll(truth, 1, axis=0)
    image = np.random.default_rng(0).normal(size=(12, 12, 6, 4)).astype(np.float32)
    fig = plot_error_map(image, error_map(pred, truth), out_path=tmp_path / "e.png")
    assert [a.get_title() for a in fig.axes] == ["WT", "TC", "ET"]
    assert fig._suptitle.get_text() == "errors on axial slice 2"  # the most WT errors
    with pytest.raises(ValueError, match="errors must be"):
        plot_error_map(image, error_map(pred, truth)[..., :2])
