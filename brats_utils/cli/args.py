"""Argument checks of every ``brats`` command: numbers and paths, named in the error."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from brats_utils.errors import BratsError
from brats_utils.model.settings import UNetSettings

__all__ = [
    "positive_int",
    "non_negative_int",
    "odd_positive_int",
    "positive_float",
    "non_negative_float",
    "fraction",
    "volume_side",
    "unet_size",
    "base_filters",
    "check_input_folder",
    "check_input_file",
    "check_output_folder",
    "check_output_file",
    "check_outside",
]


def _number(kind: type, ok, expected: str):
    """An argparse type: ``kind(text)`` if it is finite and ``ok``, else ``expected``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
odd_positive_int = _number(int, lambda v: v >= 1 and v % 2 == 1, "an odd positive integer")
positive_float = _number(float, lambda v: v > 0, "a positive finite number")
non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
fraction = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
#: Slice sizes the U-Net can pool ``depth`` times (16, 32, ...), at most 512.
_POOLED = 2 ** UNetSettings().depth
unet_size = _number(
    int, lambda v: 0 < v <= 512 and v % _POOLED == 0, f"a multiple of {_POOLED} up to 512"
)
#: U-Net widths up to 256 base filters (4096 at depth 4: about 1 GB of weights, 3 with Adam).
base_filters = _number(int, lambda v: 1 <= v <= 256, "an integer from 1 to 256")
#: A synthetic volume's side: up to 512 voxels (32 bytes each at its peak, 512^3: 4.3 GB).
volume_side = _number(int, lambda v: 16 <= v <= 512, "a size of 16 to 512 voxels")


def check_input_folder(option: str, path: Path, what: str = "folder") -> None:
    if not path.is_dir():
        found = "is a file" if path.exists() else "not found"
        raise BratsError(f"{option} {path} {found}; expected a {what}")


def check_input_file(option: str, path: Path, what: str = "file") -> None:
    if not path.is_file():
        found = "is a folder" if path.is_dir() else "not found"
        raise BratsError(f"{option} {path} {found}; expected a {what}")


def _check_writable(option: str, path: Path, folder: Path) -> None:
    """Refuse an output whose ``folder`` (or nearest existing parent) is not a folder, or where a
    probe file cannot be made (and removed)."""
    folder = next((p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), folder)
    if not folder.is_dir():  # a file, or a broken link
        raise BratsError(f"{option} {path}: {folder} is not a folder")
    try:
        tempfile.NamedTemporaryFile(prefix=".brats-probe.", dir=folder).close()
    except OSError as exc:
        raise BratsError(f"{option} {path}: cannot write in {folder}: {exc.strerror}") from exc


def check_output_folder(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise BratsError(f"{option} {path} is a file; expected a folder")
    _check_writable(option, path, path)


def check_output_file(option: str, path: Path, overwrite: bool) -> None:
    """Refuse an output file that is a folder, or exists (without ``overwrite``)."""
    if path.is_dir():
        raise BratsError(f"{option}: {path} is a folder; expected a file name")
    if path.exists() and not overwrite:
        raise BratsError(f"{option}: {path} exists; pass --overwrite to replace it")
    _check_writable(option, path, path.parent)


def check_outside(option: str, out: Path, ins: list[Path], what: str, inside: bool = True) -> None:
    """Refuse an output folder equal to (or ``inside``) an input folder, where they would mix."""
    for folder in ins:
        if folder.resolve() in (out.resolve(), *(out.resolve().parents if inside else ())):
            raise BratsError(f"{option} {out} lies in the {what} folder {folder}: choose another")
