"""``brats synth``: write realistic synthetic BraTS 2021 case folders (no TensorFlow import)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from brats_utils.cli.args import check_output_folder, non_negative_int, positive_int
from brats_utils.conventions import VOLUME_SHAPE
from brats_utils.errors import BratsError
from brats_utils.files import physical_memory

__all__ = ["add_parser", "run"]

#: Peak memory of ``synth`` per voxel of --shape: 31 bytes measured at 192 x 192 x 128 (max RSS).
BYTES_PER_VOXEL = 32


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
        type=int,
        nargs=3,
        default=list(VOLUME_SHAPE),
        metavar=("X", "Y", "Z"),
        help="volume size in voxels (default 240 240 155; smaller sizes scale the brain down)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    from brats_utils.data.synth import case_id_for, case_is_complete, write_synthetic_dataset

    if args.start + args.cases > 100000:
        raise BratsError(
            f"case indices must lie in 0..99999, got {args.start}..{args.start + args.cases - 1}"
        )
    if min(args.shape) < 16:
        raise BratsError(f"--shape sizes must be at least 16 voxels, got {args.shape}")
    needed, memory = math.prod(args.shape) * BYTES_PER_VOXEL, physical_memory()
    if memory is not None and needed > memory:
        raise BratsError(
            f"--shape {' '.join(map(str, args.shape))} needs about {needed / 2**30:.3g} GiB of "
            f"memory ({BYTES_PER_VOXEL} bytes per voxel), more than this machine's "
            f"{memory / 2**30:.3g} GiB"
        )
    check_output_folder("--out", args.out)
    existing = sum(
        case_is_complete(case_id_for(i), args.out)
        for i in range(args.start, args.start + args.cases)
    )
    kept = 0 if args.overwrite else existing
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
