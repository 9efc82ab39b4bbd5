"""The study's results: per-case table, summary with confidence intervals, paired comparisons.

Only configurations scored on **every** fold enter the summary and the comparisons (a
partial study reports what is complete and lists the rest). Every interval is a seeded
percentile bootstrap over cases (:func:`brats_utils.evaluation.compare.bootstrap_mean_ci`),
every comparison is paired on the same test cases (:func:`compare_tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from brats_utils.errors import BratsError
from brats_utils.evaluation.compare import bootstrap_mean_ci, compare_tables
from brats_utils.files import atomic_path, read_json, write_csv
from brats_utils.study.runner import STUDY_FILE, score_path

__all__ = ["SUMMARY_METRICS", "collect_scores", "summarize_study", "write_report"]

#: The metrics of the summary table: legacy and lesion-wise region Dice, legacy HD95.
SUMMARY_METRICS: tuple[str, ...] = (
    "dice_WT",
    "dice_TC",
    "dice_ET",
    "lesion_dice_WT",
    "lesion_dice_TC",
    "lesion_dice_ET",
    "hd95_WT",
    "hd95_TC",
    "hd95_ET",
)


def collect_scores(study_dir: Path | str) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """Every score table of the study in one frame, and the folds missing per configuration.

    Returns:
        ``(scores, missing)``: per-case rows (``config``, ``fold``, ``case``, metrics) of the
        configurations scored on every fold; ``{config: [missing folds]}`` of the others.

    Raises:
        BratsError: no study in ``study_dir``.
    """
    study_dir = Path(study_dir)
    protocol = read_json(study_dir / STUDY_FILE, "study protocol")
    folds = range(len(protocol["folds"]))
    tables, missing = [], {}
    for config in protocol["configs"]:
        absent = [f for f in folds if not score_path(study_dir, f, config).is_file()]
        if absent:
            missing[config] = absent
            continue
        tables += [pd.read_csv(score_path(study_dir, f, config)) for f in folds]
    scores = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return scores, missing


def summarize_study(scores: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Mean and 95% bootstrap CI of :data:`SUMMARY_METRICS` per configuration.

    Returns:
        One row per configuration (study order): ``n`` cases, then ``<metric>``,
        ``<metric>_low``, ``<metric>_high`` for each metric.
    """
    rows = {}
    for config, table in scores.groupby("config", sort=False):
        row: dict[str, Any] = {"n": len(table)}
        for metric in SUMMARY_METRICS:
            values = table[metric].to_numpy(dtype=float)
            low, high = bootstrap_mean_ci(values, seed=seed)
            row.update({metric: values.mean(), f"{metric}_low": low, f"{metric}_high": high})
        rows[config] = row
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "config"
    return summary


def comparisons(scores: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Every configuration against ``baseline``, paired on cases: ``compare_tables`` rows.

    Returns:
        Rows ``(config, metric)`` for :data:`SUMMARY_METRICS`: the mean difference
        ``config - baseline``, its CI, the paired tests, and which one the CI favours
        (``B``: the configuration, ``A``: the baseline, ``-``: the CI holds 0).
    """
    if baseline not in set(scores["config"]):
        raise BratsError(f"the baseline {baseline!r} is not scored on every fold yet")
    base = scores[scores["config"] == baseline]
    frames = []
    for config, table in scores.groupby("config", sort=False):
        if config == baseline:
            continue
        compared = compare_tables(base, table, list(SUMMARY_METRICS))
        compared.insert(0, "config", config)
        frames.append(compared.reset_index())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _markdown(summary: pd.DataFrame, missing: dict[str, list[int]]) -> str:
    header = "| config | n | " + " | ".join(SUMMARY_METRICS) + " |"
    lines = [header, "|" + " --- |" * (len(SUMMARY_METRICS) + 2)]
    for config, row in summary.iterrows():
        cells = []
        for metric in SUMMARY_METRICS:
            digits = 1 if metric.startswith("hd95") else 3
            low, high = row[f"{metric}_low"], row[f"{metric}_high"]
            cells.append(f"{row[metric]:.{digits}f} ({low:.{digits}f}..{high:.{digits}f})")
        lines.append(f"| {config} | {int(row['n'])} | " + " | ".join(cells) + " |")
    for config, folds in missing.items():
        lines.append(f"\n{config}: not complete (folds {folds} not scored yet)")
    return "\n".join(lines) + "\n"


def write_report(study_dir: Path | str) -> dict[str, Path]:
    """Write ``results/`` of the study: per_case.csv, summary.csv/.md, compare_vs_<base>.csv.

    Returns:
        ``{name: path}`` of the files written (the comparisons only for scored baselines).
    """
    study_dir = Path(study_dir)
    scores, missing = collect_scores(study_dir)
    out = study_dir / "results"
    written: dict[str, Path] = {}
    if scores.empty:
        return written
    summary = summarize_study(scores)
    written["per_case"] = write_csv(scores, out / "per_case.csv")
    written["summary"] = write_csv(summary, out / "summary.csv", index=True)
    path = out / "summary.md"
    with atomic_path(path, suffix=".md") as tmp:
        tmp.write_text(_markdown(summary, missing), encoding="utf-8")
    written["summary_md"] = path
    for baseline in ("seed", "current"):
        if baseline in summary.index and len(summary) > 1:
            written[f"vs_{baseline}"] = write_csv(
                comparisons(scores, baseline), out / f"compare_vs_{baseline}.csv"
            )
    return written
