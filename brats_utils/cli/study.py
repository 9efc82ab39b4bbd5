"""``brats study``: k-fold cross-validation of the study's configurations, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import (
    base_filters,
    check_input_folder,
    check_output_folder,
    non_negative_int,
    positive_int,
    unet_size,
)
from brats_utils.errors import BratsError
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.study.protocol import CONFIGS, StudyScale
from brats_utils.training.settings import TrainSettings

__all__ = ["add_parser", "run"]


def _configs(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown configurations {unknown or text!r}; expected some of {', '.join(CONFIGS)}"
        )
    return names


def _folds(text: str) -> list[int]:
    try:
        folds = [int(x) for x in text.split(",")]
    except ValueError:
        folds = []
    if not folds or min(folds) < 0:
        raise argparse.ArgumentTypeError(f"expected fold numbers like 0 or 0,2, got {text!r}")
    return folds


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    scale = StudyScale()
    parser = subparsers.add_parser(
        "study",
        help="cross-validate the improvements over the baseline on labelled cases",
        description="k-fold cross-validation over the labelled cases of DATA_DIR (validation "
        "cases from each fold's training cases): every configuration is trained and scored "
        "on the same folds; results/ holds the per-case table, a summary with 95%% bootstrap "
        f"CIs and paired comparisons. Resumable. Configurations: {', '.join(CONFIGS)}.",
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="labelled cases")
    parser.add_argument("--out", type=Path, required=True, help="study folder")
    parser.add_argument("--configs", type=_configs, help="comma-separated (default: all)")
    parser.add_argument("--folds", type=positive_int, default=4, help="default 4")
    parser.add_argument("--validation", type=positive_int, default=2, help="per fold (2)")
    parser.add_argument("--seed", type=non_negative_int, default=2021, help="default 2021")
    parser.add_argument(
        "--only-folds", type=_folds,
        help="run only these folds, 0-based (e.g. 0 for a smoke run)",
    )  # fmt: skip
    baseline = TrainSettings()  # the baseline recipe's sizes, for a GPU
    scale_options = (
        ("--size", unet_size, scale.size, "slice size", PreprocessSettings().size),
        ("--base-filters", base_filters, scale.base_filters, "U-Net width",
         baseline.unet.base_filters),
        ("--epochs", positive_int, scale.epochs, "epochs of every training", baseline.epochs),
        ("--batch-size", positive_int, scale.batch_size, "slices per batch", baseline.batch_size),
    )  # fmt: skip
    for option, kind, default, what, gpu in scale_options:
        parser.add_argument(
            option, type=kind, default=default,
            help=f"{what} (CPU default {default}; the baseline's {gpu} on a GPU)",
        )  # fmt: skip
    parser.add_argument("--report", action="store_true", help="only write results/")
    return parser


def run(args: argparse.Namespace) -> int:
    from brats_utils.study.report import write_report

    check_output_folder("--out", args.out)
    if args.report:
        check_input_folder("--out", args.out, "study folder (from `brats study`)")
    else:
        check_input_folder("DATA_DIR", args.data_dir, "folder of labelled cases")
        if args.only_folds and max(args.only_folds) >= args.folds:
            raise BratsError(f"--only-folds {args.only_folds}: the folds are 0..{args.folds - 1}")
        from brats_utils.study.runner import run_study

        scale = StudyScale(args.size, args.base_filters, args.epochs, args.batch_size)
        run_study(args.data_dir, args.out, args.configs, scale=scale, folds=args.folds,
                  validation=args.validation, seed=args.seed, only_folds=args.only_folds,
                  say=lambda line: print(line, flush=True))  # fmt: skip
    written = write_report(args.out)
    for name, path in written.items():
        print(f"{name}: {path}")
    if "summary_md" in written:
        print(written["summary_md"].read_text(encoding="utf-8"))
    return 0
