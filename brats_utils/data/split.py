"""The train/validation/test split, its ``split.csv`` file, and where it is found."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from brats_utils.errors import BratsError, check_choice
from brats_utils.files import write_csv

__all__ = [
    "SPLITS",
    "split_sizes",
    "make_split",
    "save_split",
    "load_split",
    "cases_in",
    "count_splits",
    "SPLIT_FILE",
    "split_data_folder",
    "resolve_split",
]

SPLITS: tuple[str, str, str] = ("train", "validation", "test")
#: Train/validation/test sizes of the mission's split of the 1251 BraTS 2021 training cases.
_BRATS2021_COUNTS: tuple[int, int, int] = (1012, 126, 113)
_HEADER = ["case", "split"]
SPLIT_FILE = "split.csv"


def split_sizes(n_cases: int, counts: Sequence[int] = _BRATS2021_COUNTS) -> tuple[int, int, int]:
    """Train/validation/test sizes for ``n_cases`` in the proportions of ``counts``; from three
    cases on, every non-zero part gets one."""
    counts = tuple(int(c) for c in counts)
    if len(counts) != len(SPLITS) or min(counts) < 0 or sum(counts) == 0:
        raise ValueError(f"counts must be 3 non-negative integers, not all 0; got {counts}")
    if n_cases < 0:
        raise ValueError(f"n_cases must be >= 0, got {n_cases}")
    total = sum(counts)
    sizes = [n_cases * c // total for c in counts]
    remainders = [n_cases * c % total for c in counts]
    for i in sorted(range(len(counts)), key=lambda i: -remainders[i])[: n_cases - sum(sizes)]:
        sizes[i] += 1
    if n_cases >= len(SPLITS):
        for i, count in enumerate(counts):
            if count > 0 and sizes[i] == 0:
                sizes[int(np.argmax(sizes))] -= 1
                sizes[i] = 1
    return sizes[0], sizes[1], sizes[2]


def _interleaved(sizes: Sequence[int]) -> list[int]:
    """Part indices, ``sizes[k]`` times each, spread evenly."""
    n = sum(sizes)
    assigned = [0] * len(sizes)
    order = []
    for position in range(1, n + 1):
        part = max(range(len(sizes)), key=lambda k: (sizes[k] * position - assigned[k] * n, -k))
        assigned[part] += 1
        order.append(part)
    return order


def make_split(
    case_ids: Iterable[str], seed: int = 2021, counts: Sequence[int] = _BRATS2021_COUNTS
) -> dict[str, str]:
    """``{case_id: part}`` sorted by case id, drawn reproducibly from ``seed``."""
    ids = list(case_ids)
    if not ids:
        raise ValueError("no case ids to split")
    if any(not isinstance(c, str) or not c for c in ids):
        raise ValueError("case ids must be non-empty strings")
    duplicates = sorted(c for c, k in Counter(ids).items() if k > 1)
    if duplicates:
        raise ValueError(f"case ids must be unique; repeated: {duplicates[:5]}")
    ids.sort()
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    parts = _interleaved(split_sizes(len(ids), counts))
    assignment = {case_id: SPLITS[part] for case_id, part in zip(order, parts, strict=True)}
    return {case_id: assignment[case_id] for case_id in ids}


def count_splits(split: Mapping[str, str]) -> dict[str, int]:
    counter = Counter(split.values())
    return {part: counter.get(part, 0) for part in SPLITS}


def cases_in(split: Mapping[str, str], part: str) -> list[str]:
    check_choice("part", part, SPLITS)
    return sorted(case_id for case_id, p in split.items() if p == part)


def save_split(split: Mapping[str, str], path: Path | str) -> Path:
    """Write ``split`` as CSV (header ``case,split``, rows sorted by case), atomically."""
    bad = sorted({part for part in split.values() if part not in SPLITS})
    if bad:
        raise ValueError(f"split parts must be one of {SPLITS}, found {bad}")
    if any(not case_id for case_id in split):
        raise ValueError("case ids must be non-empty")
    records = [{"case": case_id, "split": split[case_id]} for case_id in sorted(split)]
    return write_csv(records, path, columns=_HEADER)


def load_split(path: Path | str) -> dict[str, str]:
    """``{case_id: part}`` in file order; BratsError naming file and line if malformed."""
    path = Path(path)
    if not path.is_file():
        raise BratsError(f"split file not found: {path} (write one with `brats split DATA_DIR`)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [(n, [field.strip() for field in row]) for n, row in enumerate(csv.reader(f), 1)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BratsError(f"{path}: not a readable CSV file: {exc}") from exc
    rows = [(n, row) for n, row in rows if any(row)]
    if not rows or rows[0][1] != _HEADER:
        found = ",".join(rows[0][1]) if rows else "an empty file"
        raise BratsError(f"{path}: expected the header 'case,split', found {found!r}")
    split: dict[str, str] = {}
    for line, row in rows[1:]:
        if len(row) != 2 or not row[0]:
            raise BratsError(f"{path} line {line}: expected 'case,split', found {','.join(row)!r}")
        case_id, part = row
        if part not in SPLITS:
            raise BratsError(
                f"{path} line {line}: unknown split {part!r}, expected one of {SPLITS}"
            )
        if case_id in split:
            raise BratsError(f"{path} line {line}: case {case_id} is listed twice")
        split[case_id] = part
    if not split:
        raise BratsError(f"{path}: no cases listed")
    return split


def split_data_folder(data_dir: Path | str, seed: int = 2021) -> tuple[dict[str, str], list[str]]:
    """``(split, unlabelled)``: the split of a data folder's labelled cases, and the others."""
    from brats_utils.data.cases import select_cases

    cases = select_cases(data_dir)
    labelled = [files.case_id for files in cases if files.seg is not None]
    if not labelled:
        raise BratsError(
            f"none of the {len(cases)} cases under {data_dir} has a segmentation; "
            "a split is made of labelled cases"
        )
    unlabelled = sorted(files.case_id for files in cases if files.seg is None)
    return make_split(labelled, seed=seed), unlabelled


def resolve_split(
    split: Path | str | None = None,
    data_dir: Path | str | None = None,
    *,
    create: bool = False,
    seed: int = 2021,
) -> tuple[Path, str]:
    """``(path, how)``: ``split`` if given, else ``DATA_DIR/split.csv`` (written if ``create``)."""
    if split:
        path = Path(split)
        if not path.is_file():
            raise BratsError(f"split file not found: {path}")
        return path, "given"
    if data_dir is None:
        raise BratsError("no split file given and no data folder to find DATA_DIR/split.csv in")
    path = Path(data_dir) / SPLIT_FILE
    if path.is_file():
        return path, f"{SPLIT_FILE} of the data folder"
    if not create:
        raise BratsError(
            f"no split file given and none at {path}; run `brats split {data_dir}` "
            "or pass a split CSV (--split)"
        )
    save_split(split_data_folder(data_dir, seed)[0], path)
    return path, f"new {SPLIT_FILE} of the data folder (seed {seed})"
