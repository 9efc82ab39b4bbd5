"""The variant notebooks' shared API and their own questions; computed findings; HTML pages."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from brats_utils.errors import BratsError
from brats_utils.evaluation.compare import MIN_CASES, TOO_FEW, too_few
from brats_utils.notebooks.findings import (
    ablation_findings,
    contrast_findings,
    exploration_findings,
    mean_with_ci,
    paired_findings,
    preprocessing_findings,
    variant_findings,
)
from brats_utils.notebooks.html import render_html
from brats_utils.notebooks.profile import time_estimate
from brats_utils.notebooks.runner import Profile
from brats_utils.notebooks.support import variant_record
from brats_utils.notebooks.variant import (
    channel_contrast,
    modality_ablation,
    predict_examples,
    variant_cases,
)
from brats_utils.viz.data_figures import intensity_histograms, slice_label_stats
from brats_utils.viz.result_figures import plot_channel_contrast, plot_modality_ablation


class FakeCache:
    """Two cases of 3 slices, 16 x 16, 4 channels; ET (class 3) bright on channel 1 only,
    edema (2) bright on channel 3 and dark on channel 0."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.case_ids = ["a", "b"]
        self._labels, self._images = {}, {}
        for case in self.case_ids:
            labels = np.zeros((3, 16, 16), dtype=np.uint8)
            labels[:, 4:12, 4:12] = 2
            labels[:, 6:10, 6:10] = 3
            labels[:, 7:9, 7:9] = 1
            images = rng.normal(0, 0.3, (3, 16, 16, 4)).astype(np.float32)
            images[..., 1] += 3.0 * (labels == 3)
            images[..., 3] += 2.0 * (labels == 2)
            images[..., 0] -= 2.0 * (labels == 2)
            images[:, 0, :, :] = 0.0  # a row of background
            self._labels[case], self._images[case] = labels, images

    def images(self, case_id):
        return self._images[case_id]

    def labels(self, case_id):
        return self._labels[case_id]

    def has_labels(self, case_id):
        return True

    def slice_indices(self, case_id):
        return 10 + np.arange(3)  # the settings' slice_start

    @property
    def settings(self):
        from brats_utils.preprocessing.settings import PreprocessSettings

        return PreprocessSettings(size=16, slice_start=10, slice_stop=13)


class ThresholdModel:
    """Predicts ET where channel 1 is bright, edema where channel 3 is, else background."""

    def predict(self, x, batch_size=None, verbose=0):
        classes = np.zeros(x.shape[:3], dtype=np.int64)
        classes[x[..., 3] > 1.0] = 2
        classes[x[..., 1] > 1.5] = 3
        return np.eye(4, dtype=np.float32)[classes]


def test_variant_cases_are_the_scored_splits_at_most_max_cases_each():
    split = {"c": "test", "a": "validation", "b": "validation", "d": "train"}
    assert variant_cases(split) == {"validation": ["a", "b"], "test": ["c"]}
    assert variant_cases(split, max_cases=1) == {"validation": ["a"], "test": ["c"]}
    assert variant_cases({"a": "train", "b": "test"}) == {"test": ["b"]}


def test_predict_examples_feed_the_model_its_channels_and_decode_its_scores():
    images, truth, predicted, titles = predict_examples(
        ThresholdModel(), FakeCache(), ["a", "b"], ("t1", "t1ce", "t2", "flair"), 2
    )
    assert images.shape == (2, 16, 16, 4) and titles == ["a, axial 10", "b, axial 10"]
    assert (predicted[truth == 3] == 3).all() and (predicted[truth == 0] == 0).all()


def test_variant_findings_read_the_saved_record():
    from brats_utils.model.experiments import EXPERIMENTS

    per_case = pd.DataFrame({"dice_WT": [0.8, 0.6], "dice_TC": [0.5, 0.7], "dice_ET": [0.4, 0.6]})
    slices = {"dice_necrotic": 0.5, "dice_edema": 0.7, "dice_enhancing": 0.6, "n_slices": 30}
    record = variant_record(
        EXPERIMENTS["early4"],
        "03",
        {"test": slices},
        {"test": per_case},
        epochs=3,
        best_epoch=2,
        select="val_loss",
        train_seconds=12.0,
    )
    text = variant_findings(record, {"test": per_case}, {"dice_necrotic": 0.61})
    assert "Trained 3 epoch(s) in 12 s; `model.keras` is epoch 2 (by `val_loss`)" in text
    assert "Test slices (30 of 2 case(s))" in text and "WT 0.70" in text
    assert too_few(2) in text and "intervals are wide" not in text  # below MIN_CASES: no CI


