"""``brats preprocess``: build the slice cache of a data folder (no TensorFlow import)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brats_utils.cli.args import (
    check_input_folder,
    check_output_folder,
    check_outside,
    positive_int,
    unet_size,
)
from brats_utils.errors import BratsError
from brats_utils.preprocessing.settings import NORMALIZATIONS, PLANES
from brats_utils.training.recipes import RECIPES, get_recipe

__all__ = ["add_parser", "run", "parse_slices"]


def parse_slices(text: str) -> tuple[int, int | None]:
    """``--slices``: ``"START:STOP"`` (STOP exclusive) -> ``(start, stop)``; ``"all"``: all."""
    if text.strip().lower() == "all":
        return 0, None
    try:
        start, stop = (int(p) for p in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP (e.g. 22:122, stop exclusive) or 'all', got {text!r}"
        ) from None
    if start < 0 or stop <= start:
        raise argparse.ArgumentTypeError(f"expected 0 <= START < STOP in START:STOP, got {text!r}")
    return start, stop


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "preprocess",
        help="build the slice cache (normalised, resized axial slices) of a data folder",
        description="Normalise every case of DATA_DIR, keep and resize the chosen slices and "
        "store them in CACHE_DIR for fast training. Resumable; unreadable cases are reported "
        "and skipped (exit status 1).",
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="data folder")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="CACHE_DIR", help="cache folder to write"
    )
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="baseline",
        help="start from a recipe (default baseline; best: every slice, brain crop); the options "
        "below replace its values",
    )
    parser.add_argument("--size", type=unet_size, help="slice size in pixels (both recipes: 128)")
    parser.add_argument(
        "--slices",
        type=parse_slices,
        metavar="START:STOP|all",
        help="slices kept, STOP exclusive (baseline: 22:122; best: all)",
    )
    parser.add_argument(
        "--normalization", choices=NORMALIZATIONS, help="over the brain (baseline, best: zscore)"
    )
    parser.add_argument(
        "--crop-brain",
        action=argparse.BooleanOptionalAction,
        help="crop slices to the brain's square before resizing (baseline: off, best: on)",
    )
    parser.add_argument(
        "--plane",
        choices=tuple(PLANES),
        help="slicing plane (baseline, best: axial); a run per plane makes a triplanar ensemble",
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a cache of other settings"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """0 if every case was cached, 1 if some failed."""
    from brats_utils.data.cases import discover_cases
    from brats_utils.preprocessing.cache_build import build_cache

    check_input_folder("DATA_DIR", args.data_dir, "data folder")
    check_output_folder("--out", args.out)
    check_outside("--out", args.out, [c.folder for c in discover_cases(args.data_dir)], "case")
    names = ("size", "normalization", "crop_brain", "plane")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.slices is not None:  # (0, None) for all: a None that replaces the recipe's stop
        given["slice_start"], given["slice_stop"] = args.slices
    try:
        settings = get_recipe(args.recipe).preprocess_settings(**given)
    except ValueError as exc:
        raise BratsError(str(exc)) from exc
    report = build_cache(
        args.data_dir,
        args.out,
        settings,
        workers=args.workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    for case_id, reason in report.failed:
        print(f"failed {case_id}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0
