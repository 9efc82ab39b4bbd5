"""``brats evaluate``: BraTS region and lesion-wise metrics per case (no Keras)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from brats_utils.cli.args import (
    check_input_folder,
    check_output_file,
    check_output_folder,
    check_outside,
    non_negative_float,
    non_negative_int,
)
from brats_utils.cli.predict import add_split_arguments, split_case_ids, took
from brats_utils.evaluation.lesions import GLI_DILATION, GLI_MIN_VOLUME_MM3
from brats_utils.evaluation.surface import HD95_VARIANTS

__all__ = ["add_parser", "run", "summary_path"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions against reference segmentations (Dice, HD95, ...)",
        description="Write per case the legacy Dice, HD95 (mm), sensitivity, specificity and "
        "the BraTS 2023+ lesion-wise Dice, HD95, lesion counts of WT, TC, ET to --out, and "
        "their summary to <out stem>_summary.csv. A missing prediction scores Dice 0, HD95 "
        "373.13 (lesion-wise 374) and makes the exit status 1.",
    )
    parser.add_argument("--pred", type=Path, required=True, help="folder of predictions")
    parser.add_argument("--ref", type=Path, required=True, help="data folder with references")
    parser.add_argument("--out", type=Path, required=True, help="per-case CSV to write")
    parser.add_argument(
        "--error-maps", type=Path, metavar="DIR",
        help="write DIR/<case>_errors.nii.gz: TP/FP/FN voxels of WT, TC, ET (codes 1/2/3); "
        "maps already there are kept (a killed run resumes) unless --overwrite",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace --out and error maps")
    lesions = parser.add_argument_group(
        "lesion-wise metrics (BraTS 2023+)",
        "defaults: the adult glioma (GLI) sub-challenge; MEN: --lesion-dilation 1; "
        "MET: --lesion-dilation 1 --lesion-min-volume 2",
    )
    lesions.add_argument(
        "--lesion-dilation", type=non_negative_int, default=GLI_DILATION,
        help=f"dilations that merge nearby truth components (default {GLI_DILATION})",
    )  # fmt: skip
    lesions.add_argument(
        "--lesion-min-volume", type=non_negative_float, default=GLI_MIN_VOLUME_MM3,
        help=f"lesions of at most this many mm^3 are not scored (default {GLI_MIN_VOLUME_MM3:g})",
    )  # fmt: skip
    lesions.add_argument(
        "--lesion-hd95", choices=HD95_VARIANTS, default="max_directed",
        help="max_directed: larger directed 95th percentile (2023 tooling, default); "
        "pooled: both directions pooled (the legacy HD95)",
    )  # fmt: skip
    add_split_arguments(parser, "evaluate")
    return parser


def summary_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_summary.csv")


def run(args: argparse.Namespace) -> int:
    """0 if every reference case had a prediction, 1 otherwise."""
    import pandas as pd

    from brats_utils.evaluation.lesions import LesionRules
    from brats_utils.evaluation.volumes import evaluate_folder, summarize
    from brats_utils.files import remove_stale_temporaries, write_csv

    check_input_folder("--pred", args.pred, "folder of predictions")
    check_input_folder("--ref", args.ref, "data folder")
    for path in (args.out, summary_path(args.out)):
        check_output_file("--out", path, args.overwrite)
    if args.error_maps is not None:
        check_output_folder("--error-maps", args.error_maps)
        check_outside("--error-maps", args.error_maps, [args.pred], "--pred", inside=False)
        remove_stale_temporaries(args.error_maps)  # what a killed run left half-written
    case_ids = split_case_ids(args)
    rules = LesionRules(args.lesion_dilation, args.lesion_min_volume, args.lesion_hd95)
    started = time.monotonic()
    df = evaluate_folder(
        args.pred,
        args.ref,
        case_ids=case_ids,
        lesion_rules=rules,
        error_maps=args.error_maps,
        keep_maps=not args.overwrite,
    )
    summary = summarize(df)
    write_csv(df, args.out)
    write_csv(summary, summary_path(args.out), index=True)
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    n_ok = int((df["status"] == "ok").sum())
    print(
        f"{len(df)} cases scored ({n_ok} with prediction) -> {args.out}, "
        f"{summary_path(args.out)} {took(started, len(df))}"
    )
    return 1 if df.attrs.get("missing") else 0
