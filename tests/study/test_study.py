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
    triplanar = CONFIGS["+triplanar"]
    assert triplanar.training_key(scale, 2021, "axial") == key["current"]  # shared
    planes = {triplanar.training_key(scale, 2021, p) for p in triplanar.planes}
    assert len(planes) == 3
    assert triplanar.preprocess_settings(scale, "coronal").plane == "coronal"
    assert len({key[n] for n in ("current", "baseline", "+crop", "+regions", "+2.5d", "all")}) == 6
    assert CONFIGS["baseline"].train_settings(scale, 0).loss == "ce"
    assert CONFIGS["baseline"].preprocess_settings(scale) == PreprocessSettings(size=scale.size)
    assert CONFIGS["all"].train_settings(scale, 0).unet.head == "regions"
    assert CONFIGS["+select"].train_settings(scale, 0).select == "val_region_dice"
    assert key["+select"] != key["current"]  # its own training: the selection rule differs
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
    scores = pd.concat([_scores("baseline", 0.0), _scores("current", 0.1)], ignore_index=True)
    summary = summarize_study(scores)
    baseline_wt = summary.loc["baseline", "dice_WT"]
    assert summary.loc["current", "dice_WT"] == pytest.approx(baseline_wt + 0.1)
    assert summary.loc["baseline", "dice_WT_low"] <= summary.loc["baseline", "dice_WT"]
    compared = comparisons(scores, "baseline")
    row = compared[(compared["config"] == "current") & (compared["metric"] == "dice_WT")].iloc[0]
    assert row["mean_difference"] == pytest.approx(0.1) and row["favours"] == "B"
    hd = compared[(compared["config"] == "current") & (compared["metric"] == "hd95_ET")].iloc[0]
    assert hd["favours"] == "B"  # lower HD95 is better


def test_a_partial_study_reports_only_complete_configurations(tmp_path):
    study = tmp_path / "study"
    protocol = {"folds": [CASES[:4], CASES[4:8]], "configs": ["baseline", "current"]}
    (study / "scores" / "fold0").mkdir(parents=True)
    (study / "scores" / "fold1").mkdir(parents=True)
    (study / "study.json").write_text(json.dumps(protocol))
    seed = _scores("baseline", 0.0)
    for fold in (0, 1):
        seed[seed["fold"] == fold].to_csv(study / "scores" / f"fold{fold}" / "baseline.csv")
    current = _scores("current", 0.1)
    current[current["fold"] == 0].to_csv(study / "scores" / "fold0" / "current.csv")
    scores, missing = collect_scores(study)
    assert set(scores["config"]) == {"baseline"} and missing == {"current": [1]}


def _train_args(*extra: str):
    return build_parser().parse_args(["train", "--experiment", "early2", "--cache", "c",
                                      "--out", "o", *extra])  # fmt: skip


def test_recipes_seed_is_the_defaults_and_options_replace_the_recipes_values():
    assert settings_from_args(_train_args()) == TrainSettings()
    assert settings_from_args(_train_args("--recipe", "baseline")) == TrainSettings()
    best = settings_from_args(_train_args("--recipe", "best"))
    assert best == get_recipe("best").train_settings()
    assert best.loss == "dice_ce" and best.augment == "nnunet" and best.empty_slice_fraction == 0.3
    mine = settings_from_args(_train_args("--recipe", "best", "--augment", "none", "--epochs", "3"))
    assert mine.augment == "none" and mine.epochs == 3 and mine.loss == "dice_ce"
    regions = settings_from_args(_train_args("--head", "regions", "--context-slices", "3"))
    assert regions.unet.head == "regions" and regions.context_slices == 1 + 2
    assert get_recipe("baseline").preprocess_settings() == PreprocessSettings()
    pre = get_recipe("best").preprocess_settings(size=96)
    assert pre.crop_brain and pre.slice_stop is None and pre.size == 96
    assert set(RECIPES) == {"baseline", "best"}
    with pytest.raises(BratsError, match="unknown recipe"):
        get_recipe("fast")


def test_the_best_recipe_is_the_studys_best_configuration():
    from brats_utils.study.protocol import CONFIGS

    best, measured = get_recipe("best"), CONFIGS["nnunet"]
    assert dict(best.preprocessing) == dict(measured.preprocessing)
    assert dict(best.training) == dict(measured.training)
    assert (best.tta, best.postprocess, best.folds) == (measured.tta, measured.postprocess, 3)
    assert measured.postprocess_on == "oof" and best.pretrain == measured.pretrain == 0
    settings = best.train_settings()
    assert settings.unet.head == "regions" and settings.context_slices == 3
    assert settings.unet.batch_norm and settings.schedule == "poly"


def _small_study(tmp_path, n_cases, seed, shape):
    """``(data, study, scale)``: synthetic cases and the smallest study scale that trains."""
    from brats_utils.data.synth import write_synthetic_dataset

    data = tmp_path / "data"
    write_synthetic_dataset(data, n_cases=n_cases, seed=seed, shape=shape, progress=False)
    return data, tmp_path / "study", StudyScale(size=32, base_filters=4, epochs=1, batch_size=8)


