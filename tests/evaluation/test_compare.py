"""brats compare: paired per-case differences, bootstrap CIs, sign and Wilcoxon tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brats_utils.cli.main import main
from brats_utils.errors import BratsError
from brats_utils.evaluation.compare import (
    COMPARISON_COLUMNS,
    bootstrap_mean_ci,
    compare_tables,
    paired_cases,
    sign_test,
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


def test_bootstrap_interval():
    assert bootstrap_mean_ci(np.full(5, 0.25)) == (0.25, 0.25)
    low, high = bootstrap_mean_ci(np.array([1.0, 2.0, 3.0, 4.0]), seed=1)
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert bootstrap_mean_ci(np.array([1.0, 2.0, 3.0, 4.0]), seed=1) == (low, high)  # seeded


def test_sign_test_literal():
    assert sign_test(np.ones(5)) == pytest.approx(2 * 0.5**5)
    assert sign_test(np.zeros(3)) == 1.0
    assert sign_test(np.array([1.0, -1.0])) == 1.0


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
