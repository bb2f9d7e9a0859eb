"""Write masks in a scan's own geometry, atomically (no partial file is ever left behind)."""

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from ichfed.io.volume import CTVolume


def write_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write `data` with `affine` in both sform and qform (so nibabel and ITK agree)."""
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".nii.gz")
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_mask(mask: np.ndarray, like: CTVolume, path: str | Path) -> Path:
    """Write a label mask with exactly `like`'s shape and affine, as uint8."""
    if mask.shape != like.data.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the scan's {like.data.shape}")
    path = Path(path)
    write_nifti(mask.astype(np.uint8), like.affine, path)
    return path
