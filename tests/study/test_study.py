"""The study's protocol (folds that cannot leak), its resumable runner, its report; recipes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brats_utils.cli.main import build_parser
from brats_utils.cli.train import settings_from_args
from brats_utils.errors import BratsError
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.study.protocol import CONFIGS, StudyScale, fold_split, make_folds
from brats_utils.study.report import collect_scores, comparisons, summarize_study
from brats_utils.training.recipes import RECIPES, get_recipe
from brats_utils.training.settings import TrainSettings

CASES = [f"case{i:02d}" for i in range(16)]


def test_folds_cover_every_case_once_and_validation_comes_from_training_cases():
    folds = make_folds(CASES, 4, seed=2021)
    assert [len(f) for f in folds] == [4, 4, 4, 4]
    assert sorted(c for f in folds for c in f) == CASES
    assert make_folds(list(reversed(CASES)), 4, seed=2021) == folds  # order does not matter
    assert make_folds(CASES, 4, seed=1) != folds
    for k in range(4):
        split = fold_split(folds, k, 2, seed=2021)
        assert sorted(split) == CASES
        assert sorted(c for c, s in split.items() if s == "test") == folds[k]
        validation = [c for c, s in split.items() if s == "validation"]
        assert len(validation) == 2 and not set(validation) & set(folds[k])
        assert sum(s == "train" for s in split.values()) == 10
    with pytest.raises(BratsError, match="cannot make 4 folds"):
        make_folds(CASES[:11], 4, seed=0)


def test_configurations_share_trainings_only_when_they_train_alike():
    scale, key = StudyScale(), {}
    for name, config in CONFIGS.items():
        key[name] = config.training_key(scale, 2021)
    assert key["current"] == key["+postprocess"] == key["+last"]
    assert len({key[n] for n in ("current", "seed", "+crop", "+regions", "+2.5d", "all")}) == 6
    assert CONFIGS["seed"].train_settings(scale, 0).loss == "ce"
    assert CONFIGS["seed"].preprocess_settings(scale) == PreprocessSettings(size=scale.size)
    assert CONFIGS["all"].train_settings(scale, 0).unet.head == "regions"
    assert CONFIGS["all-mean4"].experiment == "mean4"


def _scores(config: str, shift: float) -> pd.DataFrame:
    rows = []
    for i, case in enumerate(CASES[:8]):
        row = {"config": config, "fold": i // 4, "case": case}
        for metric in ("dice_WT", "dice_TC", "dice_ET", "lesion_dice_WT", "lesion_dice_TC",
                       "lesion_dice_ET"):  # fmt: skip
            row[metric] = 0.5 + 0.01 * i + shift
        for metric in ("hd95_WT", "hd95_TC", "hd95_ET"):
            row[metric] = 10.0 - shift * 10
        rows.append(row)
    return pd.DataFrame(rows)


def test_the_report_pairs_cases_and_gives_intervals(tmp_path):
    scores = pd.concat([_scores("seed", 0.0), _scores("current", 0.1)], ignore_index=True)
    summary = summarize_study(scores)
    assert summary.loc["current", "dice_WT"] == pytest.approx(summary.loc["seed", "dice_WT"] + 0.1)
    assert summary.loc["seed", "dice_WT_low"] <= summary.loc["seed", "dice_WT"]
    compared = comparisons(scores, "seed")
    row = compared[(compared["config"] == "current") & (compared["metric"] == "dice_WT")].iloc[0]
    assert row["mean_difference"] == pytest.approx(0.1) and row["favours"] == "B"
    hd = compared[(compared["config"] == "current") & (compared["metric"] == "hd95_ET")].iloc[0]
    assert hd["favours"] == "B"  # lower HD95 is better


def test_a_partial_study_reports_only_complete_configurations(tmp_path):
    study = tmp_path / "study"
    protocol = {"folds": [CASES[:4], CASES[4:8]], "configs": ["seed", "current"]}
    (study / "scores" / "fold0").mkdir(parents=True)
    (study / "scores" / "fold1").mkdir(parents=True)
    (study / "study.json").write_text(json.dumps(protocol))
    seed = _scores("seed", 0.0)
    for fold in (0, 1):
        seed[seed["fold"] == fold].to_csv(study / "scores" / f"fold{fold}" / "seed.csv")
    current = _scores("current", 0.1)
    current[current["fold"] == 0].to_csv(study / "scores" / "fold0" / "current.csv")
    scores, missing = collect_scores(study)
    assert set(scores["config"]) == {"seed"} and missing == {"current": [1]}


def _train_args(*extra: str):
    return build_parser().parse_args(["train", "--experiment", "early2", "--cache", "c",
                                      "--out", "o", *extra])  # fmt: skip


def test_recipes_seed_is_the_defaults_and_options_replace_the_recipes_values():
    assert settings_from_args(_train_args()) == TrainSettings()
    assert settings_from_args(_train_args("--recipe", "seed")) == TrainSettings()
    best = settings_from_args(_train_args("--recipe", "best"))
    assert best == get_recipe("best").train_settings()
    assert best.loss == "dice_ce" and best.augment and best.empty_slice_fraction == 0.3
    mine = settings_from_args(_train_args("--recipe", "best", "--no-augment", "--epochs", "3"))
    assert not mine.augment and mine.epochs == 3 and mine.loss == "dice_ce"
    regions = settings_from_args(_train_args("--head", "regions", "--context-slices", "3"))
    assert regions.unet.head == "regions" and regions.context_slices == 1 + 2
    assert get_recipe("seed").preprocess_settings() == PreprocessSettings()
    pre = get_recipe("best").preprocess_settings(size=96)
    assert pre.crop_brain and pre.slice_stop is None and pre.size == 96
    assert set(RECIPES) == {"seed", "best"}
    with pytest.raises(BratsError, match="unknown recipe"):
        get_recipe("fast")
