"""brats compare: paired per-case differences, bootstrap CIs, sign and Wilcoxon tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brats_utils.cli.main import main
from brats_utils.errors import BratsError
from brats_utils.evaluation.compare import (
    COMPARISON_COLUMNS,
    MIN_CASES,
    TOO_FEW,
    bootstrap_mean_ci,
    compare_tables,
    paired_cases,
    too_few,
)


def _tables(n=8):
    cases = [f"BraTS2021_{i:05d}" for i in range(n)]
    rng = np.random.default_rng(0)
    dice_a = rng.uniform(0.5, 0.8, n)
    a = pd.DataFrame({"case": cases, "dice_WT": dice_a, "hd95_WT": rng.uniform(5, 20, n)})
    b = a.copy()
    b["dice_WT"] = dice_a + 0.1  # B better on every case
    b["hd95_WT"] = a["hd95_WT"] - 2.0  # and closer on every case
    return a, b.iloc[::-1].reset_index(drop=True)  # another row order: paired by case id


def test_paired_cases_pairs_by_case_and_refuses_other_sets():
    a, b = _tables()
    pa, pb = paired_cases(a, b)
    assert list(pa.index) == list(pb.index) == sorted(a["case"])
    with pytest.raises(BratsError, match=r"only in A: \['BraTS2021_00007'\]"):
        paired_cases(a, b[b["case"] != "BraTS2021_00007"])
    with pytest.raises(BratsError, match="more than once"):
        paired_cases(pd.concat([a, a.iloc[:1]]), b)


def _hand_written_bootstrap(values, resamples=10_000, seed=0, level=0.95):
    """The percentile bootstrap this project used before scipy's, kept as the reference."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    return tuple(np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))


@pytest.mark.parametrize("n", [5, 12, 40])
def test_scipy_bootstrap_equals_the_hand_written_percentile_bootstrap(n):
    values = np.random.default_rng(n).normal(size=n)
    for seed in (0, 7):
        # same draws, same quantiles; only the summation order of a mean may differ by an ulp
        expected = _hand_written_bootstrap(values, seed=seed)
        assert bootstrap_mean_ci(values, seed=seed) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_interval():
    assert bootstrap_mean_ci(np.full(5, 0.25)) == (0.25, 0.25)
    low, high = bootstrap_mean_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), seed=1)
    assert 1.0 <= low < 3.0 < high <= 5.0
    assert bootstrap_mean_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), seed=1) == (low, high)


def test_no_interval_below_the_minimum_number_of_cases():
    assert np.isnan(bootstrap_mean_ci(np.ones(MIN_CASES - 1))).all()


def test_compare_tables_says_which_model_the_difference_favours():
    a, b = _tables()
    table = compare_tables(a, b, resamples=2000)
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    dice, hd = table.loc["dice_WT"], table.loc["hd95_WT"]
    assert dice["mean_difference"] == pytest.approx(0.1)
    assert dice["ci_low"] == pytest.approx(0.1) and dice["ci_high"] == pytest.approx(0.1)
    assert (dice["b_better"], dice["a_better"], dice["favours"]) == (8, 0, "B")
    assert hd["mean_difference"] == pytest.approx(-2.0) and hd["favours"] == "B"
    assert dice["sign_p"] == pytest.approx(2 * 0.5**8)
    assert dice["wilcoxon_p"] < 0.01
    same = compare_tables(a, a, resamples=100)
    assert (same["favours"] == "-").all() and (same["wilcoxon_p"] == 1.0).all()
    assert (same["sign_p"] == 1.0).all()  # only ties: the sign test has nothing to count


def test_compare_tables_gives_no_interval_and_no_verdict_below_the_minimum():
    a, b = _tables(MIN_CASES - 1)  # B better on every case, but too few cases to say so
    table = compare_tables(a, b, resamples=200)
    assert table["ci_low"].isna().all() and table["ci_high"].isna().all()
    assert (table["favours"] == TOO_FEW).all()
    assert (compare_tables(*_tables(MIN_CASES), resamples=200)["favours"] == "B").all()


def test_compare_cli_says_the_small_sample_rule_once(tmp_path, capsys):
    a, b = _tables(MIN_CASES - 1)
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    args = ["compare", "--a", str(tmp_path / "a.csv"), "--b", str(tmp_path / "b.csv")]
    assert main([*args, "--out", str(tmp_path / "c.csv"), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert out.count(too_few(MIN_CASES - 1)) == 1 and "nan" not in out


def test_compare_cli(tmp_path, capsys):
    a, b = _tables()
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    out, figure = tmp_path / "cmp.csv", tmp_path / "cmp.png"
    args = ["compare", "--a", str(tmp_path / "a.csv"), "--b", str(tmp_path / "b.csv")]
    args += ["--out", str(out), "--figure", str(figure), "--labels", "early4", "early2"]
    assert main([*args, "--resamples", "500"]) == 0
    table = pd.read_csv(out, index_col=0)
    assert table.loc["dice_WT", "favours"] == "B" and figure.stat().st_size > 0
    assert "B = early2 minus A = early4, 8 paired cases" in capsys.readouterr().out
    assert main(args) == 2  # outputs exist: not replaced without --overwrite
    assert "exists; pass --overwrite" in capsys.readouterr().err
    b.iloc[1:].to_csv(tmp_path / "b.csv", index=False)
    assert main([*args, "--overwrite"]) == 2
    assert "same cases" in capsys.readouterr().err
    folder = tmp_path / "preds"
    folder.mkdir()
    assert main(["compare", "--a", str(folder), "--b", str(tmp_path / "b.csv"),
                 "--out", str(tmp_path / "x.csv")]) == 2  # fmt: skip
    assert "pass --ref" in capsys.readouterr().err
