"""Reading NIfTI files (every failure a ``CaseError`` naming case and file), writing atomically."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from brats_utils.errors import CaseError
from brats_utils.files import atomic_path

__all__ = ["read_nifti", "read_nifti_header", "write_nifti", "NIFTI_EXTS", "nifti_stem"]

NIFTI_EXTS: tuple[str, ...] = (".nii.gz", ".nii")
#: The machine's memory in bytes (None where os.sysconf cannot say): no volume may need more.
MEMORY = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if os.name == "posix" else None


def nifti_stem(name: str) -> str | None:
    """``"X_flair"`` for ``"X_flair.nii.gz"`` or ``"X_flair.nii"``; else ``None``."""
    return next((name[: -len(ext)] for ext in NIFTI_EXTS if name.endswith(ext)), None)


def read_nifti_header(path: Path | str, case_id: str = "") -> nib.Nifti1Image:
    path = Path(path)
    if not path.is_file():
        raise CaseError(case_id, "file not found", path)
    try:
        return nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise CaseError(case_id, f"not a readable NIfTI file: {exc}", path) from exc


def read_nifti(path: Path | str, case_id: str = "") -> tuple[np.ndarray, nib.Nifti1Image]:
    """``(data, image)``: the voxels in their on-disk dtype and the nibabel image; a
    ``.nii.gz`` is decompressed whole with its checksum verified, so a cut download is reported.
    A header that claims more voxel bytes than the file holds (uncompressed) or than the
    machine's memory is refused before the voxels are read."""
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            image, size = _read_gzipped_image(path, case_id)
        else:
            image, size = read_nifti_header(path, case_id), path.stat().st_size
        needed = math.prod(image.shape) * image.get_data_dtype().itemsize
        if needed > min(size, MEMORY or size):
            what = "the file holds" if needed > size else "the machine's memory"
            shape, gib = tuple(image.shape), needed / 2**30
            message = f"header claims {shape} voxels ({gib:.3g} GiB), more than {what}"
            raise CaseError(case_id, f"truncated or corrupt file: {message}", path)
        data = np.asanyarray(image.dataobj)
    except CaseError:
        raise
    except MemoryError as exc:
        raise CaseError(case_id, f"not enough memory to read it ({exc})", path) from exc
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        message = " ".join(str(exc).split())  # nibabel's messages span several lines
        raise CaseError(case_id, f"truncated or corrupt file: {message}", path) from exc
    return data, image


def _read_gzipped_image(path: Path, case_id: str) -> tuple[nib.Nifti1Image, int]:
    """Decompress a whole ``.nii.gz`` (checksum verified): an in-memory image, and its bytes."""
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
        return image_class.from_bytes(payload), len(payload)
    except Exception as exc:  # nibabel raises many types for corrupt headers
        raise CaseError(case_id, f"not a readable NIfTI file: {exc}", path) from exc


def write_nifti(
    path: Path | str, data: np.ndarray, affine: np.ndarray, header: nib.Nifti1Header | None = None
) -> Path:
    """Write ``data`` in its dtype as NIfTI-1 atomically; ``header`` is copied, scaling reset."""
    path = Path(path)
    ext = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    header = header.copy() if header is not None else None
    image = nib.Nifti1Image(np.asarray(data), affine, header=header)
    image.set_data_dtype(np.asarray(data).dtype)
    image.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path, suffix=ext) as tmp:
        nib.save(image, str(tmp))
    return path
