"""``brats train``: train one fusion experiment on a slice cache."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from brats_utils.cli.args import (
    base_filters,
    check_input_file,
    check_input_folder,
    check_output_folder,
    fraction,
    non_negative_int,
    odd_positive_int,
    positive_float,
    positive_int,
)
from brats_utils.errors import BratsError
from brats_utils.model.experiments import EXPERIMENTS
from brats_utils.model.settings import ACTIVATIONS, HEADS
from brats_utils.preprocessing.cache import open_cache
from brats_utils.training.augment import AUGMENTATIONS
from brats_utils.training.pretrain import pretrain
from brats_utils.training.recipes import RECIPES, get_recipe
from brats_utils.training.run_folder import check_run_dir
from brats_utils.training.settings import LOSSES, SCHEDULES, SELECTIONS, TrainSettings

__all__ = ["add_parser", "run", "settings_from_args"]

#: ``(option, type, choices or action, help)`` of every setting; the help ends with the default
#: of :class:`TrainSettings` (the baseline's), the one set of defaults.
_SETTINGS = (
    ("--epochs", positive_int, None, "epochs"),
    ("--batch-size", positive_int, None, "slices per batch"),
    ("--lr", positive_float, None, "Adam learning rate"),
    ("--schedule", None, SCHEDULES, "learning rate: constant, or poly decay to 0 (nnU-Net's)"),
    ("--loss", None, LOSSES, "with --head regions the region forms (binary CE, Dice + BCE)"),
    ("--seed", non_negative_int, None, "random seed"),
    ("--empty-slice-fraction", fraction, None, "tumour-free training slices kept each epoch"),
    ("--augment", None, AUGMENTATIONS, "flips, or nnU-Net's spatial + intensity transforms"),
    ("--select", None, SELECTIONS, "what picks model.keras (region Dice: WT/TC/ET mean)"),
    ("--head", None, HEADS, "network output: 4-class softmax, or sigmoids of WT, TC, ET"),
    ("--context-slices", odd_positive_int, None, "2.5D input: slices per modality, odd"),
    ("--base-filters", base_filters, None, "filters of the first U-Net level"),
    ("--batch-norm", None, "bool", "batch norm after convs"),
    ("--activation", None, ACTIVATIONS, "after each conv (leaky: slope 0.01, nnU-Net's)"),
    ("--pretrained", None, None, "MODEL.keras of the same network to start from (fine-tuning)"),
    ("--mixed-precision", None, "flag", "mixed_float16 policy"),
    ("--data-parallel", None, "flag", "data parallel over all local devices"),
    ("--max-cases", positive_int, None, "use at most N cases per subset (smoke runs)"),
)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "all" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a fusion U-Net on a slice cache",
        description="Train one experiment (early4, mean4, early2) on a slice cache built by "
        "`brats preprocess`. Writes RUN_DIR/{model.keras (best by --select), "
        "model_last.keras, history.csv, history.json, config.json, state.json}. The defaults "
        "are the baseline's settings.",
    )
    parser.add_argument("--experiment", required=True, choices=sorted(EXPERIMENTS))
    parser.add_argument("--cache", required=True, type=Path, help="slice cache folder")
    parser.add_argument("--out", required=True, type=Path, help="run folder RUN_DIR")
    parser.add_argument(
        "--split",
        type=Path,
        help="split CSV (case,split). Default: split.csv in the data folder the cache was "
        "built from (recorded in the cache manifest)",
    )
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), default="baseline",
        help="; ".join(f"{r.name}: {r.description}" for r in RECIPES.values()).replace("%", "%%")
        + ". Every option below replaces the recipe's value (default: baseline)",
    )  # fmt: skip
    defaults = TrainSettings().flat()
    for option, kind, choices, text in _SETTINGS:
        dest = "learning_rate" if option == "--lr" else option[2:].replace("-", "_")
        shown = f"{text} (baseline: {_shown(defaults[dest])})"
        if choices == "bool":
            parser.add_argument(option, action=argparse.BooleanOptionalAction, help=shown)
        elif choices == "flag":
            parser.add_argument(option, action="store_true", default=None, help=shown)
        else:
            alone = {"nargs": "?", "const": "flips"} if option == "--augment" else {}
            parser.add_argument(option, dest=dest, type=kind, choices=choices, help=shown, **alone)
    parser.add_argument(
        "--postprocess", action=argparse.BooleanOptionalAction,
        help="after training, choose postprocessing on the validation cases as `brats "
        "postprocess` does (best: on; baseline: off)",
    )  # fmt: skip
    used_folder = parser.add_mutually_exclusive_group()  # argparse refuses both
    used_folder.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last saved epoch, exactly as if it had not "
        "stopped (same settings; --epochs may grow)",
    )
    used_folder.add_argument(
        "--force", action="store_true", help="start over in a non-empty RUN_DIR"
    )
    parser.add_argument(
        "--folds", type=non_negative_int, metavar="K",
        help="cross-validated training (nnU-Net's): K models, each holding out a K-th of the "
        "split's train and validation cases (its validation cases); RUN_DIR/fold0..: one "
        "ensemble for `brats predict`; RUN_DIR/oof/: every case predicted by the model that did "
        "not train on it, on which postprocessing is chosen; --resume goes on where it stopped "
        "(0: one model, the baseline recipe's)",
    )  # fmt: skip
    parser.add_argument(
        "--pretrain", type=non_negative_int, metavar="N",
        help="first train on N synthetic cases preprocessed as --cache (in RUN_DIR-pretrain/, "
        "kept) and start from that model (both recipes: 0, none; --pretrained replaces it)",
    )  # fmt: skip
    parser.add_argument("--workers", type=positive_int, default=1, help="loader threads")
    return parser


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """The recipe's :class:`TrainSettings`, every option given replacing the recipe's value."""
    given = {name: getattr(args, name, None) for name in TrainSettings.names()}
    try:
        recipe = get_recipe(getattr(args, "recipe", "baseline"))
        return recipe.train_settings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise BratsError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    # Checked before importing Keras (train() checks them again, for every caller).
    check_input_folder("--cache", args.cache, "slice cache folder (from `brats preprocess`)")
    open_cache(args.cache)  # a folder that is not a slice cache
    check_output_folder("--out", args.out)
    recipe = get_recipe(args.recipe)
    args.folds = recipe.folds if args.folds is None else args.folds  # 0: one model
    if not args.folds:
        check_run_dir(args.out, resume=args.resume, force=args.force)
    if args.split is not None:
        check_input_file("--split", args.split, "split CSV")
    settings = settings_from_args(args)
    if settings.pretrained:
        check_input_file("--pretrained", Path(settings.pretrained), "model file (.keras)")
    if args.folds:
        return _train_folds(args, settings, recipe)
    from brats_utils.training.train import train

    settings = _pretrained(args, settings, recipe)
    result = train(args.experiment, args.cache, args.out, settings, split=args.split,
                   resume=args.resume, force=args.force, workers=args.workers,
                   recipe=recipe)  # fmt: skip
    if result["history"]:
        last = result["history"][-1]
        shown = {k: round(v, 4) for k, v in last.items() if k.startswith("val_")}
        print(f"epoch {last['epoch']}: {shown}")
    print(f"run folder: {result['run_dir']}")
    if args.postprocess if args.postprocess is not None else recipe.postprocess:
        _postprocess_run(Path(result["run_dir"]), result["config"])
    return 0


def _pretrained(args: argparse.Namespace, settings: TrainSettings, recipe) -> TrainSettings:
    """``settings`` starting from the ``--pretrain`` model, trained first if needed; called
    after every check of the run folders, so a refused command pretrains nothing."""
    n_pretrain = recipe.pretrain if args.pretrain is None else args.pretrain
    if not n_pretrain or settings.pretrained is not None:
        return settings
    home = args.out.with_name(f"{args.out.name}-pretrain")
    print(f"pretraining on {n_pretrain} synthetic cases in {home}")
    model = pretrain(args.experiment, home, n_pretrain, open_cache(args.cache).settings, settings,
                     workers=args.workers)  # fmt: skip
    return replace(settings, pretrained=str(model))


def _postprocess_run(run_dir: Path, config: dict) -> None:
    from brats_utils.cli.postprocess import choose_postprocessing

    validation = config.get("case_ids", {}).get("validation", [])
    data_dir = config.get("data_dir")
    if not validation or not data_dir or not Path(data_dir).is_dir():
        print(
            "postprocessing not chosen: it needs validation cases and the data folder "
            f"({data_dir}); run `brats postprocess` when they are at hand"
        )
        return
    tta = bool(config.get("inference", {}).get("tta", False))
    choose_postprocessing(run_dir / "model.keras", Path(data_dir), validation, tta=tta)


def _train_folds(args: argparse.Namespace, settings: TrainSettings, recipe) -> int:
    """``--folds K``: K runs, out-of-fold predictions, postprocessing chosen on them."""
    from brats_utils.data.cases import read_case_volumes, select_cases
    from brats_utils.data.predictions import load_prediction
    from brats_utils.data.split import load_split, resolve_split, save_split
    from brats_utils.inference.postprocess import fit_postprocessing, save_postprocessing
    from brats_utils.inference.predict import predict_cases
    from brats_utils.study.protocol import make_folds
    from brats_utils.training.train import train

    data_dir = open_cache(args.cache).manifest.get("data_dir")
    split = load_split(resolve_split(args.split, data_dir)[0])
    labelled = sorted(c for c, part in split.items() if part != "test")
    folds = make_folds(labelled, args.folds, settings.seed)  # refuses too few cases
    runs = [args.out / f"fold{k}" for k in range(args.folds)]
    for run_dir in runs:  # every fold checked before the first is written
        resume = args.resume and (run_dir / "state.json").exists()
        check_run_dir(run_dir, resume=resume, force=args.force)
    settings = _pretrained(args, settings, recipe)
    held_out = {}
    for k, (run_dir, held) in enumerate(zip(runs, folds, strict=True)):
        fold_split = {c: "validation" if c in held else "train" for c in labelled}
        split_csv = save_split(fold_split, args.out / "splits" / f"fold{k}.csv")
        resume = args.resume and (run_dir / "state.json").exists()
        print(f"fold {k + 1}/{args.folds}: {len(held)} cases held out")
        train(args.experiment, args.cache, run_dir, settings, split=split_csv, resume=resume,
              force=args.force, workers=args.workers, recipe=recipe)  # fmt: skip
        held_out[run_dir / "model.keras"] = held
    if not data_dir or not Path(data_dir).is_dir():
        print(f"out-of-fold predictions skipped: the data folder {data_dir} is not at hand")
        return 0
    for model_path, held in held_out.items():
        report = predict_cases(model_path, data_dir, args.out / "oof", tta=recipe.tta,
                               case_ids=held, overwrite=args.force,
                               postprocessing=None)  # fmt: skip
        if report.failed:
            raise BratsError(f"out-of-fold predictions failed: {report.failed}")
    print(f"out-of-fold predictions of {len(labelled)} cases: {args.out / 'oof'}")
    if args.postprocess if args.postprocess is not None else recipe.postprocess:
        scored = []  # read back: the out-of-fold predictions are not made twice
        for files in select_cases(data_dir, labelled):
            volumes = read_case_volumes(files, require_seg=True, expected_shape=None)
            classes = load_prediction(args.out / "oof", files.case_id)
            scored.append((classes, volumes.seg, volumes.image.header.get_zooms()[:3]))
        chosen, trials = fit_postprocessing(scored)
        save_postprocessing(args.out, chosen, chosen_on=labelled, trials=trials)
        print(
            f"postprocessing chosen on the {len(labelled)} out-of-fold cases: {chosen.describe()}"
        )
    return 0
