"""Finding, reading and checking BraTS cases of any release (``CaseError``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.conventions import (
    AFFINE_TOLERANCE_MM,
    LEGACY,
    MODALITIES,
    RELEASES,
    VOLUME_SHAPE,
    Release,
    labels_to_classes,
)
from brats_utils.data.nifti import nifti_stem, read_nifti, read_nifti_header
from brats_utils.errors import BratsError, CaseError

__all__ = [
    "KINDS",
    "Reference",
    "consensus_reference",
    "shape_problem",
    "affine_problem",
    "CaseFiles",
    "Case",
    "discover_cases",
    "select_cases",
    "find_case",
    "CaseVolumes",
    "read_case_volumes",
    "load_case",
]

KINDS: tuple[str, ...] = (*MODALITIES, "seg")


@dataclass(frozen=True)
class Reference:
    """The shape and affine the other files of a case must match."""

    kind: str
    shape: tuple[int, ...]
    affine: np.ndarray


def consensus_reference(paths: Mapping[str, Path | None], case_id: str = "") -> Reference | None:
    """The geometry most files of a case share (ties: earliest of :data:`KINDS`), or ``None``."""
    groups: list[tuple[Reference, int]] = []
    for kind in (k for k in KINDS if paths.get(k) is not None):
        try:
            image = read_nifti_header(paths[kind], case_id)
        except CaseError:
            continue
        shape, affine = tuple(int(s) for s in image.shape), np.asarray(image.affine)
        for i, (reference, count) in enumerate(groups):
            same_affine = np.allclose(affine, reference.affine, atol=AFFINE_TOLERANCE_MM)
            if reference.shape == shape and same_affine:
                groups[i] = (reference, count + 1)
                break
        else:
            groups.append((Reference(kind, shape, affine), 1))
    # max keeps the first of equal counts
    return max(groups, key=lambda group: group[1])[0] if groups else None


def shape_problem(
    kind: str,
    shape: tuple[int, ...],
    reference: Reference | None,
    expected_shape: Sequence[int] | None,
) -> str | None:
    expected = tuple(expected_shape) if expected_shape is not None else None
    expected = expected or (reference.shape if reference is not None else None)
    if expected is None or shape == expected:
        return None
    like = f" like {reference.kind}" if reference and reference.shape == expected else ""
    return f"{kind} has shape {shape}, expected {expected}{like}"


def affine_problem(kind: str, affine: np.ndarray, reference: Reference | None) -> str | None:
    if reference is None or np.allclose(affine, reference.affine, atol=AFFINE_TOLERANCE_MM):
        return None
    difference = float(np.max(np.abs(affine - reference.affine)))
    return f"{kind} affine differs from {reference.kind}'s by up to {difference:.3g} mm"


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case folder (nothing read), ``None`` if missing; ``extra``: other NIfTI;
    ``problem``: why an entry that looks like a case cannot be read as one (no files then)."""

    case_id: str
    folder: Path
    release: Release
    modalities: dict[str, Path | None]
    seg: Path | None
    extra: tuple[Path, ...] = ()
    problem: str | None = None

    def path(self, kind: str) -> Path | None:
        return self.seg if kind == "seg" else self.modalities[kind]


@dataclass
class Case:
    """One case: ``image`` (X, Y, Z, 4) float32 in MODALITIES order, scanner units; ``seg``
    (X, Y, Z) uint8 classes 0..3 or ``None``; the first file's ``affine`` (mm) and ``header``."""

    case_id: str
    image: np.ndarray
    seg: np.ndarray | None
    affine: np.ndarray
    header: nib.Nifti1Header
    release: Release
    files: CaseFiles


