"""``brats compare``: two models on the same cases, paired per-case differences (no Keras)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import (
    check_input_folder,
    check_output_file,
    non_negative_int,
    positive_int,
)
from brats_utils.errors import BratsError

__all__ = ["add_parser", "run"]

#: Drawn by ``--figure``, those present in both tables.
_FIGURE_METRICS = tuple(f"{k}_{r}" for k in ("dice", "lesion_dice") for r in ("WT", "TC", "ET"))


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="compare two models case by case (paired differences, bootstrap CI, tests)",
        description="Compare model B against model A on the same cases: for every region "
        "metric (legacy and lesion-wise) the mean per-case difference B - A with a seeded "
        "bootstrap 95% confidence interval, the Wilcoxon signed-rank and sign tests, and how "
        "many cases each model does better on. A and B are per-case CSVs of `brats evaluate`, "
        "or prediction folders scored against --ref. Refuses case sets that differ.",
    )
    parser.add_argument("--a", type=Path, required=True, help="model A: metrics CSV or folder")
    parser.add_argument("--b", type=Path, required=True, help="model B: metrics CSV or folder")
    parser.add_argument(
        "--ref", type=Path, help="data folder with reference segmentations (for folders)"
    )
    parser.add_argument("--out", type=Path, required=True, help="comparison CSV to write")
    parser.add_argument("--figure", type=Path, help="also draw the paired cases (PNG)")
    parser.add_argument(
        "--labels", nargs=2, default=("A", "B"), metavar=("A", "B"), help="names of the models"
    )
    parser.add_argument(
        "--resamples", type=positive_int, default=10_000, help="bootstrap resamples (10000)"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="bootstrap seed (default 0)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return parser


def _check_figure_format(path: Path) -> None:
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        raise BratsError(
            f"--figure {path}: cannot draw a {path.suffix or 'file without extension'!r}; "
            f"use one of {', '.join('.' + f for f in sorted(formats))}"
        )


def _table(path: Path, ref: Path | None, which: str):
    import pandas as pd

    from brats_utils.evaluation.volumes import evaluate_folder

    if path.is_dir():
        if ref is None:
            raise BratsError(f"--{which} {path} is a prediction folder: pass --ref DATA_DIR too")
        return evaluate_folder(path, ref)
    if not path.is_file():
        raise BratsError(f"--{which}: no metrics CSV or prediction folder at {path}")
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BratsError(f"--{which} {path}: not a readable CSV ({exc})") from exc


def run(args: argparse.Namespace) -> int:
    for option, out in (("--out", args.out), ("--figure", args.figure)):
        if out is not None:
            check_output_file(option, out, args.overwrite)
    if args.figure is not None:
        _check_figure_format(args.figure)
    if args.ref is not None:
        check_input_folder("--ref", args.ref, "data folder")
    import pandas as pd

    from brats_utils.evaluation.compare import TOO_FEW, compare_tables, too_few
    from brats_utils.files import write_csv

    a, b = _table(args.a, args.ref, "a"), _table(args.b, args.ref, "b")
    table = compare_tables(a, b, resamples=args.resamples, seed=args.seed)
    if args.figure is not None:
        from brats_utils.viz.evaluation_figures import plot_paired_cases

        name_a, name_b = args.labels
        shown = [m for m in _FIGURE_METRICS if m in a.columns and m in b.columns]
        if not shown:
            raise BratsError(f"no region Dice column to draw; expected some of {_FIGURE_METRICS}")
        plot_paired_cases(
            a,
            b,
            metrics=shown,
            labels=(name_a, name_b),
            title=f"{name_b} vs {name_a}",
            out_path=args.figure,
        )
    write_csv(table, args.out, index=True)
    with pd.option_context("display.width", 140, "display.max_rows", 100):
        shown = table[["n", "mean_a", "mean_b", "mean_difference", "ci_low", "ci_high",
                       "wilcoxon_p", "favours"]]  # fmt: skip
        print(shown.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    print(f"B = {args.labels[1]} minus A = {args.labels[0]}, {len(a)} paired cases -> {args.out}")
    if (table["favours"] == TOO_FEW).any():
        print(f"{TOO_FEW}: {too_few(len(a))}")
    return 0
