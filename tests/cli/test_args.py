"""The argparse number types shared by the commands."""

from __future__ import annotations

import argparse

import pytest

from brats_utils.cli.args import (
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


@pytest.mark.parametrize(
    ("parse", "good", "bad"),
    [
        (positive_int, {"3": 3}, ["0", "-1", "abc", "1.5"]),
        (non_negative_int, {"0": 0}, ["-1", "x"]),
        (positive_float, {"1e-3": 1e-3}, ["0", "nan", "inf", "-2"]),
        (non_negative_float, {"0": 0.0, "50": 50.0}, ["-1", "nan", "inf"]),
        (fraction, {"0.3": 0.3, "1": 1.0}, ["1.5", "-0.1", "nan"]),
    ],
)
def test_number_types(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got {text!r}"):
            parse(text)
