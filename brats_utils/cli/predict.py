"""``brats predict``: whole-volume predictions of a trained run, written as NIfTI files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from brats_utils.cli.args import (
    check_input_file,
    check_input_folder,
    check_output_folder,
    check_outside,
    positive_int,
)
from brats_utils.errors import BratsError
from brats_utils.inference.run_config import model_files

__all__ = ["add_parser", "run", "split_case_ids", "took"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="predict every case of a data folder with a trained run",
        description="Predict every case under INPUT with the run's model and preprocessing and "
        "write OUT_DIR/<case>.nii.gz (the source labels, affine and header); existing ones are "
        "kept unless --overwrite. Exits 1 if any case failed (the others are written).",
    )
    parser.add_argument(
        "--model", type=Path, required=True,
        help="RUN_DIR/model.keras (config.json beside it), a run folder, or a folder of run "
        "folders (an ensemble, e.g. axial/coronal/sagittal runs: their scores are averaged)",
    )  # fmt: skip
    parser.add_argument("--input", type=Path, required=True, help="data folder or one case folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="slices per pass")
    parser.add_argument(
        "--tta", action=argparse.BooleanOptionalAction,
        help="average over flips along X and Y (3x slower); default: what the run's recipe "
        "says (config.json \"inference\"; off for runs without one)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="predict existing outputs again")
    parser.add_argument(
        "--no-postprocess",
        action="store_true",
        help="ignore RUN_DIR/postprocessing.json (written by `brats postprocess`)",
    )
    add_split_arguments(parser, "predict")
    return parser


def add_split_arguments(
    parser: argparse.ArgumentParser, verb: str, default_subset: str = "test"
) -> None:
    """``--split CSV --subset NAME``; ``--subset`` without ``--split`` is refused, not ignored."""
    parser.add_argument(
        "--split", type=Path, default=None,
        help=f"split CSV (case,split); {verb} only the cases of --subset",
    )  # fmt: skip
    parser.add_argument(
        "--subset", default=None, choices=("train", "validation", "test"),
        help=f"part of --split to use (default {default_subset})",
    )  # fmt: skip
    parser.set_defaults(default_subset=default_subset)


def check_model(model: Path) -> Path:
    """Check ``--model`` before Keras is imported; returns its postprocessing folder."""
    if not Path(model).is_dir():
        check_input_file("--model", model, "model file, run folder or ensemble folder")
    return model_files(model)[1]


def split_case_ids(args: argparse.Namespace) -> list[str] | None:
    """Case ids of the ``--subset`` of ``--split``, or ``None`` without ``--split``."""
    if args.split is None:
        if args.subset is not None:
            raise BratsError(f"--subset {args.subset} needs --split CSV, the split it is part of")
        return None
    from brats_utils.data.split import cases_in, load_split

    check_input_file("--split", args.split, "split CSV")
    subset = args.subset or args.default_subset
    ids = cases_in(load_split(args.split), subset)
    if not ids:
        raise BratsError(f"{args.split} has no {subset} cases")
    return ids


def run(args: argparse.Namespace) -> int:
    """0 if every case was written or skipped, 1 if any case failed."""
    # Checked before importing Keras, so a mistyped path fails at once, without its start-up.
    check_model(args.model)
    check_input_folder("--input", args.input, "data folder or case folder")
    check_output_folder("--out", args.out)
    from brats_utils.data.cases import discover_cases

    check_outside("--out", args.out, [c.folder for c in discover_cases(args.input)], "case")
    case_ids = split_case_ids(args)
    from brats_utils.inference.predict import predict_cases

    started = time.monotonic()
    report = predict_cases(
        args.model,
        args.input,
        args.out,
        batch_size=args.batch_size,
        tta="run" if args.tta is None else args.tta,
        overwrite=args.overwrite,
        case_ids=case_ids,
        postprocessing=None if args.no_postprocess else "run",
    )
    print(f"flip TTA: {'on' if report.tta else 'off'}")
    if report.postprocessing is not None:
        print(f"postprocessing (RUN_DIR/postprocessing.json): {report.postprocessing.describe()}")
    if report.skipped:
        print(
            f"skipped {len(report.skipped)} cases with an existing prediction "
            "(--overwrite to predict them again)"
        )
    for case_id, message in report.failed.items():
        print(f"failed {case_id}: {message}", file=sys.stderr)
    print(
        f"{len(report.written)} written, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed -> {args.out} {took(started, len(report.written))}"
    )
    return 0 if report.ok else 1


def took(started: float, n_cases: int) -> str:
    """``in 12.3 s (0.41 s per case)`` since ``started`` (``time.monotonic``)."""
    seconds = time.monotonic() - started
    return f"in {seconds:.1f} s" + (f" ({seconds / n_cases:.2f} s per case)" if n_cases else "")
