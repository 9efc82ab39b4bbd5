""""What we saw": each notebook's closing paragraph, written from the numbers it computed.

Every sentence is made from a table or result of the run that shows it, so the text cannot
go stale when the data, the profile or the code change. Means of few cases come with a
seeded bootstrap 95% confidence interval. No Keras import.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from brats_utils.conventions import MODALITY_NAMES
from brats_utils.evaluation.compare import bootstrap_mean_ci

__all__ = [
    "mean_with_ci",
    "exploration_findings",
    "preprocessing_findings",
    "variant_findings",
    "ablation_findings",
    "contrast_findings",
    "paired_findings",
    "results_findings",
]

_LABELS = {"dice_necrotic": "NCR", "dice_edema": "ED", "dice_enhancing": "ET"}


def mean_with_ci(values, digits: int = 2) -> str:
    """``"0.81 (95% CI 0.74-0.87, n = 12)"``: the mean with its bootstrap interval."""
    values = np.asarray(pd.Series(values).dropna(), dtype=np.float64)
    if values.size == 0:
        return "no cases"
    if values.size < 3:
        return f"{values.mean():.{digits}f} (n = {values.size}, too few cases for an interval)"
    low, high = bootstrap_mean_ci(values)
    mean = f"{values.mean():.{digits}f}"
    return f"{mean} (95% CI {low:.{digits}f}-{high:.{digits}f}, n = {values.size})"


def _tissue_means(histograms) -> pd.DataFrame:
    """Mean z-score per modality (rows) and tissue (columns) from binned counts."""
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


def exploration_findings(
    volumes: pd.DataFrame, histograms, split_counts: Mapping[str, int]
) -> str:
    """Notebook 01: the split, the tumour sizes, and which modality shows which tissue.

    Args:
        volumes: :func:`~brats_utils.notebooks.support.label_volume_table` (ml per case).
        histograms: :class:`~brats_utils.viz.data_figures.IntensityHistograms` (normalised).
        split_counts: cases per split.
    """
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
    lines.append(
        f"* Against normal brain (mean z-score difference over {histograms.n_cases} cases): "
        f"edema stands out most on **{name[brightest_ed]}** "
        f"({contrast.loc[brightest_ed, 'ED']:+.2f}), enhancing tumour on "
        f"**{name[brightest_et]}** ({contrast.loc[brightest_et, 'ET']:+.2f}), necrosis is "
        f"darkest on **{name[darkest_ncr]}** ({contrast.loc[darkest_ncr, 'NCR']:+.2f})."
    )
    return "\n".join(lines)


def preprocessing_findings(cache, stats: pd.DataFrame) -> str:
    """Notebook 02: what the cache holds and how rare each class is in it.

    Args:
        cache: the open slice cache.
        stats: :func:`~brats_utils.viz.data_figures.slice_label_stats`.
    """
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
    record: Mapping, region_metrics: Mapping[str, pd.DataFrame], seed_dice=None
) -> str:
    """Notebooks 03-05: training, slice label Dice against the seed's, whole-volume Dice.

    Args:
        record: the notebook's ``NN_metrics.json`` record
            (:func:`~brats_utils.notebooks.support.variant_record`, with ``epochs``,
            ``best_epoch``, ``select`` and ``train_seconds``).
        region_metrics: ``{split: per-case DataFrame}`` of the whole volumes.
        seed_dice: the seed notebook's validation label Dice of this variant, if reported.
    """
    lines = []
    if record.get("best_epoch") is not None:
        lines.append(
            f"* Trained {record['epochs']} epoch(s) in {record['train_seconds']:.0f} s; "
            f"`model.keras` is epoch {record['best_epoch']} (by `{record['select']}`)."
        )
    for split, metrics in record["slice_metrics"].items():
        labels = ", ".join(f"{n} {metrics[k]:.2f}" for k, n in _LABELS.items())
        seed = ""
        if seed_dice and split == "validation":
            seed = "; the seed reported " + ", ".join(
                f"{n} {seed_dice[k]:.2f}" for k, n in _LABELS.items() if k in seed_dice
            )
        lines.append(
            f"* {split.capitalize()} slices ({metrics['n_slices']} of "
            f"{len(region_metrics[split])} case(s)): label Dice {labels}{seed}."
        )
    for split, frame in region_metrics.items():
        regions = "; ".join(f"{r} {mean_with_ci(frame[f'dice_{r}'])}" for r in ("WT", "TC", "ET"))
        lines.append(f"* Whole {split} volumes, region Dice: {regions}.")
    if any(len(f) < 30 for f in region_metrics.values()):
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


def paired_findings(comparison: pd.DataFrame, a: str, b: str) -> str:
    """A paired comparison of ``b`` against ``a`` (``compare_tables`` of B - A), per metric."""
    lines = []
    for metric, row in comparison.iterrows():
        verdict = {"A": f"favours {a}", "B": f"favours {b}", "-": "the interval holds 0"}
        if row["n"] < 5:
            verdict = dict.fromkeys(verdict, "too few cases to tell")
        lines.append(
            f"* {metric}: {b} - {a} = {row['mean_difference']:+.3f} (95% CI "
            f"{row['ci_low']:+.3f} to {row['ci_high']:+.3f}; {row['b_better']} case(s) better, "
            f"{row['a_better']} worse, n = {row['n']}): {verdict[row['favours']]}."
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
    and the conclusion this sample allows.

    Args:
        region_table: mean region metrics indexed by ``(split, experiment)``.
        per_case: ``{experiment: per-case table}`` of ``split``.
        paired_table: ``compare_tables`` of each variant against ``baseline``, indexed by
            ``(experiment, metric)``.
        baseline: the experiment the others are compared with.
        failures: :func:`~brats_utils.evaluation.failures.failure_table` of the best variant
            for ET (worst first).
        split: the split shown.
    """
    means = region_table.loc[split]
    top = means["dice_WT"].idxmax()
    cases = per_case[top]
    lines = [
        f"- On the {len(cases)} {split} case(s), **{top}** has the highest mean WT Dice; its "
        "region Dice: "
        + "; ".join(f"{r} {mean_with_ci(cases[f'dice_{r}'], 3)}" for r in ("WT", "TC", "ET"))
        + "."
    ]
    clear = []
    for (variant, metric), row in paired_table.iterrows():
        if metric not in ("dice_WT", "dice_TC", "dice_ET"):
            continue
        if row["n"] < 5:
            verdict = "too few cases to tell"
        else:
            verdict = {"B": f"{variant} is better", "A": f"{baseline} is better",
                       "-": "the interval holds 0"}[row["favours"]]  # fmt: skip
            if row["favours"] != "-":
                clear.append(f"{verdict} on {metric}")
        lines.append(
            f"- {variant} - {baseline}, {metric}: {row['mean_difference']:+.3f} (95% CI "
            f"{row['ci_low']:+.3f}..{row['ci_high']:+.3f}, {int(row['n'])} cases): {verdict}."
        )
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
        conclusion = (
            f"no paired difference against {baseline} excludes 0 on these {len(cases)} cases: "
            "this sample cannot rank the variants, whatever their means say."
        )
    lines.append(f"- **Conclusion**: {conclusion}")
    return "\n".join(lines)
