"""``brats train``: train one fusion experiment on a slice cache.

Example::

    brats train --experiment early2 --cache cache128 --out runs/early2
    brats train --experiment early2 --cache cache128 --out runs/early2 --epochs 20 --resume
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import (
    check_input_file,
    check_input_folder,
    check_output_folder,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
)
from brats_utils.errors import BratsError
from brats_utils.model.experiments import EXPERIMENTS
from brats_utils.training.settings import LOSSES, SELECTIONS, TrainSettings

__all__ = ["add_parser", "run", "settings_from_args"]

#: The defaults of every option: the one set of defaults, :class:`TrainSettings`.
DEFAULTS = TrainSettings()


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``brats train``; every default comes from :class:`TrainSettings`."""
    d, unet = DEFAULTS, DEFAULTS.unet
    parser = subparsers.add_parser(
        "train",
        help="train a fusion U-Net on a slice cache",
        description="Train one experiment (early4, mean4, early2) on a slice cache built by "
        "`brats preprocess`. Writes RUN_DIR/{model.keras (best by --select), "
        "model_last.keras, history.csv, history.json, config.json, state.json}. The defaults "
        "are the seed's settings.",
    )
    parser.add_argument("--experiment", required=True, choices=sorted(EXPERIMENTS))
    parser.add_argument("--cache", required=True, type=Path, help="slice cache folder")
    parser.add_argument("--out", required=True, type=Path, help="run folder RUN_DIR")
    parser.add_argument(
        "--split",
        type=Path,
        help="split CSV (case,split). Default: split.csv in the data folder the cache was "
        "built from (recorded in the cache manifest)",
    )
    parser.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"default {d.epochs}")
    parser.add_argument(
        "--batch-size", type=positive_int, default=d.batch_size, help=f"default {d.batch_size}"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=d.learning_rate,
        help=f"Adam learning rate, default {d.learning_rate:g}",
    )  # fmt: skip
    parser.add_argument("--loss", choices=LOSSES, default=d.loss, help=f"default {d.loss}")
    parser.add_argument(
        "--seed", type=non_negative_int, default=d.seed, help=f"random seed, default {d.seed}"
    )
    parser.add_argument(
        "--empty-slice-fraction",
        type=fraction,
        default=d.empty_slice_fraction,
        help="fraction of tumour-free training slices kept each epoch "
        f"(default {d.empty_slice_fraction})",
    )
    parser.add_argument("--augment", action="store_true", help="random flips of training slices")
    parser.add_argument(
        "--select", choices=SELECTIONS, default=d.select,
        help="what picks model.keras: lowest validation loss (default, the seed's) or highest "
        "mean validation region Dice WT/TC/ET",
    )  # fmt: skip
    parser.add_argument(
        "--base-filters", type=positive_int, default=unet.base_filters,
        help=f"filters of the first U-Net level, default {unet.base_filters}",
    )  # fmt: skip
    parser.add_argument("--batch-norm", action="store_true", help="batch norm after convs")
    used_folder = parser.add_mutually_exclusive_group()  # argparse refuses both
    used_folder.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last saved epoch, exactly as if it had not "
        "stopped (same settings; --epochs may grow)",
    )
    used_folder.add_argument(
        "--force", action="store_true", help="start over in a non-empty RUN_DIR"
    )
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    parser.add_argument(
        "--data-parallel", action="store_true", help="data parallel over all local devices"
    )
    parser.add_argument(
        "--max-cases", type=positive_int, help="use at most N cases per subset (smoke runs)"
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="loader threads")
    return parser


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """The :class:`TrainSettings` of parsed ``brats train`` arguments."""
    values = {name: getattr(args, name) for name in TrainSettings.names() if hasattr(args, name)}
    values["learning_rate"] = args.lr
    try:
        return TrainSettings.from_parameters(values)
    except ValueError as exc:
        raise BratsError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    """Run ``brats train``; returns 0 on success."""
    from brats_utils.preprocessing.cache import open_cache
    from brats_utils.training.run_folder import check_run_dir

    # Checked before importing Keras (train() checks them again, for every caller).
    check_input_folder("--cache", args.cache, "slice cache folder (from `brats preprocess`)")
    open_cache(args.cache)  # a folder that is not a slice cache
    check_output_folder("--out", args.out)
    check_run_dir(args.out, resume=args.resume, force=args.force)
    if args.split is not None:
        check_input_file("--split", args.split, "split CSV")
    settings = settings_from_args(args)
    from brats_utils.training.train import train

    result = train(
        args.experiment,
        args.cache,
        args.out,
        settings,
        split=args.split,
        resume=args.resume,
        force=args.force,
        workers=args.workers,
    )
    if result["history"]:
        last = result["history"][-1]
        shown = {k: round(v, 4) for k, v in last.items() if k.startswith("val_")}
        print(f"epoch {last['epoch']}: {shown}")
    print(f"run folder: {result['run_dir']}")
    return 0
