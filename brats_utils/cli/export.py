"""``brats export``: predictions renamed and relabelled for a BraTS submission portal."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import check_input_folder, check_output_folder, check_outside

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="write predictions with a BraTS portal's file names and labels",
        description="Copy every PRED_DIR/<case>.nii.gz to OUT_DIR with the names and labels of "
        "a BraTS portal: 2023 (BraTS-GLI-NNNNN-TTT.nii.gz, ET 3) or 2021 "
        "(BraTS2021_NNNNN.nii.gz, ET 4); every file is checked and read back.",
    )
    parser.add_argument("--pred", type=Path, required=True, help="folder of predictions")
    parser.add_argument("--release", choices=("2023", "2021"), required=True, help="portal")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    return parser


def run(args: argparse.Namespace) -> int:
    check_input_folder("--pred", args.pred, "folder of predictions")
    check_output_folder("--out", args.out)
    check_outside("--out", args.out, [args.pred], "--pred")
    from brats_utils.data.export import export_predictions

    written = export_predictions(args.pred, args.out, args.release, overwrite=args.overwrite)
    print(f"{len(written)} predictions for the {args.release} portal -> {args.out}")
    return 0
