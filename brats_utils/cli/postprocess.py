"""``brats postprocess``: choose a run's postprocessing thresholds on its validation cases."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.cli.args import check_input_folder, check_output_file, positive_int
from brats_utils.cli.predict import add_split_arguments, check_model, split_case_ids
from brats_utils.errors import BratsError
from brats_utils.inference.run_config import model_files

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "postprocess",
        help="choose small-component and small-ET thresholds on validation cases",
        description="Choose on the validation cases of --split the thresholds (components "
        "smaller than T mm^3 removed, small ET called necrosis) that maximise (Dice + "
        "lesion-wise Dice) / 2, and write RUN_DIR/postprocessing.json for `brats predict`.",
    )
    parser.add_argument(
        "--model", type=Path, required=True,
        help="RUN_DIR/model.keras, a run folder, or an ensemble folder of run folders",
    )  # fmt: skip
    parser.add_argument("--input", type=Path, required=True, help="data folder (with segs)")
    add_split_arguments(parser, "choose on", default_subset="validation")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="slices per pass")
    parser.add_argument("--tta", action="store_true", help="flip TTA, as `brats predict --tta`")
    parser.add_argument("--overwrite", action="store_true", help="replace postprocessing.json")
    return parser


def run(args: argparse.Namespace) -> int:
    from brats_utils.inference.postprocess import POSTPROCESSING_FILE

    home = check_model(args.model)
    check_input_folder("--input", args.input, "data folder")
    if args.split is None:
        raise BratsError("--split is required: thresholds are chosen on validation cases only")
    if args.subset == "test":
        raise BratsError("choosing postprocessing on test cases would leak them; use validation")
    check_output_file("--model", home / POSTPROCESSING_FILE, args.overwrite)
    choose_postprocessing(
        args.model, args.input, split_case_ids(args), batch_size=args.batch_size, tta=args.tta
    )
    return 0


def choose_postprocessing(
    model: Path, data_dir: Path, case_ids: list[str], *, batch_size: int = 32, tta: bool = False
) -> None:
    """Choose the thresholds on ``case_ids``, write them beside ``model`` and print them."""
    from brats_utils.inference.postprocess import POSTPROCESSING_FILE, save_postprocessing
    from brats_utils.inference.predict import fit_run_postprocessing

    settings, trials = fit_run_postprocessing(
        model, data_dir, case_ids, batch_size=batch_size, tta=tta
    )
    _, home = model_files(model)
    save_postprocessing(home, settings, chosen_on=case_ids, trials=trials)
    for stage in dict.fromkeys(trial["stage"] for trial in trials):
        chosen = getattr(settings, stage)
        scores = {t["threshold"]: t["score"] for t in trials if t["stage"] == stage}
        print(f"{stage:>20}: {chosen:5g} mm^3, score {scores[0.0]:.4f} -> {scores[chosen]:.4f}")
    out = home / POSTPROCESSING_FILE
    print(f"postprocessing: {settings.describe()} (chosen on {len(case_ids)} cases) -> {out}")
