"""Finding, loading and validating BraTS cases of any release.

A *case folder* is a folder holding at least one file named
``<folder name><separator><suffix>.nii[.gz]`` for a known :class:`~brats_utils.conventions.Release`
(``BraTS2021_00000/BraTS2021_00000_flair.nii.gz``, ``Brats18_TCIA01_201_1/..._t1ce.nii``,
``BraTS-GLI-00000-000/BraTS-GLI-00000-000-t2f.nii.gz``). Case folders are searched for
recursively, so BraTS 2018's ``HGG/`` and ``LGG/`` subfolders work, and the root may itself
be one case folder. The case id is the folder name.

Discovery only looks at file names; :func:`load_case` returns the arrays the rest of the
library uses and raises :class:`~brats_utils.errors.CaseError` on the first problem that would
make them wrong (its checks live in :func:`read_case_volumes`, which the cache builder and
inference also use); :func:`brats_utils.data.validation.validate_case` reads every file once
and reports every problem it finds. Both use the checks of :mod:`brats_utils.data.checks`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.conventions import MODALITIES, RELEASES, VOLUME_SHAPE, Release, labels_to_classes
from brats_utils.data.checks import (
    KINDS,
    Reference,
    affine_problem,
    consensus_reference,
    nifti_stem,
    shape_problem,
)
from brats_utils.data.nifti import read_nifti
from brats_utils.errors import BratsError, CaseError

__all__ = [
    "CaseFiles",
    "Case",
    "discover_cases",
    "find_case",
    "case_files_in",
    "CaseVolumes",
    "read_case_volumes",
    "load_case",
]


@dataclass(frozen=True)
class CaseFiles:
    """What discovery found in one case folder (file names only, nothing read).

    Attributes:
        case_id: the folder name, e.g. ``"BraTS2021_00042"``.
        folder: the case folder.
        release: the naming/label convention the files follow.
        modalities: path per modality, keys in :data:`MODALITIES` order; ``None`` = missing.
        seg: the segmentation file, ``None`` when absent (validation/test data).
        extra: other NIfTI files in the folder (a misnamed segmentation, or a ``.nii``
            duplicate of a ``.nii.gz`` file, which is the one used).
    """

    case_id: str
    folder: Path
    release: Release
    modalities: dict[str, Path | None]
    seg: Path | None
    extra: tuple[Path, ...] = ()

    def path(self, kind: str) -> Path | None:
        """Path of ``kind`` (a modality or ``"seg"``), ``None`` if missing."""
        return self.seg if kind == "seg" else self.modalities[kind]


@dataclass
class Case:
    """One case in memory.

    Attributes:
        case_id: the case id.
        image: (240, 240, 155, 4) float32, channels in :data:`MODALITIES` order, scanner units.
        seg: (240, 240, 155) uint8 internal classes 0..3, or ``None`` without segmentation.
        affine: (4, 4) voxel-to-world matrix of the first modality file (mm).
        header: header of the first modality file, to write predictions back.
        release: the case's release (its labels are used when writing back).
        files: the files it was read from.
    """

    case_id: str
    image: np.ndarray
    seg: np.ndarray | None
    affine: np.ndarray
    header: nib.Nifti1Header
    release: Release
    files: CaseFiles


def _match_folder(folder: Path, names: Iterable[str]) -> CaseFiles | None:
    """CaseFiles for ``folder`` if its files follow a release's naming, else ``None``."""
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


