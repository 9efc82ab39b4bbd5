"""``brats check``: validate every case of a data folder (no TensorFlow import)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brats_utils.cli.args import check_input_folder, positive_int

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="validate a data folder: every case, every file",
        description="Read every file of every case folder under DATA_DIR (any release) once "
        "and report every problem (missing or unreadable files, shapes, affines, NaN/inf, "
        "blank modalities, labels); exits 1 if any case is invalid.",
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="data folder")
    parser.add_argument("--require-seg", action="store_true", help="a missing seg is an error")
    parser.add_argument("--quiet", "-q", action="store_true", help="only problems and summary")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    return parser


def run(args: argparse.Namespace) -> int:
    """0 if every case is valid, 1 otherwise (warnings allowed)."""
    from tqdm import tqdm

    from brats_utils.data.cases import select_cases
    from brats_utils.data.validation import has_errors, validate_cases

    check_input_folder("DATA_DIR", args.data_dir, "data folder")
    cases = select_cases(args.data_dir)
    n_invalid = n_warned = 0
    results = validate_cases(cases, require_seg=args.require_seg, workers=args.workers)
    # The bar goes to stderr and only on a terminal (disable=None); lines go to stdout.
    bar = tqdm(
        results,
        total=len(cases),
        unit="case",
        desc="checking",
        file=sys.stderr,
        disable=True if args.quiet else None,
    )
    for files, problems in bar:
        invalid = has_errors(problems)
        n_invalid += invalid
        n_warned += bool(problems) and not invalid
        if not problems and not args.quiet:
            tqdm.write(f"ok    {files.case_id}", file=sys.stdout)
        for problem in problems:
            tqdm.write(f"{'warn ' if problem.warning else 'error'} {problem}", file=sys.stdout)
    n_ok = len(cases) - n_invalid
    warned = f" ({n_warned} with warnings)" if n_warned else ""
    print(f"{len(cases)} cases, {n_ok} ok{warned}, {n_invalid} invalid")
    return 1 if n_invalid else 0
