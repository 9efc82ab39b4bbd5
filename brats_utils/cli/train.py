"""``brats train``: train one fusion experiment on a slice cache.

Example::

    brats train --experiment early2 --cache cache128 --out runs/early2
    brats train --experiment early2 --cache cache128 --out runs/early2 --epochs 20 --resume
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import positive_int
from brats_utils.errors import BratsError
from brats_utils.model.experiments import EXPERIMENTS

__all__ = ["add_parser", "run"]

LOSS_CHOICES = (
    "ce",
    "dice_ce",
)  # brats_utils.training.losses.LOSSES (not imported: it loads Keras)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``brats train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a fusion U-Net on a slice cache",
        description="Train one experiment (early4, mean4, early2) on a slice cache built by "
        "`brats preprocess`. Writes RUN_DIR/{model.keras (best validation loss), "
        "model_last.keras, history.csv, history.json, config.json, state.json}.",
    )
    parser.add_argument("--experiment", required=True, choices=sorted(EXPERIMENTS))
    parser.add_argument("--cache", required=True, type=Path, help="slice cache folder")
    parser.add_argument("--out", required=True, type=Path, help="run folder RUN_DIR")
    parser.add_argument(
        "--split",
        type=Path,
        help="split CSV (case,split). Default: split.csv in the data folder the cache was "
        "built from (recorded in the cache manifest), else CACHE_DIR/split.csv",
    )
    parser.add_argument("--epochs", type=positive_int, default=15, help="default 15")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="default 32")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, 1e-3")
    parser.add_argument("--loss", choices=LOSS_CHOICES, default="ce", help="default ce")
    parser.add_argument("--seed", type=int, default=0, help="random seed, default 0")
    parser.add_argument(
        "--empty-slice-fraction",
        type=_fraction,
        default=1.0,
        help="fraction of tumour-free training slices kept each epoch (default 1.0)",
    )
    parser.add_argument("--augment", action="store_true", help="random flips of training slices")
    parser.add_argument("--base-filters", type=positive_int, default=32, help="default 32")
    parser.add_argument("--batch-norm", action="store_true", help="batch norm after convs")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last saved epoch (same settings; "
        "--epochs may grow)",
    )
    parser.add_argument("--force", action="store_true", help="start over in a non-empty RUN_DIR")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    parser.add_argument(
        "--data-parallel", action="store_true", help="data parallel over all local devices"
    )
    parser.add_argument(
        "--max-cases", type=positive_int, help="use at most N cases per subset (smoke runs)"
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="loader threads")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``brats train``; returns 0 on success."""
    if not args.cache.is_dir():
        raise BratsError(f"cache folder not found: {args.cache} (run `brats preprocess` first)")
    from brats_utils.training.fit import train

    result = train(
        args.experiment,
        args.cache,
        args.out,
        split=args.split,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        loss=args.loss,
        seed=args.seed,
        empty_slice_fraction=args.empty_slice_fraction,
        augment=args.augment,
        base_filters=args.base_filters,
        batch_norm=args.batch_norm,
        resume=args.resume,
        force=args.force,
        mixed_precision=args.mixed_precision,
        data_parallel=args.data_parallel,
        max_cases=args.max_cases,
        workers=args.workers,
    )
    if result["history"]:
        last = result["history"][-1]
        shown = {k: round(v, 4) for k, v in last.items() if k.startswith("val_")}
        print(f"epoch {last['epoch']}: {shown}")
    print(f"run folder: {result['run_dir']}")
    return 0
