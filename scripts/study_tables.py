"""Markdown tables of a `brats study` folder, for README and docs/real_data_results.md.

Usage::

    python scripts/study_tables.py studies/cpu [REFERENCE]

Prints the summary (mean over the cross-validated test cases, configurations scored on every
fold) and the paired differences against ``current`` (or REFERENCE: ``baseline``, ``all``)
with their 95% bootstrap CIs, bold where the interval excludes 0. Everything is read from
``STUDY/results/`` (``brats study --report`` writes it); the differences are recomputed from
its per-case table, so REFERENCE may be any configuration.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from brats_utils.study.report import comparisons

METRICS = ("dice_WT", "dice_TC", "dice_ET", "lesion_dice_WT", "lesion_dice_TC", "lesion_dice_ET")
HD95 = ("hd95_WT", "hd95_TC", "hd95_ET")


_GROUPS = ((METRICS[:3], 3), (METRICS[3:], 3), (HD95, 1))


def _cells(row: pd.Series, names, digits: int) -> str:
    return " / ".join(f"{row[m]:.{digits}f}" for m in names)


def summary_table(results: Path) -> str:
    summary = pd.read_csv(results / "summary.csv", index_col=0)
    rows = [
        "| configuration | cases | region Dice WT / TC / ET | lesion-wise Dice WT / TC / ET "
        "| HD95 WT / TC / ET (mm) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for config, r in summary.iterrows():
        dice, lesion, hd95 = [_cells(r, names, digits) for names, digits in _GROUPS]
        rows.append(f"| {config} | {int(r['n'])} | {dice} | {lesion} | {hd95} |")
    return "\n".join(rows)


def difference_table(results: Path, baseline: str = "current") -> str:
    """Paired differences of every configuration minus ``baseline`` (any scored configuration)."""
    scores = pd.read_csv(results / "per_case.csv")
    compared = comparisons(scores, baseline)
    names = METRICS + HD95
    rows = [
        f"| minus `{baseline}` (paired) | " + " | ".join(names) + " |",
        "|" + " --- |" * (len(names) + 1),
    ]
    for config, group in compared.groupby("config", sort=False):
        group = group.set_index("metric")
        cells = []
        for metric in names:
            x = group.loc[metric]
            bold = "**" if x["favours"] in ("A", "B") else ""
            d = 1 if metric in HD95 else 3
            diff, low, high = x["mean_difference"], x["ci_low"], x["ci_high"]
            cells.append(f"{bold}{diff:+.{d}f}{bold} ({low:+.{d}f}..{high:+.{d}f})")
        rows.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    results = Path(sys.argv[1]) / "results"
    if not (results / "summary.csv").is_file():
        sys.exit(f"no {results}/summary.csv: run `brats study DATA --out STUDY --report` first")
    print(summary_table(results))
    print()
    print(difference_table(results, sys.argv[2] if len(sys.argv) > 2 else "current"))
