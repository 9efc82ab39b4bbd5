""" "What we saw": each notebook's closing paragraph, from its run's numbers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from brats_utils.conventions import MODALITY_NAMES
from brats_utils.evaluation.compare import MIN_CASES, TOO_FEW, bootstrap_mean_ci, too_few

__all__ = [
    "exploration_findings",
    "preprocessing_findings",
    "variant_findings",
    "ablation_findings",
    "contrast_findings",
    "paired_findings",
    "results_findings",
    "study_findings",
]

_LABELS = {"dice_necrotic": "NCR", "dice_edema": "ED", "dice_enhancing": "ET"}


def mean_with_ci(values, digits: int = 2) -> str:
    """``"0.81 (95% CI 0.74-0.87, n = 12)"``: the mean with its bootstrap interval."""
    values = np.asarray(pd.Series(values).dropna(), dtype=np.float64)
    if values.size == 0:
        return "no cases"
    mean = f"{values.mean():.{digits}f}"
    if values.size < MIN_CASES:
        return f"{mean} ({too_few(values.size)})"
    low, high = bootstrap_mean_ci(values)
    return f"{mean} (95% CI {low:.{digits}f}-{high:.{digits}f}, n = {values.size})"


def region_means(frame: pd.DataFrame, digits: int = 2) -> str:
    """``"WT 0.81 (95% CI ...); TC ...; ET ..."``; below MIN_CASES the rule is said once."""
    columns = {r: frame[f"dice_{r}"].dropna() for r in ("WT", "TC", "ET")}
    n = max(len(v) for v in columns.values())
    if 0 < n < MIN_CASES:
        means = ", ".join(f"{r} {v.mean():.{digits}f}" for r, v in columns.items())
        return f"{means} ({too_few(n)})"
    return "; ".join(f"{r} {mean_with_ci(v, digits)}" for r, v in columns.items())


def _tissue_means(histograms) -> pd.DataFrame:
    centres = (histograms.edges[:-1] + histograms.edges[1:]) / 2
    return pd.DataFrame(
        {
            modality: {
                tissue: float((centres * counts).sum() / counts.sum()) if counts.sum() else np.nan
                for tissue, counts in by_tissue.items()
            }
            for modality, by_tissue in histograms.counts.items()
        }
    ).T


def exploration_findings(volumes: pd.DataFrame, histograms, split_counts: Mapping[str, int]) -> str:
    """Notebook 01: the split, tumour sizes (``volumes``: mL per case), modality histograms."""
    lines = [
        f"* **{len(volumes)} cases**, split "
        + " / ".join(f"{n} {s}" for s, n in split_counts.items())
        + "."
    ]
    wt = volumes["WT"] if "WT" in volumes else volumes[["NCR", "ED", "ET"]].sum(axis=1)
    q1, median, q3 = np.percentile(wt, [25, 50, 75])
    share = volumes[["NCR", "ED", "ET"]].sum() / max(float(wt.sum()), 1e-9)
    no_et = int((volumes["ET"] <= 0).sum())
    lines.append(
        f"* Whole tumour: median **{median:.0f} ml** (quartiles {q1:.0f}-{q3:.0f} ml, range "
        f"{wt.min():.0f}-{wt.max():.0f}); of all tumour voxels {100 * share['ED']:.0f}% are "
        f"edema, {100 * share['ET']:.0f}% enhancing, {100 * share['NCR']:.0f}% necrotic core; "
        f"{no_et} case(s) without ET (scored 1 only if the prediction has none either)."
    )
    means = _tissue_means(histograms)
    contrast = means[["NCR", "ED", "ET"]].sub(means["brain"], axis=0)  # vs normal brain
    name = {m: MODALITY_NAMES.get(m, m) for m in means.index}
    brightest_ed = contrast["ED"].idxmax()
    brightest_et = contrast["ET"].idxmax()
    darkest_ncr = contrast["NCR"].idxmin()
    t1ce = f"; T1ce, where contrast agent marks it in patients, {contrast.loc['t1ce', 'ET']:+.2f}"
    t1ce = "" if brightest_et == "t1ce" else t1ce
    lines.append(
        f"* Against normal brain (mean z-score difference over {histograms.n_cases} cases): "
        f"edema stands out most on **{name[brightest_ed]}** "
        f"({contrast.loc[brightest_ed, 'ED']:+.2f}), enhancing tumour on "
        f"**{name[brightest_et]}** ({contrast.loc[brightest_et, 'ET']:+.2f}{t1ce}), necrosis is "
        f"darkest on **{name[darkest_ncr]}** ({contrast.loc[darkest_ncr, 'NCR']:+.2f})."
    )
    return "\n".join(lines)


def preprocessing_findings(cache, stats: pd.DataFrame) -> str:
    """Notebook 02: what the cache holds and how rare each class is in it."""
    frequency = stats[["background", "NCR", "ED", "ET"]].sum()
    share = frequency / frequency.sum()
    rarest = share[["NCR", "ED", "ET"]].idxmin()
    settings = cache.settings
    with_tumour = stats["tumour_cases"]
    busiest = int(with_tumour.idxmax())
    return "\n".join(
        [
            f"* {len(cache.case_ids)} cases cached as {len(stats)} slices each at "
            f"{settings.size} x {settings.size} (axial {stats.index.min()}-{stats.index.max()}).",
            f"* Pixels: background {100 * share['background']:.1f}%, edema "
            f"{100 * share['ED']:.2f}%, enhancing {100 * share['ET']:.2f}%, necrotic "
            f"{100 * share['NCR']:.2f}%: the rarest class, {rarest}, is 1 pixel in "
            f"{1 / max(share[rarest], 1e-12):,.0f}. Pixel accuracy would be "
            f"{100 * share['background']:.1f}% for a model that never finds tumour, which is "
            "why these notebooks report Dice per label.",
            f"* On average {100 * with_tumour.mean():.0f}% of the cases hold tumour at a given "
            f"kept slice position; most at axial {busiest} "
            f"({100 * with_tumour.max():.0f}% of cases).",
        ]
    )


def variant_findings(
    record: Mapping, region_metrics: Mapping[str, pd.DataFrame], baseline_dice=None
) -> str:
    """Notebooks 03-05: training, slice label Dice against ``baseline_dice``, whole volumes."""
    lines = [
        f"* Trained {record['epochs']} epoch(s) in {record['train_seconds']:.0f} s; "
        f"`model.keras` is epoch {record['best_epoch']} (by `{record['select']}`)."
    ]
    for split, metrics in record["slice_metrics"].items():
        labels = ", ".join(f"{n} {metrics[k]:.2f}" for k, n in _LABELS.items())
        baseline = ""
        if baseline_dice and split == "validation":
            baseline = "; the baseline reported " + ", ".join(
                f"{n} {baseline_dice[k]:.2f}" for k, n in _LABELS.items() if k in baseline_dice
            )
        lines.append(
            f"* {split.capitalize()} slices ({metrics['n_slices']} of "
            f"{len(region_metrics[split])} case(s)): label Dice {labels}{baseline}."
        )
    for split, frame in region_metrics.items():
        lines.append(f"* Whole {split} volumes, region Dice: {region_means(frame)}.")
    if any(MIN_CASES <= len(f) < 30 for f in region_metrics.values()):
        lines.append(
            "* With this few cases the intervals are wide: differences between the variants "
            "smaller than them are not evidence (notebook 06 pairs the cases)."
        )
    return "\n".join(lines)


def ablation_findings(table: pd.DataFrame) -> str:
    """Notebook 03: which blanked modality costs the most mean slice Dice."""
    drops = table["drop"].drop("all")
    worst, least = drops.idxmax(), drops.idxmin()
    if drops[worst] < 0.005:
        return (
            f"* Intact input: mean slice Dice {table.loc['all', 'dice']:.2f}. No blanked "
            "modality lowers it by 0.005 or more: this model relies on none of them alone (or "
            "has learned too little to need any)."
        )
    per_label = table.loc[worst, list(_LABELS)] - table.loc["all", list(_LABELS)]
    hit = per_label.idxmin()
    return (
        f"* Intact input: mean slice Dice {table.loc['all', 'dice']:.2f}. Blanking "
        f"**{worst.removeprefix('without ')}** costs the most ({drops[worst]:+.2f} lost, "
        f"{_LABELS[hit]} Dice {per_label[hit]:+.2f}); blanking "
        f"{least.removeprefix('without ')} the least ({drops[least]:+.2f}). One trained model "
        "on the validation slices: a second seed would show how much of the order is noise."
    )


def contrast_findings(table: pd.DataFrame) -> str:
    """Notebook 04: how much of the best single modality's contrast the mean keeps."""
    singles = table.drop(index="mean")
    parts = []
    for contrast in (c for c in table.columns if c != "cases"):
        if singles[contrast].isna().all():  # a tissue absent from these cases
            parts.append(f"{contrast}: not measured (a tissue is absent from these cases)")
            continue
        best = singles[contrast].idxmax()
        kept = table.loc["mean", contrast] / singles.loc[best, contrast]
        parts.append(
            f"{contrast}: mean d {table.loc['mean', contrast]:.2f} against {best}'s "
            f"{singles.loc[best, contrast]:.2f} (**{100 * kept:.0f}%** kept)"
        )
    return (
        f"* Over {int(table['cases'].iloc[0])} case(s), the mean image keeps this much of the "
        "best single modality's contrast: " + "; ".join(parts) + ". Averaging adds up contrasts "
        "that point the same way in every modality and cancels those that point opposite ways."
    )


