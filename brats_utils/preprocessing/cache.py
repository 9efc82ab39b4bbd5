"""The slice cache's layout (docs/ARCHITECTURE.md, "Files on disk") and read access to it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from brats_utils.conventions import MODALITIES
from brats_utils.errors import BratsError, CaseError
from brats_utils.files import read_json
from brats_utils.preprocessing.settings import PreprocessSettings

__all__ = [
    "CACHE_VERSION",
    "MANIFEST_NAME",
    "CASES_DIR",
    "MAX_OPEN_CASES",
    "image_path",
    "label_path",
    "marker_path",
    "SliceCache",
    "open_cache",
]

CACHE_VERSION: int = 1
MANIFEST_NAME = "manifest.json"
CASES_DIR = "cases"


def image_path(cases_dir: Path, case_id: str) -> Path:
    return cases_dir / f"{case_id}.image.npy"


def label_path(cases_dir: Path, case_id: str) -> Path:
    return cases_dir / f"{case_id}.label.npy"


def marker_path(cases_dir: Path, case_id: str) -> Path:
    return cases_dir / f"{case_id}.json"


#: Most cases whose memory maps a SliceCache keeps open at once (each holds a file handle).
MAX_OPEN_CASES = 256


class SliceCache:
    """Read access to a slice cache, as read-only memory maps (pickling drops them)."""

    def __init__(self, cache_dir: Path | str):
        self.cache_dir = Path(cache_dir)
        manifest_path = self.cache_dir / MANIFEST_NAME
        if not manifest_path.is_file():
            raise BratsError(
                f"no slice cache at {self.cache_dir} ({MANIFEST_NAME} not found); build one "
                f"with `brats preprocess DATA_DIR --out {self.cache_dir}`"
            )
        self.manifest: dict[str, Any] = read_json(manifest_path, "cache manifest")
        version = self.manifest.get("cache_version")
        if version != CACHE_VERSION:
            raise BratsError(
                f"cache {self.cache_dir} has version {version!r}, this code reads version "
                f"{CACHE_VERSION}; rebuild it with `brats preprocess ... --overwrite`"
            )
        if tuple(self.manifest.get("modalities", ())) != MODALITIES:
            raise BratsError(
                f"cache {self.cache_dir} stores channels {self.manifest.get('modalities')}, "
                f"expected {list(MODALITIES)}"
            )
        self.settings = PreprocessSettings.from_dict(self.manifest["settings"])
        self._entries: dict[str, dict[str, Any]] = self.manifest.get("cases", {})
        self.case_ids: tuple[str, ...] = tuple(sorted(self._entries))
        self._open: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # loader worker threads share the open maps

    def __len__(self) -> int:
        return len(self.case_ids)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._entries

    def __repr__(self) -> str:
        return f"SliceCache({str(self.cache_dir)!r}, {len(self)} cases, {self.settings})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_open"], state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, case_id: str) -> dict[str, Any]:
        try:
            return self._entries[case_id]
        except KeyError:
            raise KeyError(f"case {case_id!r} is not in the cache {self.cache_dir}") from None

    def has_labels(self, case_id: str) -> bool:
        return bool(self.entry(case_id)["has_labels"])

    def n_slices(self, case_id: str) -> int:
        return int(self.entry(case_id)["n_slices"])

    def slice_indices(self, case_id: str) -> np.ndarray:
        """``(S,)`` int64 index in the source volume of each cached slice."""
        return np.asarray(self.entry(case_id)["slice_indices"], dtype=np.int64)

    def tumour_slices(self, case_id: str) -> np.ndarray:
        """Positions (0..S-1) of the slices holding tumour; empty without labels."""
        return np.asarray(self.entry(case_id)["tumour_slices"], dtype=np.int64)

    def _map(self, case_id: str, kind: str) -> np.memmap:
        key = (case_id, kind)
        with self._lock:
            array = self._open.get(key)
            if array is not None:
                self._open.move_to_end(key)
                return array
        size, n_slices = self.settings.size, self.n_slices(case_id)
        cases_dir = self.cache_dir / CASES_DIR
        if kind == "image":
            path = image_path(cases_dir, case_id)
            shape, dtype = (n_slices, size, size, len(MODALITIES)), np.dtype(np.float32)
        else:
            path = label_path(cases_dir, case_id)
            shape, dtype = (n_slices, size, size), np.dtype(np.uint8)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise CaseError(case_id, f"cannot read cached {kind}s: {exc}", path) from exc
        if array.shape != shape or array.dtype != dtype:
            raise CaseError(
                case_id,
                f"cached {kind}s are {array.shape} {array.dtype}, the manifest says {shape} "
                f"{dtype}; the cache is damaged, rebuild it with --overwrite",
                path,
            )
        with self._lock:
            self._open[key] = array
            while len(self._open) > 2 * MAX_OPEN_CASES:
                self._open.popitem(last=False)
        return array

    def images(self, case_id: str) -> np.memmap:
        """``(S, size, size, 4)`` float32 read-only memory map, channels in MODALITIES order."""
        return self._map(case_id, "image")

    def labels(self, case_id: str) -> np.memmap:
        """``(S, size, size)`` uint8 classes 0..3; ``CaseError`` if cached without labels."""
        if not self.has_labels(case_id):
            raise CaseError(case_id, "was cached without a segmentation (no labels)")
        return self._map(case_id, "label")


def open_cache(cache_dir: Path | str) -> SliceCache:
    return SliceCache(cache_dir)
