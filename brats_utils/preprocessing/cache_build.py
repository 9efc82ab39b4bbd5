"""Building the slice cache (``brats preprocess``), resumable after a kill."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from brats_utils import __version__
from brats_utils.conventions import MODALITIES, NUM_CLASSES, VOLUME_SHAPE
from brats_utils.data.cases import CaseFiles, select_cases
from brats_utils.errors import BratsError, CaseError
from brats_utils.files import in_workers, read_json, remove_stale_temporaries, write_json
from brats_utils.preprocessing.cache import (
    CACHE_VERSION,
    CASES_DIR,
    MANIFEST_NAME,
    channel_path,
    marker_path,
    write_case,
)
from brats_utils.preprocessing.settings import PreprocessSettings
from brats_utils.preprocessing.slices import preprocess_files

__all__ = ["CacheReport", "build_cache"]

_MANIFEST_EVERY_S = 30.0


@dataclass
class CacheReport:
    """What :func:`build_cache` did; ``written`` False when every case of a new cache failed."""

    cache_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    written: bool = True

    def summary(self) -> str:
        where = self.cache_dir if self.written else "nothing cached, no cache written"
        return (
            f"{len(self.done)} cases preprocessed, {len(self.skipped)} already cached, "
            f"{len(self.failed)} failed -> {where}"
        )


def _cache_one_case(
    files: CaseFiles, cases_dir: Path, settings: PreprocessSettings, expected_shape: Any
) -> tuple[str, dict[str, Any] | None, str | None]:
    """``(case_id, entry, None)``, or ``(case_id, None, why)`` for a CaseError (others raise)."""
    case_id = files.case_id
    try:
        images, labels, kept = preprocess_files(files, settings, expected_shape=expected_shape)
        crop = write_case(cases_dir, case_id, images, labels)
    except CaseError as exc:
        return case_id, None, str(exc)
    tumour: list[int] = []
    counts = None
    if labels is not None:
        tumour = np.flatnonzero(labels.reshape(len(labels), -1).max(axis=1) > 0).tolist()
        counts = np.bincount(labels.ravel(), minlength=NUM_CLASSES).tolist()
    entry = {
        "case_id": case_id,
        "n_slices": len(kept),
        "slice_indices": kept.tolist(),
        "has_labels": labels is not None,
        "crop": crop,
        "tumour_slices": tumour,
        "label_counts": counts,
        "source": str(files.folder),
    }
    write_json(marker_path(cases_dir, case_id), entry, indent=None)
    return case_id, entry, None


def _finished_entries(cases_dir: Path) -> dict[str, dict[str, Any]]:
    entries = {}
    for marker in sorted(cases_dir.glob("*.json")):
        if marker.name.startswith("."):
            continue
        try:
            entry = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # unreadable marker: the case is redone
        case_id = entry.get("case_id")
        channels = [*MODALITIES, "label"] if entry.get("has_labels") else MODALITIES
        if case_id is None or not all(
            channel_path(cases_dir, case_id, c).is_file() for c in channels
        ):
            continue
        entries[case_id] = entry
    return entries


def _manifest(
    settings: PreprocessSettings, data_dir: Path, entries: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "cache_version": CACHE_VERSION,
        "created_by": f"brats-unet {__version__}",
        "settings": settings.to_dict(),
        "modalities": list(MODALITIES),
        "num_classes": NUM_CLASSES,
        "data_dir": str(data_dir.resolve()),
        "cases": {case_id: entries[case_id] for case_id in sorted(entries)},
    }


def _prepare_cache_dir(cache_dir: Path, settings: PreprocessSettings, overwrite: bool) -> None:
    manifest_path = cache_dir / MANIFEST_NAME
    cases_dir = cache_dir / CASES_DIR
    if manifest_path.is_file():
        if overwrite:
            manifest_path.unlink()
            if cases_dir.is_dir():
                for path in cases_dir.iterdir():
                    if path.is_file() and (path.suffix in (".npy", ".json") or ".tmp" in path.name):
                        path.unlink()
            return
        manifest = read_json(manifest_path, "cache manifest")
        try:  # settings added since the cache was built take their defaults
            found = PreprocessSettings.from_dict(manifest.get("settings", {})).to_dict()
        except (TypeError, ValueError):
            found = manifest.get("settings", {})
        wanted = settings.to_dict()
        differences = [
            f"{k}={found.get(k)!r} (this run: {wanted.get(k)!r})"
            for k in sorted(set(found) | set(wanted))
            if found.get(k) != wanted.get(k)
        ]
        if manifest.get("cache_version") != CACHE_VERSION:
            differences.insert(
                0, f"cache_version={manifest.get('cache_version')!r} (this run: {CACHE_VERSION})"
            )
        if differences:
            raise BratsError(
                f"the cache at {cache_dir} was built with different settings: "
                f"{'; '.join(differences)}. Use another --out folder, or --overwrite to "
                "delete this cache and rebuild it"
            )
    elif cache_dir.is_dir() and any(cache_dir.iterdir()):
        raise BratsError(
            f"{cache_dir} is not empty and holds no {MANIFEST_NAME}, so it is not a slice "
            "cache; choose a new or empty --out folder"
        )


def build_cache(
    data_dir: Path | str,
    cache_dir: Path | str,
    settings: PreprocessSettings | None = None,
    *,
    case_ids: Sequence[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
) -> CacheReport:
    """Preprocess every case of ``data_dir`` once into ``cache_dir`` (resumable)."""
    settings = settings or PreprocessSettings()
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    if workers < 1:
        raise BratsError(f"workers must be at least 1, got {workers}")
    if expected_shape is not None:  # a slice range no case can have, refused before any work
        try:
            settings.slice_indices(int(expected_shape[-1]))
        except CaseError as exc:
            raise BratsError(
                f"--slices {settings.slice_start}:{settings.slice_stop}: every case must have "
                f"{expected_shape[-1]} axial slices (use --slices all or a range inside them)"
            ) from exc
    selected = select_cases(data_dir, case_ids)
    new_cache = not (cache_dir / MANIFEST_NAME).exists()
    made_folder = not cache_dir.exists()
    _prepare_cache_dir(cache_dir, settings, overwrite)
    cases_dir = cache_dir / CASES_DIR
    cases_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cases_dir)
    entries = _finished_entries(cases_dir)
    manifest_path = cache_dir / MANIFEST_NAME
    write_json(manifest_path, _manifest(settings, data_dir, entries), indent=None)

    report = CacheReport(cache_dir=cache_dir)
    report.skipped = [f.case_id for f in selected if f.case_id in entries]
    todo = [f for f in selected if f.case_id not in entries]
    bar = tqdm(total=len(todo), unit="case", desc="preprocessing", disable=not progress)
    last_write = time.monotonic()
    cache = partial(
        _cache_one_case, cases_dir=cases_dir, settings=settings, expected_shape=expected_shape
    )
    try:
        for case_id, entry, reason in in_workers(cache, todo, workers):
            if entry is None:
                report.failed.append((case_id, reason or "unknown error"))
                if progress:
                    bar.write(f"failed {reason}")
            else:
                report.done.append(case_id)
                entries[case_id] = entry
            bar.update(1)
            if time.monotonic() - last_write > _MANIFEST_EVERY_S:
                write_json(manifest_path, _manifest(settings, data_dir, entries), indent=None)
                last_write = time.monotonic()
    finally:
        bar.close()
        entries = _finished_entries(cases_dir)
        write_json(manifest_path, _manifest(settings, data_dir, entries), indent=None)
    if new_cache and not entries:  # every case failed: no empty cache is left behind
        manifest_path.unlink(missing_ok=True)
        for folder in (cases_dir, cache_dir) if made_folder else (cases_dir,):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        report.written = False
    return report