def _difference(row) -> str:
    n = int(row["n"])
    interval = f"95% CI {row['ci_low']:+.3f}..{row['ci_high']:+.3f}, n = {n}"
    return (
        f"{row['mean_difference']:+.3f} ({too_few(n) if row['favours'] == TOO_FEW else interval})"
    )


def _verdict(row, a: str, b: str) -> str:
    return {"A": f"{a} is better", "B": f"{b} is better", "-": "the interval holds 0"}.get(
        row["favours"], ""
    )


def paired_findings(comparison: pd.DataFrame, a: str, b: str) -> str:
    """A paired comparison of ``b`` against ``a`` (``compare_tables`` of B - A)."""
    if (comparison["favours"] == TOO_FEW).all():
        differences = ", ".join(f"{m} {d:+.3f}" for m, d in comparison["mean_difference"].items())
        return f"* {b} - {a}: {differences} ({too_few(int(comparison['n'].iloc[0]))})."
    lines = []
    for metric, row in comparison.iterrows():
        verdict = _verdict(row, a, b)
        lines.append(
            f"* {metric}: {b} - {a} = {_difference(row)}"
            + (f": {verdict}" if verdict else "")
            + f" ({row['b_better']} case(s) better, {row['a_better']} worse)."
        )
    return "\n".join(lines)


