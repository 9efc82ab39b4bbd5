"""``brats evaluate``: BraTS region Dice/HD95/sensitivity/specificity per case (no Keras)."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.predict import add_split_arguments, split_case_ids

__all__ = ["add_parser", "run", "summary_path"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``brats evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions against reference segmentations (Dice, HD95, ...)",
        description="Match PRED_DIR/<case>.nii.gz to the reference cases of DATA_DIR by case "
        "id and write per case Dice, HD95 (mm), sensitivity and specificity of WT, TC and ET "
        "plus Dice of NCR and ED to --out, and mean/std/median/quartiles to "
        "<out stem>_summary.csv. Missing predictions count as failures (Dice 0, HD95 373.13); "
        "exits 1 if any is missing.",
    )
    parser.add_argument("--pred", type=Path, required=True, help="folder of predictions")
    parser.add_argument(
        "--ref", type=Path, required=True, help="data folder with reference segmentations"
    )
    parser.add_argument("--out", type=Path, required=True, help="per-case CSV to write")
    add_split_arguments(parser, "evaluate")
    return parser


def summary_path(out: Path) -> Path:
    """``metrics.csv`` -> ``metrics_summary.csv`` in the same folder."""
    return out.with_name(f"{out.stem}_summary.csv")


def run(args: argparse.Namespace) -> int:
    """Evaluate; 0 if every reference case had a prediction, 1 otherwise."""
    import pandas as pd

    from brats_utils.evaluation.volumes import evaluate_folder, summarize
    from brats_utils.files import write_csv

    df = evaluate_folder(args.pred, args.ref, case_ids=split_case_ids(args))
    summary = summarize(df)
    write_csv(df, args.out)
    write_csv(summary, summary_path(args.out), index=True)
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    n_ok = int((df["status"] == "ok").sum())
    print(
        f"{len(df)} cases scored ({n_ok} with prediction) -> {args.out}, {summary_path(args.out)}"
    )
    return 1 if df.attrs.get("missing") else 0
