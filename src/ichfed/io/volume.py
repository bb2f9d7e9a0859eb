"""The one in-memory form of a scan: voxels in HU plus the affine that places them in space."""

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

HU_AIR = -1000.0
HU_FLOOR = -1024.0  # padding (-2000, -3024) and anything below air is clipped to this value


@dataclass(frozen=True)
class CTVolume:
    """A 3D CT scan.

    `data` is (I, J, K) float32 in Hounsfield units; `affine` maps voxel indices (i, j, k) to
    RAS+ millimetres as in NIfTI. The affine may be sheared (gantry tilt is kept, not resampled).
    """

    data: np.ndarray
    affine: np.ndarray
    source: Path
    notes: tuple[str, ...] = field(default=())

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL (|det| handles sheared affines correctly)."""
        return abs(float(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    @property
    def orientation(self) -> str:
        """Axis codes such as 'RAS' or 'LPS'."""
        return "".join(nib.aff2axcodes(self.affine))

    @property
    def name(self) -> str:
        return case_name(self.source)


def case_name(path: Path) -> str:
    """Case name of a scan path: file name without .nii/.nii.gz/.dcm, or the DICOM folder's name."""
    name = path.name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
