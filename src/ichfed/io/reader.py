"""Read a scan or a mask from NIfTI or a DICOM folder; every failure becomes one InputError line."""

import gzip
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from ichfed.errors import InputError
from ichfed.io.volume import HU_FLOOR, CTVolume

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# The most voxels a header may make ichfed allocate: 600 million, 2.4 GB as float32 (a
# 1024x1024x572 scan; head CTs are 512x512 by 30 to 800 slices). A larger claim is refused before
# any voxel is read, so a 500-byte file cannot ask for terabytes.
MAX_VOXELS = 600_000_000


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def is_dicom(path: Path) -> bool:
    """A DICOM series folder, or one enhanced-CT `.dcm` file that holds a whole series."""
    return path.is_dir() or path.suffix.lower() == ".dcm"


def is_scan(path: Path) -> bool:
    """What `read_ct` takes."""
    return is_nifti(path) or is_dicom(path)


def ensure_readable(path: Path) -> None:
    """Name the path and the problem when it does not exist or cannot be read."""
    if not path.exists():
        raise InputError(path, "does not exist")
    if not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
        raise InputError(path, "cannot be read (permission denied)")


def ensure_regular_file(path: Path) -> None:
    """A scan or mask is a regular file (through any link): a FIFO or a device would block or
    never end."""
    if path.exists() and not path.is_dir() and not path.is_file():
        raise InputError(path, "is not a regular file (a device, pipe or socket)")


def check_size(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse a header whose dimensions ask for more than MAX_VOXELS voxels."""
    count = int(np.prod([int(n) for n in shape], dtype=object)) if shape else 0
    if count > MAX_VOXELS:
        raise InputError(path, f"header claims {'x'.join(map(str, shape))} voxels "
                               f"({count:,}), over ichfed's limit of {MAX_VOXELS:,}")


def check_affine(path: Path, affine: np.ndarray) -> None:
    """Refuse an affine that places no voxel in space: NaN, infinite, or of zero volume."""
    if not np.isfinite(affine).all():
        raise InputError(path, "affine (voxel-to-world matrix) holds NaN or infinite values")
    if abs(float(np.linalg.det(affine[:3, :3]))) < 1e-9:
        raise InputError(path, "affine (voxel-to-world matrix) is singular: a zero voxel size "
                               "or two axes along one direction")


def check_gzip(path: Path) -> None:
    """Decompress a .gz to its end in 1 MiB steps, keeping nothing: a truncated or corrupt
    stream fails its length or CRC check here, where reading only the voxels the header
    names (as nibabel does) would accept corrupt data silently. Bounded in memory; a stream
    that decompresses past what the largest scan allowed needs is refused."""
    limit = MAX_VOXELS * 8 + 2**20
    total = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(2**20):
            total += len(chunk)
            if total > limit:
                raise InputError(path, f"decompresses to more than {limit:,} bytes")


def _check_nifti_header(path: Path, img) -> None:
    """Before a voxel is read: the claimed size within the cap and, for an uncompressed file,
    present in the file; the affine usable."""
    check_size(path, img.shape)
    if path.name.endswith(".nii") and hasattr(img, "dataobj"):
        header = img.header
        needed = int(header.get_data_offset()) + int(np.prod(img.shape, dtype=np.int64)) * (
            header.get_data_dtype().itemsize)
        if path.stat().st_size < needed:
            raise InputError(path, f"truncated: the header needs {needed:,} bytes, the file "
                                   f"has {path.stat().st_size:,}")
    check_affine(path, img.affine)


def _load_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(array as stored, scaled; affine). Trailing singleton dimensions are dropped."""
    ensure_readable(path)
    ensure_regular_file(path)
    try:
        img = nib.load(path)
        _check_nifti_header(path, img)
        if path.name.endswith(".gz"):
            check_gzip(path)
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except PermissionError as exc:
        raise InputError(path, "cannot be read (permission denied)") from exc
    except (ImageFileError, EOFError, OSError, ValueError, zlib.error, gzip.BadGzipFile,
            MemoryError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(path, f"not a readable NIfTI file ({detail})") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(path, f"is {data.ndim}D with shape {data.shape}; expected one 3D volume")
    if min(data.shape) < 2:
        raise InputError(path, f"has shape {data.shape}: a single slice, expected a 3D volume")
    return data, img.affine.astype(np.float64)


def read_ct(path: str | Path, series: str | None = None) -> CTVolume:
    """Read a CT scan in HU from a NIfTI file, a DICOM series folder, or one enhanced-CT
    (multi-frame) `.dcm` file that holds a whole series.

    Values below -1024 HU (the -2000 / -3024 padding outside the field of view) are set to -1024.
    """
    path = Path(path)
    ensure_readable(path)
    ensure_regular_file(path)
    if is_dicom(path):
        from ichfed.io.dicom import read_dicom_series

        return read_dicom_series(path, series=series)
    if not is_nifti(path):
        raise InputError(path, "expected a .nii or .nii.gz file, a DICOM folder or a .dcm file")
    data, affine = _load_nifti(path)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise InputError(path, f"contains {bad} NaN or infinite voxels")
    np.maximum(data, HU_FLOOR, out=data)
    return CTVolume(data=data, affine=affine, source=path)


def to_canonical_spacing(path: str | Path) -> tuple[float, float, float]:
    """Voxel size (mm) along the canonical R, A, S axes, from the NIfTI header alone (a DICOM
    folder is read). Cheap enough to survey a whole site before training."""
    path = Path(path)
    if path.is_dir():
        affine = read_ct(path).affine
    else:
        ensure_regular_file(path)
        try:
            affine = nib.load(path).affine
        except (ImageFileError, OSError, EOFError, zlib.error, ValueError) as exc:
            raise InputError(path, f"cannot read the header ({exc})") from exc
        check_affine(path, affine)
    stored = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    out = [0.0, 0.0, 0.0]
    for axis, (target, _) in enumerate(nib.orientations.io_orientation(affine)):
        out[int(target)] = float(stored[axis])
    return (out[0], out[1], out[2])


def read_mask(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a label mask: (integer array (I, J, K), affine). Non-integer labels are an error."""
    path = Path(path)
    data, affine = _load_nifti(path)
    if not np.isfinite(data).all():
        raise InputError(path, "mask contains NaN or infinite values")
    if np.any(data != np.round(data)):
        raise InputError(path, "mask has non-integer values; expected 0/1 or integer labels")
    if data.min() < 0:
        raise InputError(path, "mask has negative labels")
    return data.astype(np.int16), affine
