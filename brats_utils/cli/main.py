"""The ``brats`` command line; Keras is imported inside each command's ``run`` only."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from brats_utils import __version__
from brats_utils.errors import BratsError
from brats_utils.provenance import missing_backend

__all__ = ["main", "build_parser", "COMMANDS"]

#: Sub-commands in the order ``--help`` lists them (module names under brats_utils.cli).
COMMANDS: tuple[str, ...] = (
    "synth",
    "check",
    "split",
    "preprocess",
    "train",
    "predict",
    "postprocess",
    "evaluate",
    "compare",
    "export",
    "study",
    "notebooks",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (no import of the others' modules)."""
    parser = argparse.ArgumentParser(
        prog="brats",
        description="Brain tumour segmentation on BraTS with 2D U-Nets: data checks, "
        "synthetic cases, preprocessing, training, inference, evaluation, notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"brats-unet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"brats_utils.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The exit status: 0 ok, 1 checks failed, 2 user error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except BratsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (MemoryError, OSError) as exc:  # memory or disk that ran out, a folder gone, ...
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # no Keras backend installed: say which extra
        message = missing_backend(exc.name)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
