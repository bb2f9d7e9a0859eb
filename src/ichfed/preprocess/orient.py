"""One canonical axial orientation (RAS voxel order, slices along the last axis), and back.

Only axes are permuted and flipped: no resampling, so every voxel maps back exactly and a mask
predicted in canonical order lands on the same anatomy in the scan's own grid.
"""

from dataclasses import dataclass

import nibabel as nib
import numpy as np


@dataclass(frozen=True)
class Canonical:
    data: np.ndarray  # (X, Y, Z) in RAS voxel order
    affine: np.ndarray  # canonical voxel -> RAS mm
    ornt: np.ndarray  # the transform from the stored order
    stored_shape: tuple[int, ...]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    def to_stored(self, array: np.ndarray) -> np.ndarray:
        """Put a canonical-order array (same shape as `data`) back in the scan's stored order."""
        ras = nib.orientations.axcodes2ornt("RAS")
        inverse = nib.orientations.ornt_transform(ras, self.ornt)
        return nib.orientations.apply_orientation(array, inverse)

    @property
    def stored_affine(self) -> np.ndarray:
        back = nib.orientations.inv_ornt_aff(self.ornt, self.stored_shape)
        return self.affine @ np.linalg.inv(back)


def to_canonical(data: np.ndarray, affine: np.ndarray) -> Canonical:
    """Reorder voxels so that i, j, k point to R, A, S (the closest axes for oblique scans)."""
    ornt = nib.orientations.io_orientation(affine)
    out = nib.orientations.apply_orientation(data, ornt)
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    return Canonical(data=np.ascontiguousarray(out), affine=new_affine, ornt=ornt,
                     stored_shape=tuple(data.shape))