def results_findings(
    region_table: pd.DataFrame,
    per_case: Mapping[str, pd.DataFrame],
    paired_table: pd.DataFrame,
    baseline: str,
    failures: pd.DataFrame,
    split: str,
) -> str:
    """Notebook 06: the best variant with its interval, the paired verdicts, the worst case,
    and the conclusion this sample allows. ``region_table`` is indexed by ``(split,
    experiment)``, ``paired_table`` by ``(experiment, metric)``; ``failures`` worst first."""
    top = region_table.loc[split]["dice_WT"].idxmax()
    cases = per_case[top]
    lines = [
        f"- On the {len(cases)} {split} case(s), **{top}** has the highest mean WT Dice; its "
        f"region Dice: {region_means(cases, digits=3)}."
    ]
    small = len(cases) < MIN_CASES
    clear, judged = [], 0
    for (variant, metric), row in paired_table.iterrows():
        if metric not in ("dice_WT", "dice_TC", "dice_ET") or small:
            continue
        verdict = _verdict(row, baseline, variant)
        judged += bool(verdict)
        if row["favours"] in ("A", "B"):
            clear.append(f"{verdict} on {metric}")
        lines.append(
            f"- {variant} - {baseline}, {metric}: {_difference(row)}"
            + (f": {verdict}." if verdict else ".")
        )
    if small and len(paired_table):
        for variant, rows in paired_table.groupby(level=0, sort=False):
            values = rows.droplevel(0)["mean_difference"]
            shown = " / ".join(f"{values[f'dice_{r}']:+.3f}" for r in ("WT", "TC", "ET"))
            lines.append(f"- {variant} - {baseline}, region Dice WT / TC / ET: {shown}.")
    worst = failures.iloc[0]
    median_volume = float(failures["volume_ml"].median())
    lines.append(
        f"- The worst {split} case for ET is {worst['case']} (Dice {worst['dice']:.2f}, ET "
        f"{worst['volume_ml']:.1f} ml against a median of {median_volume:.1f} ml over these "
        f"cases; {int(worst['fn_lesions'])} missed and {int(worst['fp_lesions'])} false "
        "lesion(s))."
    )
    if clear:
        conclusion = "; ".join(clear) + " (95% intervals that exclude 0); the rest cannot be "
        conclusion += "told apart on these cases."
    else:
        why = f"no paired difference against {baseline} excludes 0 on these {len(cases)} cases"
        why = why if judged else too_few(len(cases))
        conclusion = f"{why}: this sample cannot rank the variants, whatever their means say."
    lines.append(f"- **Conclusion**: {conclusion}")
    return "\n".join(lines)