def case_files_in(folder: Path | str) -> CaseFiles:
    """The files of one case folder.

    Raises:
        CaseError: if ``folder`` does not exist or holds no file named like a case's.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CaseError(folder.name, "case folder not found", folder)
    files = _match_folder(folder, os.listdir(folder))
    if files is None:
        example = RELEASES["legacy"].file_name(folder.name, "flair")
        raise CaseError(folder.name, f"not a case folder: no file named like {example}", folder)
    return files


def discover_cases(root: Path | str) -> list[CaseFiles]:
    """Find every case folder under ``root`` (recursively, following links), any release.

    Args:
        root: a data folder, or one case folder.

    Returns:
        The cases sorted by case id; empty if there are none.

    Raises:
        BratsError: if ``root`` is not a folder, or two folders hold the same case id.
    """
    root = Path(root)
    if not root.is_dir():
        raise BratsError(f"data folder not found: {root}")
    cases: dict[str, CaseFiles] = {}
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a link loop or a folder reached twice
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = _match_folder(Path(dirpath), filenames)
        if files is None:
            continue
        dirnames[:] = []  # a case folder holds no further cases
        if files.case_id in cases:
            first = cases[files.case_id].folder
            raise BratsError(f"case {files.case_id} found twice: {first} and {files.folder}")
        cases[files.case_id] = files
    return [cases[case_id] for case_id in sorted(cases)]


def find_case(root: Path | str, case_id: str) -> CaseFiles:
    """The case ``case_id`` under ``root`` (looked for as ``root/case_id`` first).

    Raises:
        CaseError: if no case folder of that name exists under ``root``.
    """
    direct = Path(root) / case_id
    if direct.is_dir():
        files = _match_folder(direct, os.listdir(direct))
        if files is not None:
            return files
    for files in discover_cases(root):
        if files.case_id == case_id:
            return files
    raise CaseError(case_id, "no case folder of that name", root)


@dataclass
class CaseVolumes:
    """A case's voxels as stored on disk, checked (see :func:`read_case_volumes`).

    Attributes:
        channels: four (x, y, z) arrays in :data:`MODALITIES` order, in the on-disk dtype
            (int16 for BraTS) as nibabel returns them (Fortran-ordered), scanner units.
        seg: (x, y, z) uint8 internal classes 0..3, or ``None`` without segmentation.
        image: the nibabel image of the first modality (its ``affine`` and ``header``).
    """

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
    """One file's voxels (on-disk dtype) and image; raises CaseError on a wrong shape or NaN."""
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
    """For ``VOLUME_SHAPE``, the shape a synthetic data folder records its cases were drawn
    with (``brats synth --shape``), if it does; any other ``expected_shape`` as given."""
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
    """Read a case's files once, in their on-disk dtype, and check them.

    The one place that checks what :func:`load_case` (float32 image) and the cache builder
    (:func:`brats_utils.preprocessing.slices.preprocess_files`, from the int16 volumes) read.

    Args:
        files: the case, from :func:`discover_cases` or :func:`case_files_in`.
        require_seg: raise if the case has no segmentation.
        expected_shape: shape every file must have (``VOLUME_SHAPE``: or the shape a synthetic
            data folder records); ``None`` only requires all to agree (and to be 3D).

    Returns:
        The :class:`CaseVolumes`: four modality arrays as stored, seg as classes 0..3.

    Raises:
        CaseError: naming case and file, for a missing modality (or segmentation with
            ``require_seg``), an unreadable file, a wrong shape, NaN/inf intensities or
            invalid labels, whichever comes first.
    """
    case_id, release = files.case_id, files.release
    missing = [m for m in MODALITIES if files.modalities[m] is None]
    if missing:
        names = ", ".join(release.file_name(case_id, m) for m in missing)
        raise CaseError(case_id, f"missing modality {', '.join(missing)} ({names})", files.folder)
    if require_seg and files.seg is None:
        name = release.file_name(case_id, "seg")
        raise CaseError(case_id, f"no segmentation file (expected {name})", files.folder)

    expected_shape = _folder_shape(files.folder.parent, expected_shape)
    channels: list[np.ndarray] = []
    reference = consensus_reference({k: files.path(k) for k in KINDS}, case_id)
    first_image = None
    for modality in MODALITIES:
        path = files.modalities[modality]
        data, image = _checked_volume(case_id, modality, path, reference, expected_shape)
        if reference is None:
            reference = Reference(modality, data.shape, image.affine)
        if first_image is None:
            first_image = image
        channels.append(data)

    seg = None
    if files.seg is not None:
        data, _ = _checked_volume(case_id, "seg", files.seg, reference, expected_shape)
        try:
            seg = labels_to_classes(data, release)
        except ValueError as exc:
            raise CaseError(case_id, f"seg: {exc}", files.seg) from exc
    return CaseVolumes(channels=tuple(channels), seg=seg, image=first_image)


def load_case(
    case: CaseFiles | str | Path,
    *,
    require_seg: bool = False,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
) -> Case:
    """Read a case's four modalities and its segmentation (if any).

    Args:
        case: files from :func:`discover_cases`, or the path of a case folder.
        require_seg: raise if the case has no segmentation.
        expected_shape: shape every file must have; ``None`` only requires all to agree.

    Returns:
        The :class:`Case`: image (x, y, z, 4) float32 in :data:`MODALITIES` order, seg
        (x, y, z) uint8 classes 0..3 or ``None``.

    Raises:
        CaseError: naming case and file, for a missing modality (or segmentation with
            ``require_seg``), an unreadable file, a wrong shape, NaN/inf intensities or
            invalid labels (see :func:`read_case_volumes`). Use :func:`validate_case` for the
            full list of problems.
    """
    files = case if isinstance(case, CaseFiles) else case_files_in(case)
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
