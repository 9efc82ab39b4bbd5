"""Running the study: every configuration on every fold, resumable."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from brats_utils.data.cases import discover_cases
from brats_utils.data.split import save_split
from brats_utils.errors import BratsError
from brats_utils.evaluation.volumes import evaluate_folder
from brats_utils.files import read_json, write_csv, write_json
from brats_utils.inference.postprocess import load_postprocessing, save_postprocessing
from brats_utils.inference.predict import fit_run_postprocessing, predict_cases
from brats_utils.preprocessing.cache_build import build_cache
from brats_utils.study.protocol import CONFIGS, Config, StudyScale, digest, fold_split, make_folds
from brats_utils.training.pretrain import pretrain
from brats_utils.training.run_folder import load_state

__all__ = ["STUDY_FILE", "run_study", "study_protocol", "score_path"]

STUDY_FILE = "study.json"


def study_protocol(
    data_dir: Path, folds: int, validation: int, seed: int, scale: StudyScale
) -> dict[str, Any]:
    labelled = sorted(c.case_id for c in discover_cases(data_dir) if c.seg is not None)
    if not labelled:
        raise BratsError(f"no labelled cases (with a *_seg file) under {data_dir}")
    return {
        "data_dir": str(Path(data_dir).resolve()),
        "cases": labelled,
        "seed": seed,
        "validation_per_fold": validation,
        "scale": asdict(scale),
        "folds": make_folds(labelled, folds, seed),
    }


def _check_protocol(study_dir: Path, protocol: dict[str, Any]) -> None:
    path = study_dir / STUDY_FILE
    if not path.exists():
        return
    saved = read_json(path, "study protocol")
    saved.pop("configs", None)
    changed = sorted(k for k in protocol if saved.get(k) != protocol[k])
    if changed:
        raise BratsError(
            f"{study_dir} holds a study with another protocol ({', '.join(changed)} differ); "
            "use a new --out folder, or the same cases, folds, scale and seed"
        )


def score_path(study_dir: Path, fold: int, config: str) -> Path:
    return Path(study_dir) / "scores" / f"fold{fold}" / f"{config}.csv"


class _Log:
    def __init__(self, study_dir: Path, say):
        self.path, self.say = study_dir / "log.jsonl", say

    def step(self, what: str, started: float, **fields: Any) -> None:
        seconds = round(time.perf_counter() - started, 1)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": what, **fields, "seconds": seconds}) + "\n")
        self.say(f"{what} {fields} {seconds:.0f} s")


def run_study(
    data_dir: Path | str,
    study_dir: Path | str,
    configs: Sequence[str] | None = None,
    *,
    scale: StudyScale | None = None,
    folds: int = 4,
    validation: int = 2,
    seed: int = 2021,
    only_folds: Sequence[int] | None = None,
    say=print,
) -> list[tuple[int, str]]:
    """Train, predict and score every configuration on every fold (or ``only_folds``, 0-based);
    returns ``(fold, config)`` of every score table now present."""
    data_dir, study_dir = Path(data_dir), Path(study_dir)
    scale = scale or StudyScale()
    names = list(configs or CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise BratsError(f"unknown configurations {unknown}; expected some of {list(CONFIGS)}")
    protocol = study_protocol(data_dir, folds, validation, seed, scale)
    _check_protocol(study_dir, protocol)
    fold_ids = list(range(folds)) if only_folds is None else sorted(set(only_folds))
    # every check before the first file is written
    splits = {fold: fold_split(protocol["folds"], fold, validation, seed) for fold in fold_ids}
    study_dir.mkdir(parents=True, exist_ok=True)
    write_json(study_dir / STUDY_FILE, {**protocol, "configs": names})
    log = _Log(study_dir, say)
    for fold in fold_ids:
        save_split(splits[fold], study_dir / "folds" / f"fold{fold}.csv")
    done = []
    for name in names:
        for fold in fold_ids:
            _run_cell(data_dir, study_dir, CONFIGS[name], fold, splits[fold], scale, seed, log)
            done.append((fold, name))
    return done


def _run_cell(
    data_dir: Path,
    study_dir: Path,
    config: Config,
    fold: int,
    split: dict[str, str],
    scale: StudyScale,
    seed: int,
    log: _Log,
) -> None:
    """One configuration on one fold: cache, training, postprocessing, prediction, scores."""
    scores = score_path(study_dir, fold, config.name)
    if scores.exists():
        return
    fold_runs = study_dir / "runs" / f"fold{fold}"
    validation = sorted(c for c, s in split.items() if s == "validation")
    runs = {}  # run folder -> (its name in an ensemble, the cases it did not train on)
    for plane in config.planes:
        cache_dir = _cache(data_dir, study_dir, config.preprocess_settings(scale, plane), log)
        trained = _pretrained(config, study_dir, scale, seed, plane, log)
        for prefix, split_csv, held in _trainings(config, study_dir, fold, split, seed, validation):
            run_dir = fold_runs / f"{prefix}{trained.training_key(scale, seed, plane)}"
            _train(trained, cache_dir, run_dir, split_csv, scale, seed, fold, log)
            runs[run_dir] = (f"{prefix}{plane}", held)
    if len(runs) == 1:
        home = next(iter(runs))
        model_path = home / config.model_file
    else:  # an ensemble folder: links to the run folders of the planes or inner folds
        home = model_path = fold_runs / f"{config.name}-ensemble"
        for run_dir, (name, _) in runs.items():
            link = home / name
            if not link.exists():
                home.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path("..") / run_dir.name, target_is_directory=True)
    postprocessing = None
    if config.postprocess:
        own = config.model_file == "model.keras"  # postprocessing.json belongs to model.keras
        postprocessing = load_postprocessing(home) if own else None
        if postprocessing is None:
            started = time.perf_counter()
            chosen = {model_path: validation}
            if config.folds:  # each inner model predicts the cases it did not train on
                keep = validation if config.postprocess_on == "validation" else list(split)
                chosen = {r / config.model_file: [c for c in held if c in keep]
                          for r, (_, held) in runs.items()}  # fmt: skip
            postprocessing, trials = fit_run_postprocessing(
                chosen, data_dir, tta=config.tta, progress=False
            )
            if own:
                cases = sorted(c for ids in chosen.values() for c in ids)
                save_postprocessing(home, postprocessing, chosen_on=cases, trials=trials)
            log.step("postprocessing", started, fold=fold, config=config.name)
    test = sorted(c for c, s in split.items() if s == "test")
    pred_dir = study_dir / "predictions" / f"fold{fold}" / config.name
    started = time.perf_counter()
    report = predict_cases(model_path, data_dir, pred_dir, tta=config.tta, case_ids=test,
                           progress=False, postprocessing=postprocessing)  # fmt: skip
    if report.failed:
        raise BratsError(f"fold {fold}, {config.name}: prediction failed for {report.failed}")
    log.step("predict", started, fold=fold, config=config.name)
    started = time.perf_counter()
    table = evaluate_folder(pred_dir, data_dir, progress=False, case_ids=test)
    table.insert(0, "fold", fold)
    table.insert(0, "config", config.name)
    write_csv(table, scores)
    log.step("evaluate", started, fold=fold, config=config.name)


def _trainings(config: Config, study_dir: Path, fold: int, split: dict[str, str], seed: int,
               validation: list[str]):  # fmt: skip
    """``(run folder prefix, split CSV, cases held out)`` of each training of one fold."""
    if not config.folds:
        return [("", study_dir / "folds" / f"fold{fold}.csv", validation)]
    rest = sorted(c for c, s in split.items() if s != "test")
    trainings = []
    for k, held in enumerate(make_folds(rest, config.folds, seed)):
        inner = {c: ("validation" if c in held else "train") for c in rest}
        path = save_split(inner, study_dir / "folds" / f"fold{fold}_inner{k}.csv")
        trainings.append((f"inner{k}-", path, held))
    return trainings


def _pretrained(config: Config, study_dir: Path, scale, seed: int, plane: str, log) -> Config:
    """``config`` starting from a model trained on ``config.pretrain`` synthetic cases."""
    if not config.pretrain:
        return config
    started, key = time.perf_counter(), config.training_key(scale, seed, plane)  # pretrain aside
    model = pretrain(config.experiment, study_dir / "pretrain", config.pretrain,
                     config.preprocess_settings(scale, plane), config.train_settings(scale, seed),
                     run_name=key, workers=2, verbose=2)  # fmt: skip
    log.step("pretrain", started, config=config.name)
    return replace(config, training={**config.training, "pretrained": str(model)})


def _cache(data_dir: Path, study_dir: Path, settings, log: _Log) -> Path:
    cache_dir = study_dir / "caches" / digest(settings.to_dict())
    started = time.perf_counter()
    report = build_cache(data_dir, cache_dir, settings, progress=False, expected_shape=None)
    if report.failed:
        raise BratsError(f"cases could not be cached in {cache_dir}: {report.failed}")
    if report.done:
        log.step("cache", started, settings=settings.to_dict())
    return cache_dir


def _train(config, cache_dir, run_dir, split_csv, scale, seed, fold, log) -> None:
    from brats_utils.training.train import train  # loads Keras

    settings = config.train_settings(scale, seed)
    state = run_dir / "state.json"
    if state.exists() and load_state(run_dir).get("epoch", 0) >= settings.epochs:
        return
    started = time.perf_counter()
    resume = state.exists()
    train(config.experiment, cache_dir, run_dir, settings, split=split_csv, resume=resume,
          force=not resume, verbose=2)  # fmt: skip
    log.step("train", started, fold=fold, config=config.name, resumed=resume)