def _match_folder(folder: Path, names: Iterable[str]) -> CaseFiles | None:
    case_id = folder.name
    # .nii.gz before .nii, so the compressed file wins when both exist.
    niftis = sorted(
        (n for n in names if not n.startswith(".") and nifti_stem(n) is not None),
        key=lambda n: (not n.endswith(".nii.gz"), n),
    )
    best: tuple[Release, dict[str, Path], list[Path]] | None = None
    for release in RELEASES.values():
        kind_of = {release.file_name(case_id, kind, ext=""): kind for kind in KINDS}
        found: dict[str, Path] = {}
        others: list[Path] = []
        for name in niftis:
            kind = kind_of.get(nifti_stem(name) or "")
            if kind is not None and kind not in found:
                found[kind] = folder / name
            else:
                others.append(folder / name)
        if found and (best is None or len(found) > len(best[1])):
            best = (release, found, others)
    if best is None:
        return None
    release, found, others = best
    return CaseFiles(
        case_id=case_id,
        folder=folder,
        release=release,
        modalities={m: found.get(m) for m in MODALITIES},
        seg=found.get("seg"),
        extra=tuple(sorted(others)),
    )


def discover_cases(root: Path | str) -> list[CaseFiles]:
    """Every case folder under ``root``, sorted, and what looks like a case but cannot be read
    as one (a leaf folder of NIfTI files named for no case, a broken link, a folder that cannot
    be listed), its ``problem`` saying why; ``BratsError`` if ``root`` is none or ids repeat."""
    root = Path(root)
    if not root.is_dir():
        raise BratsError(f"data folder not found: {root}")
    cases: dict[str, CaseFiles] = {}
    visited: set[str] = set()

    def add(files: CaseFiles | None, path: Path, problem: str) -> None:
        files = files or CaseFiles(path.name, path, LEGACY, dict.fromkeys(MODALITIES), None,
                                   problem=problem)  # fmt: skip
        if files.case_id in cases:
            first = cases[files.case_id].folder
            raise BratsError(f"case {files.case_id} found twice: {first} and {files.folder}")
        cases[files.case_id] = files

    def unlisted(exc: OSError) -> None:
        add(None, Path(exc.filename), f"cannot list the folder: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted, followlinks=True):
        folder, real = Path(dirpath), os.path.realpath(dirpath)
        if real in visited:  # a link loop or a folder reached twice
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = _match_folder(folder, filenames)
        niftis = sorted(n for n in filenames if nifti_stem(n) and not n.startswith("."))
        if files is not None or (niftis and not dirnames):
            dirnames[:] = []  # a case folder holds no further cases
            example = LEGACY.file_name(folder.name, "flair")
            add(files, folder, f"no file named like {example} (found {', '.join(niftis[:3])})")
            continue
        for name in filenames:
            if not name.startswith(".") and not os.path.exists(folder / name):
                add(None, folder / name, f"broken link to {os.readlink(folder / name)}")
    return [cases[case_id] for case_id in sorted(cases)]


def select_cases(root: Path | str, case_ids: Iterable[str] | None = None) -> list[CaseFiles]:
    """:func:`discover_cases`, or only ``case_ids``; ``BratsError`` if none or an id is unknown."""
    cases = discover_cases(root)
    if not cases:
        raise BratsError(
            f"no case folders found under {root} (expected folders like "
            "BraTS2021_00000/BraTS2021_00000_flair.nii.gz; synthetic ones: "
            f"`brats synth --out {root} --cases 24`)"
        )
    if case_ids is None:
        return cases
    wanted = set(case_ids)
    unknown = sorted(wanted - {files.case_id for files in cases})
    if unknown:
        raise BratsError(f"cases not found under {root}: {', '.join(unknown[:10])}")
    return [files for files in cases if files.case_id in wanted]


def find_case(root: Path | str, case_id: str) -> CaseFiles:
    """The case ``case_id`` under ``root``, else ``CaseError``."""
    for files in discover_cases(root):
        if files.case_id == case_id:
            return files
    raise CaseError(case_id, "no case folder of that name", root)


@dataclass
class CaseVolumes:
    """A case's checked voxels: ``channels``, four (X, Y, Z) arrays in MODALITIES order, on-disk
    dtype, Fortran-ordered; ``seg`` uint8 classes 0..3 or ``None``; ``image`` the first file's."""

    channels: tuple[np.ndarray, ...]
    seg: np.ndarray | None
    image: nib.Nifti1Image


def _checked_volume(
    case_id: str,
    kind: str,
    path: Path,
    reference: Reference | None,
    expected_shape: Sequence[int] | None,
) -> tuple[np.ndarray, nib.Nifti1Image]:
    data, image = read_nifti(path, case_id)
    message = shape_problem(kind, data.shape, reference, expected_shape)
    if message is None:
        message = affine_problem(kind, image.affine, reference)
    if message is None and data.ndim != 3:
        message = f"{kind} has shape {data.shape}, expected a 3D volume"
    if message is not None:
        raise CaseError(case_id, message, path)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise CaseError(case_id, f"{kind} has NaN or infinite voxels", path)
    return data, image


def _folder_shape(data_dir: Path, expected_shape: Sequence[int] | None):
    """For ``VOLUME_SHAPE``, the shape a synthetic data folder records, if any; else as given."""
    from brats_utils.data.synth import RECIPE_FILE
    from brats_utils.files import read_json

    recipe = data_dir / RECIPE_FILE
    if expected_shape is None or tuple(expected_shape) != VOLUME_SHAPE or not recipe.is_file():
        return expected_shape
    return tuple(read_json(recipe, "synthetic data recipe")["shape"])


def read_case_volumes(
    files: CaseFiles,
    *,
    require_seg: bool = False,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
) -> CaseVolumes:
    """Read a case's files once, in their on-disk dtype, and check them; ``CaseError`` naming
    case and file on the first problem (``expected_shape`` ``None``: all 3D and equal)."""
    case_id, release = files.case_id, files.release
    if files.problem is not None:
        raise CaseError(case_id, files.problem, files.folder)
    missing = [m for m in MODALITIES if files.modalities[m] is None]
    if missing:
        names = ", ".join(release.file_name(case_id, m) for m in missing)
        raise CaseError(case_id, f"missing modality {', '.join(missing)} ({names})", files.folder)
    if require_seg and files.seg is None:
        name = release.file_name(case_id, "seg")
        raise CaseError(case_id, f"no segmentation file (expected {name})", files.folder)

    expected_shape = _folder_shape(files.folder.parent, expected_shape)
    volumes: list[tuple[np.ndarray, nib.Nifti1Image]] = []
    reference = consensus_reference({k: files.path(k) for k in KINDS}, case_id)
    for modality in MODALITIES:
        path = files.modalities[modality]
        data, image = _checked_volume(case_id, modality, path, reference, expected_shape)
        reference = reference or Reference(modality, data.shape, image.affine)
        volumes.append((data, image))

    seg = None
    if files.seg is not None:
        data, _ = _checked_volume(case_id, "seg", files.seg, reference, expected_shape)
        try:
            seg = labels_to_classes(data, release)
        except ValueError as exc:
            raise CaseError(case_id, f"seg: {exc}", files.seg) from exc
    return CaseVolumes(channels=tuple(data for data, _ in volumes), seg=seg, image=volumes[0][1])


def load_case(
    files: CaseFiles,
    *,
    require_seg: bool = False,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
) -> Case:
    """:func:`read_case_volumes` of a case as a float32 :class:`Case`."""
    volumes = read_case_volumes(files, require_seg=require_seg, expected_shape=expected_shape)
    image = np.empty((*volumes.channels[0].shape, len(MODALITIES)), dtype=np.float32)
    for channel, data in enumerate(volumes.channels):
        image[..., channel] = data
    return Case(
        case_id=files.case_id,
        image=image,
        seg=volumes.seg,
        affine=np.asarray(volumes.image.affine, dtype=np.float64),
        header=volumes.image.header,
        release=files.release,
        files=files,
    )
