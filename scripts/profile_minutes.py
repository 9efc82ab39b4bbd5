"""Write a run's measured minutes per notebook into its profile (the time line notebooks print).

    python scripts/profile_minutes.py OUT/notebooks/run_summary.json notebooks/params/smoke.yaml \
        --machine "2-core CPU, no GPU"

Replaces the ``measured:`` and ``minutes:`` keys at the end of the profile file (everything
above them, comments included, is kept) with the seconds ``brats notebooks`` recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="run_summary.json of a brats notebooks run")
    parser.add_argument("profile", type=Path, help="the profile YAML to update")
    parser.add_argument("--machine", required=True, help="what it ran on, e.g. '2-core CPU'")
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text())
    text = args.profile.read_text()
    kept = text.split("\nmeasured:")[0].split("\nminutes:")[0].rstrip("\n")
    today = datetime.date.today().isoformat()
    lines = [
        kept,
        f'measured: "on a {args.machine}, {today}, by brats notebooks --profile '
        f'{summary["profile"]}"',
        "minutes:",
        *(f"  {name}: {seconds / 60:.1f}" for name, seconds in summary["seconds"].items()),
    ]
    args.profile.write_text("\n".join(lines) + "\n")
    print(f"{args.profile}: {sum(summary['seconds'].values()) / 60:.1f} min in all")


if __name__ == "__main__":
    main()