def study_findings(
    compared: Mapping[str, pd.DataFrame], summary: pd.DataFrame, missing: Mapping
) -> str:
    """Notebook 07: each configuration's verdicts per baseline, the best one, what is missing."""
    lines = []
    for baseline, table in compared.items():
        for config, rows in table.groupby("config", sort=False):
            rows = rows.set_index("metric")
            n = int(rows["n"].iloc[0])
            delta = rows.loc["lesion_dice_ET", "mean_difference"]
            if n < MIN_CASES:
                lines.append(
                    f"- **{config}** vs {baseline}: lesion-wise ET {delta:+.3f} ({too_few(n)})."
                )
                continue
            better = [m for m in rows.index if rows.loc[m, "favours"] == "B"]
            worse = [m for m in rows.index if rows.loc[m, "favours"] == "A"]
            lines.append(
                f"- **{config}** vs {baseline} ({n} paired cases): better on "
                f"{', '.join(better) or 'nothing the intervals show'}; worse on "
                f"{', '.join(worse) or 'nothing the intervals show'} (lesion-wise ET "
                f"{delta:+.3f})."
            )
    if len(summary):
        top = summary["dice_ET"].idxmax()
        row = summary.loc[top]
        lines.append(
            f"- The highest mean ET Dice over these {int(row['n'])} test cases is **{top}**: "
            f"region Dice WT / TC / ET {row['dice_WT']:.3f} / {row['dice_TC']:.3f} / "
            f"{row['dice_ET']:.3f}, lesion-wise {row['lesion_dice_WT']:.3f} / "
            f"{row['lesion_dice_TC']:.3f} / {row['lesion_dice_ET']:.3f}; a higher mean alone "
            "is not a verdict (the paired lines above are)."
        )
    if missing:
        lines.append(f"- Not complete yet (rerun to resume): {dict(missing)}.")
    return "\n".join(lines) or "No configuration is scored on every fold yet."