@pytest.mark.slow
def test_a_killed_study_goes_on_where_it_stopped_and_keeps_its_protocol(tmp_path):
    from brats_utils.study.report import write_report
    from brats_utils.study.runner import run_study

    data, study, scale = _small_study(tmp_path, 6, 3, (48, 48, 155))
    options = dict(scale=scale, folds=2, validation=1, say=lambda line: None)
    run_study(data, study, ["+regions"], only_folds=[0], **options)
    log = (study / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == ["cache", "train", "predict", "evaluate"]
    # as if killed after fold 0: the rerun does fold 1 only, then the second configuration
    done = run_study(data, study, ["+regions", "+2.5d"], **options)
    assert done == [(0, "+regions"), (1, "+regions"), (0, "+2.5d"), (1, "+2.5d")]
    steps = [json.loads(line) for line in (study / "log.jsonl").read_text().splitlines()]
    assert [(s["step"], s.get("fold")) for s in steps[4:7]] == [
        ("train", 1), ("predict", 1), ("evaluate", 1)]  # fmt: skip
    assert sum(s["step"] == "cache" for s in steps) == 1  # one cache serves both
    before = (study / "log.jsonl").read_text()
    run_study(data, study, ["+regions", "+2.5d"], **options)
    assert (study / "log.jsonl").read_text() == before  # nothing left to do
    scores, missing = collect_scores(study)
    assert not missing and len(scores) == 12 and set(scores["fold"]) == {0, 1}
    assert (scores.groupby("config")["case"].apply(sorted).apply(len) == 6).all()
    written = write_report(study)
    assert {"per_case", "summary", "summary_md"} <= set(written)
    runs = [json.loads(p.read_text()) for p in (study / "runs" / "fold0").glob("*/config.json")]
    recorded = sorted((c["model"]["head"], c["training"]["context_slices"]) for c in runs)
    assert recorded == [("classes", 3), ("regions", 1)]
    with pytest.raises(BratsError, match="another protocol"):
        run_study(data, study, ["+regions"], scale=StudyScale(size=48), folds=2, validation=1)


@pytest.mark.slow
def test_the_triplanar_configuration_scores_an_ensemble_of_three_planes(tmp_path):
    from brats_utils.study.runner import run_study

    data, study, scale = _small_study(tmp_path, 6, 4, (40, 40, 32))
    run_study(data, study, ["+triplanar"], scale=scale, folds=2, validation=1, only_folds=[0],
              say=lambda line: None)  # fmt: skip
    ensemble = study / "runs" / "fold0" / "+triplanar-ensemble"
    members = sorted(p.name for p in ensemble.iterdir())
    assert members == ["axial", "coronal", "sagittal"]
    for plane in members:
        config = json.loads((ensemble / plane / "config.json").read_text())
        assert config["preprocessing"].get("plane", "axial") == plane
    scores = pd.read_csv(study / "scores" / "fold0" / "+triplanar.csv")
    assert len(scores) == 3 and (scores["status"] == "ok").all()


@pytest.mark.slow
def test_the_ensemble_trains_inner_folds_and_chooses_postprocessing_out_of_fold(tmp_path):
    from brats_utils.study.runner import run_study

    data, study, scale = _small_study(tmp_path, 13, 5, (40, 40, 32))
    options = dict(scale=scale, folds=4, validation=2, only_folds=[0], say=lambda line: None)
    run_study(data, study, ["ensemble", "ensemble-pp2"], **options)
    split = pd.read_csv(study / "folds" / "fold0.csv")
    rest = set(split.loc[split["split"] != "test", "case"])
    held = [pd.read_csv(study / "folds" / f"fold0_inner{k}.csv") for k in range(3)]
    held = [set(h.loc[h["split"] == "validation", "case"]) for h in held]
    assert set().union(*held) == rest and sum(map(len, held)) == len(rest)  # each once
    runs = sorted(p.name for p in (study / "runs" / "fold0").glob("inner*"))
    assert len(runs) == 3  # ensemble-pp2 trains nothing of its own
    home = study / "runs" / "fold0"
    members = sorted(p.name for p in (home / "ensemble-ensemble").iterdir() if p.is_dir())
    assert members == ["inner0-axial", "inner1-axial", "inner2-axial"]
    chosen = json.loads((home / "ensemble-ensemble" / "postprocessing.json").read_text())
    assert sorted(chosen["chosen_on"]) == sorted(rest)
    pp2 = json.loads((home / "ensemble-pp2-ensemble" / "postprocessing.json").read_text())
    validation = set(split.loc[split["split"] == "validation", "case"])
    assert set(pp2["chosen_on"]) == validation
    for name in ("ensemble", "ensemble-pp2"):
        scores = pd.read_csv(study / "scores" / "fold0" / f"{name}.csv")
        assert (scores["status"] == "ok").all() and set(scores["case"]) == set(
            split.loc[split["split"] == "test", "case"]
        )
