"""Reading and writing NIfTI files safely.

Reading turns every failure (missing file, truncated gzip, not a NIfTI) into a
:class:`~brats_utils.errors.CaseError` naming the case and the file. Writing goes to a
temporary name in the same folder and is renamed into place, so an interrupted run never
leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.errors import CaseError

__all__ = ["read_nifti", "read_nifti_header", "write_nifti", "atomic_path", "NIFTI_EXTS"]

NIFTI_EXTS: tuple[str, ...] = (".nii.gz", ".nii")


def read_nifti_header(path: Path | str, case_id: str = "") -> nib.Nifti1Image:
    """Open a NIfTI image without reading its voxels (header, affine and shape only).

    Raises:
        CaseError: if the file is missing or is not a readable NIfTI file.
    """
    path = Path(path)
    if not path.is_file():
        raise CaseError(case_id, "file not found", path)
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise CaseError(case_id, f"not a readable NIfTI file: {exc}", path) from exc


def read_nifti(
    path: Path | str, case_id: str = "", dtype: np.dtype | type | None = None
) -> tuple[np.ndarray, nib.Nifti1Image]:
    """Read a NIfTI file's voxels.

    Args:
        path: ``.nii`` or ``.nii.gz`` file.
        case_id: the case the file belongs to, for error messages.
        dtype: if given, the array is returned in this dtype (scaling applied). Otherwise
            the on-disk dtype is kept (``np.asanyarray(img.dataobj)``).

    Returns:
        ``(data, image)``: the voxel array (x, y, z) and the nibabel image (header, affine).

    Raises:
        CaseError: missing file, truncated or corrupt gzip, unreadable NIfTI.
    """
    image = read_nifti_header(path, case_id)
    try:
        data = np.asanyarray(image.dataobj)
        if dtype is not None:
            data = data.astype(dtype, copy=False)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        raise CaseError(case_id, f"truncated or corrupt file: {exc}", path) from exc
    return data, image


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file is removed if the block raises (including ``KeyboardInterrupt``).
    ``suffix`` is kept at the end of the temporary name (e.g. ``".nii.gz"`` or ``".npy"``) so
    libraries that choose a format from the extension still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_nifti(
    path: Path | str,
    data: np.ndarray,
    affine: np.ndarray,
    header: nib.Nifti1Header | None = None,
) -> Path:
    """Write ``data`` as a NIfTI-1 file atomically (temporary name, then rename).

    Args:
        path: destination, ``.nii.gz`` (compressed) or ``.nii``.
        data: voxel array (x, y, z); its dtype is what is stored.
        affine: (4, 4) voxel-to-world matrix.
        header: optional source header to copy (dtype and scaling are reset to ``data``'s).

    Returns:
        The destination path.
    """
    path = Path(path)
    ext = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    header = header.copy() if header is not None else None
    image = nib.Nifti1Image(np.asarray(data), affine, header=header)
    image.set_data_dtype(np.asarray(data).dtype)
    image.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path, suffix=ext) as tmp:
        nib.save(image, str(tmp))
    return path
