"""``brats split``: write the train/validation/test split CSV of a data folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import check_input_folder, check_output_file, non_negative_int
from brats_utils.errors import BratsError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "split",
        help="write the train/validation/test split CSV",
        description="Split the labelled cases of DATA_DIR into train/validation/test as "
        "1012/126/113 (the BraTS 2021 split), reproducibly from the seed; write case,split. "
        "An existing different split is kept unless --force.",
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="data folder")
    parser.add_argument("--out", type=Path, help="CSV to write (default DATA_DIR/split.csv)")
    parser.add_argument("--seed", type=non_negative_int, default=2021, help="default 2021")
    parser.add_argument("--force", action="store_true", help="replace an existing, different split")
    return parser


def run(args: argparse.Namespace) -> int:
    from brats_utils.data.split import (
        SPLIT_FILE,
        count_splits,
        load_split,
        save_split,
        split_data_folder,
    )

    check_input_folder("DATA_DIR", args.data_dir, "data folder")
    out = args.out if args.out is not None else args.data_dir / SPLIT_FILE
    check_output_file("--out", out, overwrite=True)  # an existing split is compared below
    split, unlabelled = split_data_folder(args.data_dir, seed=args.seed)
    if out.exists() and not args.force:
        if load_split(out) == split:
            print(f"{out} already holds this split (seed {args.seed}); unchanged")
            return 0
        raise BratsError(f"{out} already holds a different split; pass --force to replace it")
    save_split(split, out)
    counts = ", ".join(f"{part} {n}" for part, n in count_splits(split).items())
    print(f"{counts} ({len(split)} cases, seed {args.seed}) -> {out}")
    if unlabelled:
        print(f"left out {len(unlabelled)} cases without segmentation")
    return 0
