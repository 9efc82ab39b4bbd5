"""``OUT_DIR/notebooks/run_summary.json``: what the notebook runs into one folder did.

Written by :func:`brats_utils.notebooks.runner.run_notebooks` after every run, read by
:func:`brats_utils.notebooks.html.render_html` (the index's minutes) and by
``scripts/profile_minutes.py`` (a profile's measured minutes). No Keras import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from brats_utils.files import read_json, write_json

__all__ = ["write_summary"]


def write_summary(run, parameters: Mapping[str, Any], order: Sequence[str] = ()) -> None:
    """Write ``run_summary.json`` of ``run``, a :class:`~.runner.NotebookRun`.

    A run of some notebooks (``only``) into a folder that holds an earlier run of the same
    profile and data updates those notebooks' entries and keeps the others', so the summary
    always covers every executed copy in the folder; entries follow ``order``.
    """
    path = run.out_dir / "notebooks" / "run_summary.json"
    seconds, executed = dict(run.seconds), {k: str(v) for k, v in run.executed.items()}
    if path.is_file():
        earlier = read_json(path, "run summary")
        if earlier.get("profile") == run.profile and earlier.get("data_dir") == str(run.data_dir):
            seconds = {**earlier.get("seconds", {}), **seconds}
            executed = {**earlier.get("executed", {}), **executed}
    rank = {name: k for k, name in enumerate(order)}
    seconds = dict(sorted(seconds.items(), key=lambda item: rank.get(item[0], len(rank))))
    executed = {name: executed[name] for name in seconds if name in executed}
    summary = {
        "profile": run.profile,
        "data_dir": str(run.data_dir),
        "out_dir": str(run.out_dir),
        "parameters": dict(parameters),
        "seconds": seconds,
        "total_seconds": round(sum(seconds.values()), 1),
        "executed": executed,
    }
    write_json(path, summary)
