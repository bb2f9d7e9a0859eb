"""A mask on its image's grid. Viewers and labelling tools save a mask drawn on a scan in their
own voxel order (3D Slicer and OHIF: the third axis along the slice normal, rows and columns as
the DICOM stores them), so a mask may hold the image's voxels in another order: the same
physical grid, axes permuted or reversed. Such a mask is reoriented exactly (nibabel's
orientation transforms: permutations and flips, no resampling); any other geometry stays an
error that names both."""

from pathlib import Path

import nibabel as nib
import numpy as np

from ichfed.errors import InputError
from ichfed.io.reader import read_mask
from ichfed.io.volume import CTVolume

TOLERANCE_MM = 1e-3  # how far the two grids' voxel centres may lie apart


def same_grid(shape_a: tuple[int, ...], affine_a: np.ndarray, shape_b: tuple[int, ...],
              affine_b: np.ndarray) -> bool:
    return tuple(shape_a) == tuple(shape_b) and np.allclose(affine_a, affine_b,
                                                            atol=TOLERANCE_MM)


def describe(shape: tuple[int, ...], affine: np.ndarray) -> str:
    """A grid in one phrase: shape, voxel size, axis directions and origin."""
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    return (f"{'x'.join(map(str, shape))} voxels of "
            f"{'x'.join(f'{s:.3g}' for s in spacing)} mm, "
            f"{''.join(nib.aff2axcodes(affine))}, origin "
            f"({', '.join(f'{v:.1f}' for v in np.asarray(affine)[:3, 3])}) mm")


def align_mask(mask: np.ndarray, affine: np.ndarray, image_shape: tuple[int, ...],
               image_affine: np.ndarray, path: str | Path) -> tuple[np.ndarray, str | None]:
    """`mask` (stored with `affine`) in the image's voxel order, and a note when it had to be
    reoriented; an InputError naming `path` and both grids when it is not the image's grid."""
    if same_grid(mask.shape, affine, image_shape, image_affine):
        return mask, None
    if mask.ndim == 3 and np.isfinite(affine).all() and np.linalg.det(affine[:3, :3]) != 0:
        turn = nib.orientations.ornt_transform(nib.io_orientation(affine),
                                               nib.io_orientation(image_affine))
        turned = nib.orientations.apply_orientation(mask, turn)
        turned_affine = affine @ nib.orientations.inv_ornt_aff(turn, mask.shape)
        if same_grid(turned.shape, turned_affine, image_shape, image_affine):
            codes = "".join(nib.aff2axcodes(affine)), "".join(nib.aff2axcodes(image_affine))
            return (np.ascontiguousarray(turned),
                    f"{path}: stored in another voxel order ({codes[0]}) than its image "
                    f"({codes[1]}); reoriented exactly")
    raise InputError(path, f"mask grid ({describe(mask.shape, affine)}) is not its image's "
                           f"({describe(image_shape, image_affine)})")


def read_case_mask(path: str | Path, ct: CTVolume) -> tuple[np.ndarray, str | None]:
    """A case's mask read and put on its image's grid (`align_mask`)."""
    mask, affine = read_mask(path)
    return align_mask(mask, affine, ct.data.shape, ct.affine, path)