def test_blanking_the_channel_a_model_uses_costs_dice_and_the_others_do_not():
    channels = ("t1", "t1ce", "t2", "flair")
    table = modality_ablation(ThresholdModel(), FakeCache(), ["a", "b"], channels)
    assert list(table.index) == ["all", "without T1", "without T1ce", "without T2", "without FLAIR"]
    assert table.loc["all", "dice_enhancing"] > 0.9
    assert table.loc["without T1ce", "dice_enhancing"] == 0.0  # ET lives on T1ce here
    assert table.loc["without FLAIR", "dice_edema"] < table.loc["all", "dice_edema"]
    assert table.loc["without T1", "drop"] == pytest.approx(0.0)
    assert table.loc["without T2", "drop"] == pytest.approx(0.0)
    text = ablation_findings(table)
    assert "Blanking **T1ce** costs the most" in text
    assert f"{table.loc['without T1ce', 'drop']:+.2f}" in text
    flat = table.assign(drop=0.0)
    assert "relies on none of them alone" in ablation_findings(flat)
    axis = plot_modality_ablation(table).axes[0]  # a group of 4 bars per input
    assert [t.get_text() for t in axis.get_xticklabels()] == list(table.index)
    assert len(axis.patches) == 4 * len(table)
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["NCR", "ED", "ET", "mean"]


def test_channel_contrast_measures_each_tissue_pair_and_the_mean_image():
    table = channel_contrast(FakeCache(), ["a", "b"])
    assert list(table.index) == ["T1", "T1ce", "T2", "FLAIR", "mean"]
    assert (table["cases"] == 2).all()
    # ET is bright on T1ce only: strongest there; the mean keeps less of it
    assert table["enhancing vs necrotic"].idxmax() == "T1ce"
    assert table.loc["mean", "enhancing vs necrotic"] < table.loc["T1ce", "enhancing vs necrotic"]
    # edema is bright on FLAIR and dark on T1: opposite signs cancel in the mean
    assert table.loc["mean", "edema vs core"] < table.loc["FLAIR", "edema vs core"]
    text = contrast_findings(table)
    assert "against T1ce's" in text and "kept" in text
    table["edema vs core"] = np.nan  # no case with both tissues: said, not a crash
    assert "edema vs core: not measured" in contrast_findings(table)
    axis = plot_channel_contrast(table).axes[0]  # a group per tissue pair, a bar per channel
    contrasts = [c for c in table.columns if c != "cases"]
    assert [t.get_text() for t in axis.get_xticklabels()] == contrasts
    assert len(axis.patches) == len(contrasts) * len(table)
    assert [t.get_text() for t in axis.get_legend().get_texts()] == list(table.index)
    with pytest.raises(ValueError, match="at least one case"):
        channel_contrast(FakeCache(), [])


def test_paired_findings_read_the_paired_comparison():
    from brats_utils.evaluation.compare import compare_tables

    b = pd.DataFrame({"case": list("uvwxyz"), "dice_WT": [0.8, 0.7, 0.9, 0.6, 0.5, 0.8],
                      "hd95_WT": [5, 6, 4, 5, 6, 4]})  # fmt: skip
    a = b.assign(dice_WT=b["dice_WT"] - 0.1, hd95_WT=b["hd95_WT"] + 1)
    comparison = compare_tables(a, b, ["dice_WT", "hd95_WT"])
    assert comparison.loc["dice_WT", "mean_difference"] == pytest.approx(0.1)
    assert comparison.loc["dice_WT", "b_better"] == 6
    text = paired_findings(comparison, "early4", "early2")
    assert "dice_WT: early2 - early4 = +0.100" in text and "early2 is better" in text
    small = comparison.assign(favours=TOO_FEW, ci_low=np.nan, ci_high=np.nan, n=3)
    text = paired_findings(small, "a", "b")
    assert f"({too_few(3)})" in text and "CI" not in text and "is better" not in text
    assert text.count(too_few(3)) == 1 and "dice_WT +0.100" in text  # the rule said once


def test_study_findings_judge_only_samples_of_the_minimum_size():
    from brats_utils.notebooks.findings import study_findings

    rows = []
    for n, favours in ((MIN_CASES, "B"), (MIN_CASES - 1, TOO_FEW)):
        for metric in ("dice_ET", "lesion_dice_ET"):
            rows.append({"config": f"n{n}", "metric": metric, "n": n, "favours": favours,
                         "mean_difference": 0.1})  # fmt: skip
    summary = pd.DataFrame(
        {"n": [8], "dice_WT": [0.8], "dice_TC": [0.7], "dice_ET": [0.6], "lesion_dice_WT": [0.7],
         "lesion_dice_TC": [0.6], "lesion_dice_ET": [0.5]}, index=["n5"]
    )  # fmt: skip
    text = study_findings({"baseline": pd.DataFrame(rows)}, summary, {})
    assert f"**n{MIN_CASES}** vs baseline ({MIN_CASES} paired cases): better on dice_ET" in text
    few = too_few(MIN_CASES - 1)
    assert f"**n{MIN_CASES - 1}** vs baseline: lesion-wise ET +0.100 ({few})" in text
    assert "target" not in text and "is not a verdict" in text


