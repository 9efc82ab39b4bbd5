"""A writable folder over read-only real cases, with a fixed split, for a notebooks run.

    python scripts/real_data_folder.py ../shared/data/brats2018_sample outputs/real16/data \
        --counts 10,3,3

Each case folder of SOURCE is linked (not copied) into TARGET, and TARGET/split.csv is written
with ``make_split(case_ids, seed, counts)`` (train, validation, test), so notebook 01 finds a
split and the source folder is never written to. An existing TARGET/split.csv is kept when it
is the same split, refused otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brats_utils.data.cases import discover_cases
from brats_utils.data.split import load_split, make_split, save_split
from brats_utils.errors import BratsError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of real case folders (read only)")
    parser.add_argument("target", type=Path, help="folder to make (links and split.csv)")
    parser.add_argument("--counts", default="10,3,3", help="train,validation,test cases")
    parser.add_argument("--seed", type=int, default=2021, help="split seed (default 2021)")
    args = parser.parse_args()
    try:
        counts = tuple(int(n) for n in args.counts.split(","))
        cases = [c for c in discover_cases(args.source) if c.seg is not None]
        if not cases:
            raise BratsError(f"{args.source}: no labelled case folder")
        args.target.mkdir(parents=True, exist_ok=True)
        for case in cases:
            link = args.target / case.folder.name
            if not link.exists():
                link.symlink_to(case.folder.resolve(), target_is_directory=True)
        split = make_split([c.case_id for c in cases], seed=args.seed, counts=counts)
        path = args.target / "split.csv"
        if path.exists() and load_split(path) != split:
            raise BratsError(f"{path} holds another split; remove it to make this one")
        if not path.exists():
            save_split(split, path)
    except (BratsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(cases)} cases linked into {args.target}; split {counts} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
