"""Reading and writing NIfTI files safely.

Reading turns every failure (missing file, truncated gzip, not a NIfTI) into a
:class:`~brats_utils.errors.CaseError` naming the case and the file. Writing goes to a
temporary name in the same folder and is renamed into place
(:func:`brats_utils.files.atomic_path`), so an interrupted run never leaves a half-written
file behind.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.errors import CaseError
from brats_utils.files import atomic_path

__all__ = ["read_nifti", "read_nifti_header", "write_nifti", "NIFTI_EXTS"]

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

    A ``.nii.gz`` file is decompressed whole and its gzip checksum and length are verified,
    so a download cut anywhere (even in the 8-byte trailer) or a flipped bit is reported
    instead of read silently.

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
    path = Path(path)
    if path.name.endswith(".gz"):
        image = _read_gzipped_image(path, case_id)
    else:
        image = read_nifti_header(path, case_id)
    try:
        data = np.asanyarray(image.dataobj)
        if dtype is not None:
            data = data.astype(dtype, copy=False)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        message = " ".join(str(exc).split())  # nibabel's messages span several lines
        raise CaseError(case_id, f"truncated or corrupt file: {message}", path) from exc
    return data, image


def _read_gzipped_image(path: Path, case_id: str) -> nib.Nifti1Image:
    """Decompress a whole ``.nii.gz`` (checksum verified) into an in-memory NIfTI image."""
    if not path.is_file():
        raise CaseError(case_id, "file not found", path)
    try:
        payload = gzip.decompress(path.read_bytes())
    except (EOFError, OSError, zlib.error) as exc:
        raise CaseError(case_id, f"truncated or corrupt gzip file: {exc}", path) from exc
    # sizeof_hdr (first 4 bytes, either byte order) tells NIfTI-1 (348) from NIfTI-2 (540).
    sizes = {int.from_bytes(payload[:4], order) for order in ("little", "big")}
    image_class = nib.Nifti2Image if 540 in sizes else nib.Nifti1Image
    try:
        return image_class.from_bytes(payload)
    except Exception as exc:  # nibabel raises many types for corrupt headers
        raise CaseError(case_id, f"not a readable NIfTI file: {exc}", path) from exc


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