def test_mean_with_ci_brackets_the_mean():
    text = mean_with_ci([0.5, 0.6, 0.65, 0.7, 0.8])
    mean, low, high = 0.65, *map(float, text.split("CI ")[1].split(",")[0].split("-"))
    assert text.startswith("0.65 (95% CI") and low <= mean <= high and "n = 5" in text
    assert mean_with_ci([]) == "no cases"
    assert mean_with_ci([0.5, 0.7]) == f"0.60 ({too_few(2)})"


def test_exploration_and_preprocessing_findings_come_from_the_tables():
    cache = FakeCache()
    volumes = pd.DataFrame({"NCR": [1.0, 2.0], "ED": [30.0, 50.0], "ET": [5.0, 0.0]})
    volumes["WT"] = volumes.sum(axis=1)
    images = [np.moveaxis(cache.images(c), 0, 2) for c in cache.case_ids]  # (X, Y, Z, C)
    labels = [np.moveaxis(cache.labels(c), 0, 2) for c in cache.case_ids]
    histograms = intensity_histograms(zip(images, labels, strict=True), normalize=False)
    text = exploration_findings(volumes, histograms, {"train": 1, "validation": 1})
    assert "**2 cases**" in text and "1 case(s) without ET" in text
    assert "edema stands out most on **FLAIR**" in text
    assert "enhancing tumour on **T1ce** (+" in text and "where contrast agent" not in text
    stats = slice_label_stats(cache)
    text = preprocessing_findings(cache, stats)
    assert "2 cases cached as 3 slices each at 16 x 16" in text
    assert "the rarest class, NCR" in text


def _executed_notebook(path, image_b64: str) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(fig)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": image_b64})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · A title"), cell]
    nbformat.write(nb, path)


def test_render_html_embeds_the_figures_and_writes_an_index(tmp_path):
    import base64
    import io

    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buffer, format="png")
    image = base64.b64encode(buffer.getvalue()).decode()
    notebooks = tmp_path / "run" / "notebooks"
    notebooks.mkdir(parents=True)
    _executed_notebook(notebooks / "01_exploration.ipynb", image)
    nb = nbformat.read(notebooks / "01_exploration.ipynb", 4)
    project = Path(render_html.__code__.co_filename).resolve().parents[2]
    printed = f"cases in /x/brats2018_sample, figures in {tmp_path / 'run'}/figures, {project}/a"
    printed += "; z-score $\\tilde x = (x - \\mu_B)/\\sigma_B$, `$PWD` kept"
    nb.cells.append(nbformat.v4.new_markdown_cell(printed))
    nbformat.write(nb, notebooks / "01_exploration.ipynb")
    summary = {"profile": "smoke", "data_dir": "/x/brats2018_sample", "seconds":
               {"01_exploration": 90.0}, "total_seconds": 90.0}  # fmt: skip
    (notebooks / "run_summary.json").write_text(json.dumps(summary))
    pages = render_html(notebooks, tmp_path / "html")
    assert [p.name for p in pages] == ["notebook.css", "01_exploration.html", "index.html"]
    page = pages[1].read_text()
    assert f"data:image/png;base64,{image[:40]}" in page and "A title" in page
    # no folder of the machine that ran it: relative to the project, or DATA_DIR / OUT_DIR
    assert "cases in DATA_DIR, figures in OUT_DIR/figures, a" in page and str(tmp_path) not in page
    # formulas drawn offline as SVG (no MathJax needed); code left alone
    assert "data:image/svg+xml;base64," in page and "$\\tilde" not in page and "$PWD" in page
    assert "<style" not in page and 'href="notebook.css"' in page  # the styles once, shared
    assert ".jp-Notebook" in pages[0].read_text()
    index = pages[2].read_text()
    assert 'href="01_exploration.html"' in index and "(1.5 min)" in index
    assert "data brats2018_sample" in index and "/x/" not in index  # (not on this machine)
    assert not list((tmp_path / "html").glob(".*"))  # no temporaries left
    with pytest.raises(BratsError, match="no executed notebook"):
        render_html(tmp_path / "html", tmp_path / "other")


