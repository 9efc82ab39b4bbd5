"""``brats synth``: write realistic synthetic BraTS 2021 case folders (no TensorFlow import)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import check_output_folder, non_negative_int, positive_int, volume_side
from brats_utils.conventions import VOLUME_SHAPE
from brats_utils.errors import BratsError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic BraTS 2021-like cases (NIfTI, 240x240x155)",
        description="Write N synthetic BraTS 2021 case folders; complete ones are skipped unless "
        "--overwrite. Case i depends only on the seed and i.",
    )
    parser.add_argument("--out", type=Path, required=True, help="data folder to write into")
    parser.add_argument("--cases", type=positive_int, required=True, help="number of cases")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="default 0")
    parser.add_argument("--start", type=non_negative_int, default=0, help="index of the first case")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate existing cases")
    parser.add_argument(
        "--shape",
        type=volume_side,
        nargs=3,
        default=list(VOLUME_SHAPE),
        metavar=("X", "Y", "Z"),
        help="volume size, 16 to 512 voxels (default 240 240 155; smaller ones scale the brain)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    from brats_utils.data.synth import case_id_for, case_is_complete, write_synthetic_dataset

    if args.start + args.cases > 100000:
        raise BratsError(
            f"case indices must lie in 0..99999, got {args.start}..{args.start + args.cases - 1}"
        )
    check_output_folder("--out", args.out)
    indices = range(args.start, args.start + args.cases)
    kept = 0 if args.overwrite else sum(case_is_complete(case_id_for(i), args.out) for i in indices)
    folders = write_synthetic_dataset(
        args.out,
        args.cases,
        args.seed,
        start=args.start,
        workers=args.workers,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        shape=tuple(args.shape),
    )
    print(
        f"{len(folders) - kept} synthetic cases written, {kept} already there "
        f"(seed {args.seed}, shape {tuple(args.shape)}) -> {args.out}"
    )
    return 0
