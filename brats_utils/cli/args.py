"""argparse types shared by the ``brats`` commands: numbers checked with a message that quotes
what was given (argparse then prints ``argument --x: expected ..., got '...'``, no traceback)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from brats_utils.errors import BratsError

__all__ = [
    "positive_int",
    "non_negative_int",
    "positive_float",
    "non_negative_float",
    "fraction",
    "check_output_file",
]


def _number(text: str, kind: type, ok, expected: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, lambda v: v > 0, "a positive finite number")


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def check_output_file(option: str, path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output file that is a folder or exists (without --overwrite).

    Raises:
        BratsError: naming the option and the path.
    """
    if path.is_dir():
        raise BratsError(f"{option}: {path} is a folder; expected a file name")
    if path.exists() and not overwrite:
        raise BratsError(f"{option}: {path} exists; pass --overwrite to replace it")
