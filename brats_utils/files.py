"""Atomic writes of JSON, CSV and ``.npy`` files, and workers that end with their run."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from brats_utils.errors import BratsError

__all__ = [
    "atomic_path",
    "remove_stale_temporaries",
    "write_json",
    "read_json",
    "write_csv",
    "write_npy",
    "in_workers",
]


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a new temporary path beside ``path``, renamed onto it if the block succeeds; any
    ``OSError`` (disk full, no permission) becomes ``BratsError("cannot write PATH: REASON")``."""
    path = Path(path)
    tmp_path = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        raise BratsError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path | str) -> int:
    """Delete the temporaries a killed run left in ``folder``; never while another writes there."""
    stale = [p for p in Path(folder).glob(".*.tmp*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()  # a scalar's: the Python number
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_json(path: Path | str, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` (numpy values and paths converted) as JSON; ``indent=None``: one line."""
    path = Path(path)
    text = json.dumps(obj, indent=indent, default=_plain)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(text + ("\n" if indent is not None else ""), encoding="utf-8")
    return path


def read_json(path: Path | str, what: str = "JSON file") -> Any:
    """Parse the JSON file ``path``; ``what`` names it in the ``BratsError`` if it cannot."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BratsError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BratsError(f"{what} is not readable JSON ({exc}): {path}") from exc


def write_csv(
    table: Any, path: Path | str, *, index: bool = False, columns: Sequence[str] | None = None
) -> Path:
    """Write a DataFrame, or records (columns by default in order of first appearance), as CSV."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):  # pandas orders columns by first appearance
        table = pd.DataFrame.from_records(list(table), columns=columns)
    path = Path(path)
    with atomic_path(path, suffix=".csv") as tmp:
        table.to_csv(tmp, index=index, lineterminator="\n")
    return path


def write_npy(path: Path | str, array: np.ndarray) -> Path:
    """``np.save`` atomically, without pickling (the file is memory-mappable)."""
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array, allow_pickle=False)
    return path


#: How often a pool worker checks that the process that started it is still there (seconds).
PARENT_POLL_S = 0.2


def in_workers(
    function: Callable, items: Sequence, workers: int, mp_context: Any = None
) -> Iterator:
    """``function(item)`` of every item in order, in a process pool for ``workers > 1`` whose
    workers exit when their parent dies, even by ``kill -9``."""
    if workers == 1 or len(items) <= 1:
        for item in items:
            yield function(item)
        return
    with ProcessPoolExecutor(min(workers, len(items)), mp_context, _end_with_parent) as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _end_with_parent() -> None:
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    # An orphan is adopted by another process (init or a subreaper): its parent id changes.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)
