"""What every ``brats`` command checks before any work, one rule each.

Numbers are argparse types, checked with a message that quotes what was given (argparse then
prints ``argument --x: expected ..., got '...'``, no traceback). Paths are checked by the
``check_*`` functions at the start of a command's ``run``: an input that is missing or of the
wrong kind (a file given for a folder, or a folder for a file), an output of the wrong kind or
under a file, each a :class:`~brats_utils.errors.BratsError` naming the option and the path.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from brats_utils.errors import BratsError

__all__ = [
    "positive_int",
    "non_negative_int",
    "odd_positive_int",
    "positive_float",
    "non_negative_float",
    "fraction",
    "check_input_folder",
    "check_input_file",
    "check_output_folder",
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


def odd_positive_int(text: str) -> int:
    """An odd integer >= 1 (slices around a centre slice)."""
    return _number(text, int, lambda v: v >= 1 and v % 2 == 1, "an odd positive integer")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, lambda v: v > 0, "a positive finite number")


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def check_input_folder(option: str, path: Path, what: str = "folder") -> None:
    """Refuse an input folder that is missing or is a file.

    Raises:
        BratsError: naming the option and the path, e.g. ``DATA_DIR x.nii.gz is a file;
            expected a data folder``.
    """
    if path.exists() and not path.is_dir():
        raise BratsError(f"{option} {path} is a file; expected a {what}")
    if not path.is_dir():
        raise BratsError(f"{option} {path} not found; expected a {what}")


def check_input_file(option: str, path: Path, what: str = "file") -> None:
    """Refuse an input file that is missing or is a folder.

    Raises:
        BratsError: naming the option and the path.
    """
    if path.is_dir():
        raise BratsError(f"{option} {path} is a folder; expected a {what}")
    if not path.is_file():
        raise BratsError(f"{option} {path} not found; expected a {what}")


def _check_parents(option: str, path: Path) -> None:
    """Refuse an output whose nearest existing parent is a file (it could not be created)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BratsError(f"{option} {path}: {parent} is a file, not a folder")
            return


def check_output_folder(option: str, path: Path) -> None:
    """Refuse an output folder that is a file or lies under a file.

    Raises:
        BratsError: naming the option and the path.
    """
    if path.exists() and not path.is_dir():
        raise BratsError(f"{option} {path} is a file; expected a folder")
    _check_parents(option, path)


def check_output_file(option: str, path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output file that is a folder or exists (without --overwrite).

    Raises:
        BratsError: naming the option and the path.
    """
    if path.is_dir():
        raise BratsError(f"{option}: {path} is a folder; expected a file name")
    if path.exists() and not overwrite:
        raise BratsError(f"{option}: {path} exists; pass --overwrite to replace it")
    _check_parents(option, path)