def test_time_estimate_reads_the_measured_minutes(monkeypatch):
    profile = Profile("smoke", "", 24, 0, {}, {"01_exploration": 0.5, "03_x": 4.0}, "on a CPU")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("os.getloadavg", lambda: (0.2, 0.2, 0.2))
    assert time_estimate(profile, "03_x") == (
        "time: about 4.0 min (all notebooks: 4 min) on an idle machine, measured on a CPU"
    )
    monkeypatch.setattr("os.getloadavg", lambda: (5.0, 5.0, 5.0))
    assert time_estimate(profile, "03_x").endswith("busy now (5.0 processes running on 2 cores)")
    assert "not measured" in time_estimate(profile, "07_y")


def test_results_findings_state_the_conclusion_this_sample_allows():
    from brats_utils.evaluation.compare import compare_tables
    from brats_utils.notebooks.findings import results_findings

    rng = np.random.default_rng(0)
    dice = {f"dice_{r}": rng.uniform(0.5, 0.8, 8) for r in ("WT", "TC", "ET")}
    base = pd.DataFrame({"case": [f"c{i}" for i in range(8)], **dice})
    better = base.assign(dice_WT=base["dice_WT"] + 0.1)  # clearly better on WT only
    per_case = {"early4": base, "early2": better}
    region_table = pd.concat(
        {"test": pd.DataFrame({k: v.drop(columns="case").mean() for k, v in per_case.items()}).T}
    )
    paired = pd.concat({"early2": compare_tables(base, better)})
    failures = pd.DataFrame({"case": ["c3", "c1"], "dice": [0.1, 0.4], "volume_ml": [0.5, 9.0],
                             "fn_lesions": [2, 0], "fp_lesions": [1, 0]})  # fmt: skip
    text = results_findings(region_table, per_case, paired, "early4", failures, "test")
    assert "**early2** has the highest mean WT Dice" in text
    assert "early2 is better on dice_WT" in text and "dice_TC: +0.000" in text
    assert "ET 0.5 ml against a median of 4.8 ml" in text and "2 missed and 1 false" in text
    same = pd.concat({"early2": compare_tables(base, base)})
    text = results_findings(region_table, per_case, same, "early4", failures, "test")
    assert "no paired difference against early4 excludes 0" in text
    few = {k: v.iloc[: MIN_CASES - 1] for k, v in per_case.items()}
    paired = pd.concat({"early2": compare_tables(few["early4"], few["early2"])})
    text = results_findings(region_table, few, paired, "early4", failures, "test")
    # one rule: no interval, no verdict, and a conclusion that says why
    assert "CI" not in text and "is better" not in text and "early2 - early4, region Dice" in text
    assert text.count(too_few(MIN_CASES - 1)) == 2  # once for the means, once to conclude


def test_every_notebook_has_the_same_setup_cell_and_it_says_where_to_open_it(tmp_path):
    import os
    import subprocess
    import sys

    from brats_utils.notebooks.runner import NOTEBOOK_DIR, NOTEBOOKS

    setups = set()
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        assert nb.cells[2].source.startswith("# Setup."), name  # right after the parameters
        setups.add(nb.cells[2].source)
    assert len(setups) == 1
    # Without site-packages (nor PYTHONPATH) brats_utils is missing, as on a fresh Colab
    # runtime; outside a clone the cell stops with a message instead of installing anything.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-S", "-c", setups.pop()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "open this notebook in the notebooks/ folder" in done.stderr


def test_a_partial_run_updates_the_summary_of_the_folder(tmp_path):
    from brats_utils.notebooks.runner import NotebookRun, write_summary

    mean4 = "04_unet_mean_fusion_4mod"
    first = NotebookRun("smoke", tmp_path / "data", tmp_path,
                        {"01_exploration": tmp_path / "a", mean4: tmp_path / "b"},
                        {"01_exploration": 10.0, mean4: 100.0})  # fmt: skip
    (tmp_path / "notebooks").mkdir()
    write_summary(first, {})
    again = NotebookRun("smoke", tmp_path / "data", tmp_path,
                        {"04_unet_mean_fusion_4mod": tmp_path / "b"},
                        {"04_unet_mean_fusion_4mod": 90.0})  # fmt: skip
    write_summary(again, {})
    summary = json.loads((tmp_path / "notebooks" / "run_summary.json").read_text())
    assert summary["seconds"] == {"01_exploration": 10.0, "04_unet_mean_fusion_4mod": 90.0}
    assert summary["total_seconds"] == 100.0
    assert list(summary["executed"]) == list(summary["seconds"])
    other = NotebookRun("tiny", tmp_path / "data", tmp_path, {}, {"06_results": 5.0})
    write_summary(other, {})  # another profile: a new summary
    summary = json.loads((tmp_path / "notebooks" / "run_summary.json").read_text())
    assert summary["seconds"] == {"06_results": 5.0}
