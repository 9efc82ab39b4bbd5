"""``brats notebooks``: run the numbered notebooks headless with a parameter profile."""

from __future__ import annotations

import argparse
from pathlib import Path

from brats_utils.errors import BratsError
from brats_utils.notebooks.runner import PROFILES

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "notebooks",
        help="run the numbered notebooks with papermill (profiles tiny, smoke, full)",
        description="Execute notebooks/01..07 with papermill and notebooks/params/<profile>.yaml "
        "into OUT/{notebooks,figures,tables}/. An empty data folder is filled with synthetic "
        "cases (tiny, smoke); full needs real data.",
    )
    parser.add_argument("--profile", default="smoke", help=f"{'|'.join(PROFILES)}, or a YAML file")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("data/synthetic"),
        help="BraTS cases (default data/synthetic)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default outputs/<profile>)")
    parser.add_argument("--only", help="comma-separated notebook numbers to run, e.g. 01,03")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a notebook parameter (repeatable), e.g. --param epochs=3",
    )
    parser.add_argument("--log-output", action="store_true", help="stream the notebooks' output")
    parser.add_argument(
        "--html", type=Path, metavar="DIR", help="also render them to HTML pages in DIR"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace HTML pages in DIR")
    return parser


def run(args: argparse.Namespace) -> int:
    from brats_utils.cli.args import check_output_folder
    from brats_utils.notebooks.runner import parse_param, run_notebooks

    overrides = dict(parse_param(p) for p in args.param)
    if args.out is not None:
        check_output_folder("--out", args.out)
    if args.html is not None:
        check_output_folder("--html", args.html)
        existing = sorted(args.html.glob("[0-9][0-9]_*.html")) if args.html.is_dir() else []
        if existing and not args.overwrite:
            raise BratsError(
                f"--html {args.html} already holds {len(existing)} pages ({existing[0].name}, "
                "...); pass --overwrite to replace them"
            )
    result = run_notebooks(
        args.profile,
        args.data,
        args.out,
        only=args.only,
        overrides=overrides,
        log_output=args.log_output,
    )
    total = sum(result.seconds.values())
    print(f"{len(result.executed)} notebooks in {total:.0f} s ({result.profile} profile)")
    print(f"executed notebooks: {result.out_dir / 'notebooks'}")
    for folder, suffixes in (("figures", (".png",)), ("tables", (".csv", ".json"))):
        found = [p for p in (result.out_dir / folder).glob("*") if p.suffix in suffixes]
        print(f"{folder} ({len(found)}): {result.out_dir / folder}")
    if args.html is not None:
        from brats_utils.notebooks.html import render_html

        pages = render_html(result.out_dir / "notebooks", args.html)
        size = sum(p.stat().st_size for p in pages) / 1e6
        print(f"HTML pages ({len(pages)}, {size:.1f} MB): {pages[-1]}")
    return 0
