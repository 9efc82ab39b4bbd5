"""Two models on the same cases: paired differences ``B - A``, bootstrap CI, tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from brats_utils.errors import BratsError
from brats_utils.evaluation.lesions import LESION_COLUMNS
from brats_utils.evaluation.volumes import METRIC_COLUMNS

__all__ = [
    "MIN_CASES",
    "TOO_FEW",
    "too_few",
    "COMPARISON_COLUMNS",
    "paired_cases",
    "bootstrap_mean_ci",
    "compare_tables",
]

#: Fewer cases than this: no confidence interval and no verdict, anywhere.
MIN_CASES = 5
#: ``favours`` below MIN_CASES: the tables' word for "no interval, no verdict".
TOO_FEW = f"n < {MIN_CASES}"


def too_few(n: int) -> str:
    """The sentence every text prints in place of an interval and a verdict below MIN_CASES."""
    return f"n = {n} < {MIN_CASES}: no interval, no verdict"


#: Metrics compared: every legacy region and label metric and the lesion-wise Dice and HD95.
COMPARED_METRICS: tuple[str, ...] = (
    *METRIC_COLUMNS[1:],
    *(c for c in LESION_COLUMNS if c.startswith(("lesion_dice", "lesion_hd95"))),
)
#: Columns of :func:`compare_tables`' result, one row per metric.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "n",
    "mean_a",
    "mean_b",
    "mean_difference",
    "ci_low",
    "ci_high",
    "favours",
    "wilcoxon_p",
    "sign_p",
    "b_better",
    "a_better",
    "ties",
)


def paired_cases(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables indexed by ``case``, in the same order; BratsError unless cases match."""
    indexed = []
    for name, table in (("A", a), ("B", b)):
        if "case" not in table.columns:
            raise BratsError(f"table {name} has no 'case' column (expected brats evaluate's CSV)")
        repeated = table["case"][table["case"].duplicated()].tolist()
        if repeated:
            raise BratsError(f"table {name} lists cases more than once: {repeated[:5]}")
        indexed.append(table.set_index("case"))
    only_a = sorted(set(indexed[0].index) - set(indexed[1].index))
    only_b = sorted(set(indexed[1].index) - set(indexed[0].index))
    if only_a or only_b:
        raise BratsError(
            "the two tables must score the same cases (a paired comparison); "
            f"only in A: {only_a[:5]}{' ...' if len(only_a) > 5 else ''}, "
            f"only in B: {only_b[:5]}{' ...' if len(only_b) > 5 else ''}"
        )
    order = sorted(indexed[0].index)
    return indexed[0].loc[order], indexed[1].loc[order]


def bootstrap_mean_ci(
    values: np.ndarray, *, resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Seeded percentile bootstrap CI of a mean; ``(nan, nan)`` below :data:`MIN_CASES`."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < MIN_CASES:
        return float("nan"), float("nan")
    result = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare_tables(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired comparison of two per-case tables, one row per metric: how many cases B / A does
    better on and ``favours`` ``"A"``, ``"B"``, ``"-"`` (the CI holds 0) or :data:`TOO_FEW`;
    a metric cell that is not a finite number (NaN, empty, text) is refused."""
    a, b = paired_cases(a, b)
    if metrics is None:
        metrics = [m for m in COMPARED_METRICS if m in a.columns and m in b.columns]
    missing = [m for m in metrics if m not in a.columns or m not in b.columns]
    if missing:
        raise BratsError(f"metrics {missing} are not in both tables")
    for name, table in (("A", a), ("B", b)):  # every pair or none: n is the same for all
        values = table[metrics].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        for row, column in np.argwhere(~np.isfinite(values)):  # the first such cell
            case, metric = table.index[row], metrics[column]
            raise BratsError(
                f"table {name}: case {case} has {table.at[case, metric]!r} in "
                f"column {metric}, not a finite number; score or drop that case"
            )
    rows = {}
    for metric in metrics:
        values_a = a[metric].to_numpy(dtype=np.float64)
        values_b = b[metric].to_numpy(dtype=np.float64)
        differences = values_b - values_a
        lower_is_better = "hd95" in metric
        better = -differences if lower_is_better else differences
        wins, losses = int(np.sum(better > 0)), int(np.sum(better < 0))
        low, high = bootstrap_mean_ci(differences, resamples=resamples, seed=seed)
        favours = TOO_FEW if len(differences) < MIN_CASES else "-"
        if low > 0 or high < 0:
            b_wins = (low > 0) != lower_is_better
            favours = "B" if b_wins else "A"
        rows[metric] = {
            "n": len(differences),
            "mean_a": float(values_a.mean()),
            "mean_b": float(values_b.mean()),
            "mean_difference": float(differences.mean()),
            "ci_low": low,
            "ci_high": high,
            "wilcoxon_p": float(stats.wilcoxon(differences).pvalue) if np.any(differences) else 1.0,
            # exact two-sided sign test, ties dropped
            "sign_p": float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0,
            "b_better": wins,
            "a_better": losses,
            "ties": int(np.sum(better == 0)),
            "favours": favours,
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COMPARISON_COLUMNS))
    table.index.name = "metric"
    return table
