"""The study's results: per-case table, summary with bootstrap CIs, comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from brats_utils.conventions import REGIONS
from brats_utils.errors import BratsError
from brats_utils.evaluation.compare import bootstrap_mean_ci, compare_tables
from brats_utils.files import atomic_path, read_json, write_csv
from brats_utils.study.runner import STUDY_FILE, score_path

__all__ = ["SUMMARY_METRICS", "collect_scores", "summarize_study", "write_report"]

SUMMARY_METRICS: tuple[str, ...] = tuple(
    f"{metric}_{region}" for metric in ("dice", "lesion_dice", "hd95") for region in REGIONS
)


def collect_scores(study_dir: Path | str) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """``(scores, missing)``: rows of the configurations scored on every fold, others' folds."""
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
    """One row per configuration: ``n``, then ``<metric>``, ``_low``, ``_high`` (95% CI)."""
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
    """``compare_tables`` rows ``(config, metric)`` of every configuration against ``baseline``."""
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
    """Write ``results/`` (per_case.csv, summary.csv/.md, compare_vs_<base>.csv): {name: path}."""
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
    for baseline in ("baseline", "current", "all"):  # "all": the best recipe
        if baseline in summary.index and len(summary) > 1:
            written[f"vs_{baseline}"] = write_csv(
                comparisons(scores, baseline), out / f"compare_vs_{baseline}.csv"
            )
    return written
