"""The slice cache's layout (docs/ARCHITECTURE.md, "Files on disk") and read access to it.

Version 2 stores per case and modality a float16 ``(S, h, w)`` array cropped to the box that
holds every non-zero voxel, so a 2-channel model reads only its two channels and no background.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brats_utils.conventions import MODALITIES
from brats_utils.errors import BratsError, CaseError
from brats_utils.files import read_json, write_npy
from brats_utils.preprocessing.settings import PreprocessSettings

__all__ = [
    "CACHE_VERSION",
    "MANIFEST_NAME",
    "CASES_DIR",
    "MAX_OPEN_MAPS",
    "channel_path",
    "marker_path",
    "write_case",
    "SliceCache",
    "open_cache",
]

CACHE_VERSION: int = 2
MANIFEST_NAME = "manifest.json"
CASES_DIR = "cases"


def channel_path(cases_dir: Path, case_id: str, channel: str) -> Path:
    """``channel``: a modality of MODALITIES, or ``"label"``."""
    return cases_dir / f"{case_id}.{channel}.npy"


def marker_path(cases_dir: Path, case_id: str) -> Path:
    return cases_dir / f"{case_id}.json"


def write_case(
    cases_dir: Path, case_id: str, images: np.ndarray, labels: np.ndarray | None
) -> list[int]:
    """Write ``(S, size, size, 4)`` images (and ``(S, size, size)`` labels) in the cache's layout;
    returns the crop ``[row0, row1, col0, col1]`` outside which every value is 0."""
    nonzero = np.any(images != 0, axis=(0, 3))
    if labels is not None:
        nonzero |= np.any(labels != 0, axis=0)
    rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
    r0, r1 = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 1)
    c0, c1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 1)
    for k, modality in enumerate(MODALITIES):  # preprocess_channels made them float16 values
        write_npy(
            channel_path(cases_dir, case_id, modality),
            images[:, r0:r1, c0:c1, k].astype(np.float16),
        )
    if labels is not None:
        write_npy(channel_path(cases_dir, case_id, "label"), labels[:, r0:r1, c0:c1])
    return [r0, r1, c0, c1]


def _max_open_maps() -> int:
    """Half the process's limit of open files (a map holds one), 64..8192."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no resource module on Windows
        return 512
    return 8192 if soft == resource.RLIM_INFINITY else max(64, min(8192, soft // 2))


#: Most memory maps (one per case and channel) a SliceCache keeps open; opening one costs
#: ~0.1-0.3 ms, so a training set's maps should all fit (3 per case for a 2-channel model).
MAX_OPEN_MAPS = _max_open_maps()


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

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._entries

    def __repr__(self) -> str:
        return f"SliceCache({str(self.cache_dir)!r}, {len(self.case_ids)} cases, {self.settings})"

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

    def _map(self, case_id: str, channel: str) -> np.memmap:
        key = (case_id, channel)
        with self._lock:
            array = self._open.get(key)
            if array is not None:
                self._open.move_to_end(key)
                return array
        r0, r1, c0, c1 = self.entry(case_id)["crop"]
        shape = (self.n_slices(case_id), r1 - r0, c1 - c0)
        dtype = np.dtype(np.uint8 if channel == "label" else np.float16)
        path = channel_path(self.cache_dir / CASES_DIR, case_id, channel)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise CaseError(case_id, f"cannot read cached {channel}: {exc}", path) from exc
        if array.shape != shape or array.dtype != dtype:
            raise CaseError(
                case_id,
                f"cached {channel} is {array.shape} {array.dtype}, the manifest says {shape} "
                f"{dtype}; the cache is damaged, rebuild it with --overwrite",
                path,
            )
        with self._lock:
            self._open[key] = array
            while len(self._open) > MAX_OPEN_MAPS:
                self._open.popitem(last=False)
        return array

    def _where(self, case_id: str, positions: np.ndarray | None):
        """The case's crop, the index of ``positions`` (all if None), the shape read."""
        n = self.n_slices(case_id) if positions is None else len(positions)
        index = slice(None) if positions is None else positions
        return self.entry(case_id)["crop"], index, (n, self.settings.size, self.settings.size)

    def read(
        self,
        case_id: str,
        positions: np.ndarray | None = None,
        channels: Sequence[str] = MODALITIES,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(N, size, size, C)`` float32 slices at ``positions`` (default all), channels in the
        given order, written into ``out`` if given."""
        (r0, r1, c0, c1), index, shape = self._where(case_id, positions)
        if out is None:
            out = np.empty((*shape, len(channels)), dtype=np.float32)
        out[:, :r0], out[:, r1:], out[:, :, :c0], out[:, :, c1:] = 0, 0, 0, 0
        for k, channel in enumerate(channels):
            out[:, r0:r1, c0:c1, k] = self._map(case_id, channel)[index]
        return out

    def images(self, case_id: str) -> np.ndarray:
        """``(S, size, size, 4)`` float32, channels in MODALITIES order."""
        return self.read(case_id)

    def labels(self, case_id: str, positions: np.ndarray | None = None) -> np.ndarray:
        """``(N, size, size)`` uint8 classes 0..3 at ``positions`` (default all); ``CaseError`` if
        cached without labels."""
        if not self.has_labels(case_id):
            raise CaseError(case_id, "was cached without a segmentation (no labels)")
        (r0, r1, c0, c1), index, shape = self._where(case_id, positions)
        labels = np.zeros(shape, dtype=np.uint8)
        labels[:, r0:r1, c0:c1] = self._map(case_id, "label")[index]
        return labels


def open_cache(cache_dir: Path | str) -> SliceCache:
    return SliceCache(cache_dir)
