"""``--recipe best`` end to end through the CLI: the run records it, predict reads all of it."""

from __future__ import annotations

import json

import pytest

from brats_utils.cli.main import main


@pytest.mark.slow
def test_the_best_recipe_from_cache_to_written_segmentation(tmp_path, capsys):
    from brats_utils.data.split import save_split
    from brats_utils.data.synth import write_synthetic_dataset

    data, cache, run, pred = (tmp_path / n for n in ("data", "cache", "run", "pred"))
    write_synthetic_dataset(data, 4, seed=5, progress=False)  # BraTS-sized: the CLI checks it
    ids = sorted(p.name for p in data.iterdir() if p.is_dir())
    save_split(dict(zip(ids, ("train", "train", "validation", "test"), strict=True)),
               data / "split.csv")  # fmt: skip
    assert main(["preprocess", str(data), "--out", str(cache), "--recipe", "best",
                 "--size", "32", "-q"]) == 0  # fmt: skip
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["settings"]["crop_brain"] and manifest["settings"]["slice_stop"] is None
    train = ["train", "--experiment", "early2", "--cache", str(cache), "--out", str(run),
             "--recipe", "best", "--epochs", "1", "--base-filters", "4", "--batch-size", "8",
             "--pretrain", "2", "--folds", "0"]  # fmt: skip
    # --folds 0: one model, not the recipe's 3
    assert main(train) == 0
    pretrained = tmp_path / "run-pretrain" / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["pretrained"] == str(pretrained / "model.keras")
    assert json.loads((pretrained / "config.json").read_text())["preprocessing"] == \
        manifest["settings"]  # fmt: skip
    assert sorted(p.name for p in pretrained.parent.iterdir()) == ["run", "split.csv"]
    finished = (pretrained / "state.json").stat().st_mtime_ns
    assert main(train + ["--force"]) == 0  # the finished pretraining is used again
    assert (pretrained / "state.json").stat().st_mtime_ns == finished
    assert config["recipe"] == "best" and config["inference"] == {"tta": True}
    assert config["training"]["loss"] == "dice_ce" and config["training"]["augment"] == "nnunet"
    assert config["training"]["epochs"] == 1  # the option replaced the recipe's value
    chosen = json.loads((run / "postprocessing.json").read_text())
    assert chosen["chosen_on"] == [c for c, s in _split(data).items() if s == "validation"]
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--input", str(data), "--out", str(pred),
                 "--split", str(data / "split.csv")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "flip TTA: on" in out and "postprocessing (RUN_DIR/postprocessing.json)" in out
    assert len(list(pred.glob("*.nii.gz"))) == 1  # the one test case


def _split(data) -> dict[str, str]:
    from brats_utils.data.split import load_split

    return load_split(data / "split.csv")


@pytest.mark.slow
def test_cross_validated_training_is_one_ensemble_with_out_of_fold_postprocessing(tmp_path):
    from brats_utils.data.split import save_split
    from brats_utils.data.synth import write_synthetic_dataset

    data, cache, run, pred = (tmp_path / n for n in ("data", "cache", "run", "pred"))
    from brats_utils.preprocessing.cache_build import build_cache
    from brats_utils.training.recipes import get_recipe

    write_synthetic_dataset(data, 7, seed=6, progress=False, shape=(48, 48, 40))
    ids = sorted(p.name for p in data.iterdir() if p.is_dir())
    save_split({c: "test" if i == 0 else "train" for i, c in enumerate(ids)}, data / "split.csv")
    settings = get_recipe("best").preprocess_settings(size=32)
    build_cache(data, cache, settings, progress=False, expected_shape=None)  # small cases
    train = ["train", "--experiment", "early2", "--cache", str(cache), "--out", str(run),
             "--recipe", "best", "--epochs", "1", "--base-filters", "4", "--batch-size", "8",
             "--folds", "2"]  # fmt: skip
    assert main(train) == 0
    labelled = ids[1:]
    held = [_split_of(run / "splits" / f"fold{k}.csv") for k in range(2)]
    assert sorted(held[0] + held[1]) == labelled  # each labelled case held out once
    for k in range(2):
        config = json.loads((run / f"fold{k}" / "config.json").read_text())
        assert sorted(config["case_ids"]["validation"]) == sorted(held[k])
    assert sorted(p.name[: -len(".nii.gz")] for p in (run / "oof").glob("*.nii.gz")) == labelled
    chosen = json.loads((run / "postprocessing.json").read_text())
    assert chosen["chosen_on"] == labelled
    assert main(train[:-2]) == 2  # the recipe's 3 folds: too few cases, refused
    assert main(train + ["--resume"]) == 0  # everything done: nothing trained again
    assert main(train) == 2  # the fold folders are used: --resume or --force
    assert main([*train, "--pretrain", "2"]) == 2  # folders used: refused before pretraining
    assert not (tmp_path / "run-pretrain").exists()
    assert main(["predict", "--model", str(run), "--input", str(data), "--out", str(pred),
                 "--split", str(data / "split.csv")]) == 0  # fmt: skip
    assert [p.name for p in pred.glob("*.nii.gz")] == [f"{ids[0]}.nii.gz"]


def _split_of(path) -> list[str]:
    from brats_utils.data.split import load_split

    return sorted(c for c, s in load_split(path).items() if s == "validation")
