"""Finding, loading and validating BraTS cases of any release.

A *case folder* is a folder holding at least one file named
``<folder name><separator><suffix>.nii[.gz]`` for a known :class:`~brats_utils.conventions.Release`
(``BraTS2021_00000/BraTS2021_00000_flair.nii.gz``, ``Brats18_TCIA01_201_1/..._t1ce.nii``,
``BraTS-GLI-00000-000/BraTS-GLI-00000-000-t2f.nii.gz``). Case folders are searched for
recursively, so BraTS 2018's ``HGG/`` and ``LGG/`` subfolders work, and the root may itself
be one case folder. The case id is the folder name.

Discovery only looks at file names; :func:`validate_case` reads every file once and reports
every problem it finds; :func:`load_case` returns the arrays the rest of the library uses and
raises :class:`~brats_utils.errors.CaseError` on the first problem that would make them wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from brats_utils.conventions import MODALITIES, RELEASES, VOLUME_SHAPE, Release, labels_to_classes
from brats_utils.errors import BratsError, CaseError
from brats_utils.nifti import NIFTI_EXTS, read_nifti

__all__ = [
    "KINDS",
    "CaseFiles",
    "Case",
    "Problem",
    "discover_cases",
    "find_case",
    "case_files_in",
    "load_case",
    "validate_case",
    "validate_cases",
    "check_dataset",
    "has_errors",
]

#: File kinds of a case: the modalities in channel order, then the segmentation.
KINDS: tuple[str, ...] = (*MODALITIES, "seg")
#: Largest difference (mm) tolerated between two files' affines.
AFFINE_TOLERANCE_MM = 1e-3


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


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`validate_case`; ``str()`` gives ``case: message (file)``.

    ``warning`` problems (a stray NIfTI file, a duplicate) do not make the case invalid.
    """

    case_id: str
    path: Path | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        file_part = f" ({self.path})" if self.path is not None else ""
        return f"{self.case_id}: {self.message}{file_part}"


def has_errors(problems: Iterable[Problem]) -> bool:
    """True if any problem is an error (not a warning): the case is invalid."""
    return any(not p.warning for p in problems)


def _nifti_stem(name: str) -> str | None:
    for ext in NIFTI_EXTS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


def _match_folder(folder: Path, names: Iterable[str]) -> CaseFiles | None:
    """CaseFiles for ``folder`` if its files follow a release's naming, else ``None``."""
    case_id = folder.name
    # .nii.gz before .nii, so the compressed file wins when both exist.
    niftis = sorted(
        (n for n in names if not n.startswith(".") and _nifti_stem(n) is not None),
        key=lambda n: (not n.endswith(".nii.gz"), n),
    )
    best: tuple[Release, dict[str, Path], list[Path]] | None = None
    for release in RELEASES.values():
        kind_of = {release.file_name(case_id, kind, ext=""): kind for kind in KINDS}
        found: dict[str, Path] = {}
        others: list[Path] = []
        for name in niftis:
            kind = kind_of.get(_nifti_stem(name) or "")
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


@dataclass(frozen=True)
class _Reference:
    kind: str
    shape: tuple[int, ...]
    affine: np.ndarray


def _shape_problem(
    kind: str,
    shape: tuple[int, ...],
    reference: _Reference | None,
    expected_shape: Sequence[int] | None,
) -> str | None:
    """Message if ``shape`` is not ``expected_shape`` (or the reference's shape), else None."""
    expected = tuple(expected_shape) if expected_shape is not None else None
    if expected is None and reference is not None:
        expected = reference.shape
    if expected is None or shape == expected:
        return None
    like = f" like {reference.kind}" if reference and reference.shape == expected else ""
    return f"{kind} has shape {shape}, expected {expected}{like}"


def _affine_problem(kind: str, affine: np.ndarray, reference: _Reference | None) -> str | None:
    if reference is None or np.allclose(affine, reference.affine, atol=AFFINE_TOLERANCE_MM):
        return None
    difference = float(np.max(np.abs(affine - reference.affine)))
    return f"{kind} affine differs from {reference.kind}'s by up to {difference:.3g} mm"


def _bare_message(exc: CaseError) -> str:
    """A CaseError's message without the ``case: `` prefix and `` (path)`` suffix."""
    text = str(exc)
    prefix, suffix = f"{exc.case_id}: ", f" ({exc.path})"
    text = text[len(prefix) :] if exc.case_id and text.startswith(prefix) else text
    return text[: -len(suffix)] if exc.path is not None and text.endswith(suffix) else text


def validate_case(
    files: CaseFiles,
    *,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
    require_seg: bool = False,
) -> list[Problem]:
    """Read every file of a case once and report every problem (never stops at the first).

    Checks: missing modality (and segmentation if ``require_seg``), unreadable or truncated
    files, shape different from ``expected_shape`` or from the first modality, affines that
    differ between files, NaN/inf voxels, an all-zero modality, segmentation labels outside
    the release's set or not whole numbers. Stray NIfTI files are reported as warnings only
    when the segmentation is missing (e.g. BraTS 2020 case 355's misnamed segmentation);
    a ``.nii`` duplicate of a ``.nii.gz`` file always is.

    Args:
        files: the case, from :func:`discover_cases`.
        expected_shape: shape every file must have; ``None`` only requires all to agree.
        require_seg: report a missing segmentation (training data).

    Returns:
        The problems found, in file order; empty if the case is clean.
    """
    problems: list[Problem] = []

    def report(message: str, path: Path | None, warning: bool = False) -> None:
        problems.append(Problem(files.case_id, path, message, warning))

    reference: _Reference | None = None
    for kind in KINDS:
        path = files.path(kind)
        if path is None:
            if kind != "seg" or require_seg:
                expected_name = files.release.file_name(files.case_id, kind)
                report(f"{kind} file missing (expected {expected_name})", files.folder)
            continue
        try:
            data, image = read_nifti(path, files.case_id)
        except CaseError as exc:
            report(f"{kind}: {_bare_message(exc)}", path)
            continue
        geometry = [
            _shape_problem(kind, data.shape, reference, expected_shape),
            _affine_problem(kind, image.affine, reference),
        ]
        for message in geometry:
            if message is not None:
                report(message, path)
        if reference is None:
            reference = _Reference(kind, data.shape, image.affine)
        if kind == "seg":
            try:
                labels_to_classes(data, files.release)
            except ValueError as exc:
                report(f"seg: {exc}", path)
            continue
        if data.dtype.kind == "f":
            n_bad = data.size - np.count_nonzero(np.isfinite(data))
            if n_bad:
                report(f"{kind} has {n_bad} NaN or infinite voxels", path)
        if not np.any(data):
            report(f"{kind} is all zeros", path)

    by_stem = {files.release.file_name(files.case_id, k, ext=""): k for k in KINDS}
    for path in files.extra:
        kind = by_stem.get(_nifti_stem(path.name) or "")
        if kind is not None:
            report(f"duplicate {kind} file, using {files.path(kind)}", path, warning=True)
        elif files.seg is None:
            expected_name = files.release.file_name(files.case_id, "seg")
            report(
                f"unrecognised NIfTI file; a misnamed segmentation? (expected {expected_name})",
                path,
                warning=True,
            )
    return problems


def validate_cases(
    cases: Sequence[CaseFiles],
    *,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
    require_seg: bool = False,
    workers: int = 1,
) -> Iterator[tuple[CaseFiles, list[Problem]]]:
    """:func:`validate_case` over many cases, in order, optionally in ``workers`` processes.

    Yields:
        ``(files, problems)`` per case, as soon as it is checked.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    check = partial(validate_case, expected_shape=expected_shape, require_seg=require_seg)
    if workers == 1 or len(cases) < 2:
        for files in cases:
            yield files, check(files)
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(cases)))
    try:
        yield from zip(cases, pool.map(check, cases), strict=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_dataset(
    root: Path | str,
    *,
    require_seg: bool = False,
    progress: bool = True,
    expected_shape: Sequence[int] | None = VOLUME_SHAPE,
    workers: int = 1,
) -> dict[str, list[Problem]]:
    """Validate every case under ``root``.

    Args:
        root: data folder (or one case folder).
        require_seg: a missing segmentation is a problem (training data).
        progress: show a progress bar.
        expected_shape: shape every file must have (``None``: only consistency).
        workers: number of processes reading files.

    Returns:
        ``{case_id: problems}`` for every case, sorted by case id; use :func:`has_errors`
        to tell invalid cases from clean ones or ones with warnings only.

    Raises:
        BratsError: if ``root`` is missing or holds no case folder.
    """
    cases = discover_cases(root)
    if not cases:
        raise BratsError(
            f"no case folders found under {root} (expected folders like "
            f"BraTS2021_00000/BraTS2021_00000_flair.nii.gz)"
        )
    results = validate_cases(
        cases, expected_shape=expected_shape, require_seg=require_seg, workers=workers
    )
    bar = tqdm(results, total=len(cases), unit="case", desc="checking", disable=not progress)
    return {files.case_id: problems for files, problems in bar}


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
            invalid labels. Use :func:`validate_case` for the full list of problems.
    """
    files = case if isinstance(case, CaseFiles) else case_files_in(case)
    case_id, release = files.case_id, files.release
    missing = [m for m in MODALITIES if files.modalities[m] is None]
    if missing:
        names = ", ".join(release.file_name(case_id, m) for m in missing)
        raise CaseError(case_id, f"missing modality {', '.join(missing)} ({names})", files.folder)
    if require_seg and files.seg is None:
        name = release.file_name(case_id, "seg")
        raise CaseError(case_id, f"no segmentation file (expected {name})", files.folder)

    image = first_image = reference = None
    for channel, modality in enumerate(MODALITIES):
        path = files.modalities[modality]
        data, nii = read_nifti(path, case_id)
        message = _shape_problem(modality, data.shape, reference, expected_shape)
        if message is not None:
            raise CaseError(case_id, message, path)
        if reference is None:
            image = np.empty((*data.shape, len(MODALITIES)), dtype=np.float32)
            reference, first_image = _Reference(modality, data.shape, nii.affine), nii
        image[..., channel] = data
        if data.dtype.kind == "f" and not np.isfinite(image[..., channel]).all():
            raise CaseError(case_id, f"{modality} has NaN or infinite voxels", path)

    seg = None
    if files.seg is not None:
        data, _ = read_nifti(files.seg, case_id)
        message = _shape_problem("seg", data.shape, reference, expected_shape)
        if message is not None:
            raise CaseError(case_id, message, files.seg)
        try:
            seg = labels_to_classes(data, release)
        except ValueError as exc:
            raise CaseError(case_id, f"seg: {exc}", files.seg) from exc

    return Case(
        case_id=case_id,
        image=image,
        seg=seg,
        affine=np.asarray(first_image.affine, dtype=np.float64),
        header=first_image.header,
        release=release,
        files=files,
    )
