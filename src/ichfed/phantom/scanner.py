"""How a site's scanner turns the head into voxels: grid and tilt, partial volume, kernel, noise,
artifacts, calibration and storage. Units: mm and HU."""

from dataclasses import asdict, dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from ichfed.phantom.profiles import Scanner

SCAN_BOTTOM_MM, SCAN_TOP_MM = -58.0, 96.0  # head-centred z range covered by the scan
REDUCED_MATRIX = 256


@dataclass(frozen=True)
class Acquisition:
    """The settings of one scan, sampled from a scanner's ranges (recorded in the sidecar)."""

    scanner: str
    inplane_mm: float
    matrix: int
    slice_mm: float
    n_slices: int
    tilt_deg: float
    psf_mm: float
    sharpen: float
    noise_sd: float
    noise_grain_mm: float
    hu_offset: float
    hu_gain: float
    rim_hu: float
    streak_hu: float
    lowdose_streaks: int
    padding: int
    pose: tuple[float, ...]  # yaw, pitch, roll (deg), shift x, y, z (mm)

    @classmethod
    def sample(cls, rng: np.random.Generator, sc: Scanner, size: str) -> "Acquisition":
        def u(r):
            return float(rng.uniform(*r))

        inplane, matrix = u(sc.inplane_mm), sc.matrix
        if size == "reduced" and matrix > REDUCED_MATRIX:
            inplane, matrix = inplane * matrix / REDUCED_MATRIX, REDUCED_MATRIX
        slice_mm = u(sc.slice_mm)
        tilt = u(sc.tilt_deg) if sc.tilt_deg[1] > 0 else 0.0
        pose = (rng.uniform(-8, 8), rng.uniform(-12, 12), rng.uniform(-5, 5),
                rng.uniform(-8, 8), rng.uniform(-10, 10), rng.uniform(-4, 4))
        return cls(
            scanner=sc.name, inplane_mm=inplane, matrix=matrix, slice_mm=slice_mm,
            n_slices=int(np.ceil((SCAN_TOP_MM - SCAN_BOTTOM_MM) / slice_mm)),
            tilt_deg=tilt, psf_mm=sc.psf_mm, sharpen=sc.sharpen, noise_sd=u(sc.noise_sd),
            noise_grain_mm=sc.noise_grain_mm, hu_offset=u(sc.hu_offset), hu_gain=u(sc.hu_gain),
            rim_hu=u(sc.rim_hu), streak_hu=u(sc.streak_hu), lowdose_streaks=sc.lowdose_streaks,
            padding=sc.padding, pose=tuple(float(v) for v in pose),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.matrix, self.matrix, self.n_slices)

    def affine(self) -> np.ndarray:
        """Voxel -> scanner (RAS) mm; a gantry tilt shears each slice along y."""
        d, m = self.inplane_mm, self.matrix
        aff = np.diag([d, d, self.slice_mm, 1.0])
        aff[1, 2] = self.slice_mm * np.tan(np.radians(self.tilt_deg))
        aff[:3, 3] = [-d * (m - 1) / 2, -d * (m - 1) / 2, SCAN_BOTTOM_MM]
        aff[1, 3] -= aff[1, 2] * (self.n_slices - 1) / 2  # keep the tilted stack centred
        return aff

    def head_from_scanner(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, t) with head = R @ (scanner - t): the patient's pose in the gantry."""
        yaw, pitch, roll = np.radians(self.pose[:3])
        cz, sz, cx, sx, cy, sy = (np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch),
                                  np.cos(roll), np.sin(roll))
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        return (rz @ rx @ ry).T, np.asarray(self.pose[3:])


def kernel_and_noise(vol: np.ndarray, acq: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Blur (PSF), sharpen (kernel overshoot) and add correlated noise of the target SD, slice
    by slice, in place of the ideal image."""
    px = acq.inplane_mm
    sigma = acq.psf_mm / px
    grain = acq.noise_grain_mm / px
    for k in range(vol.shape[2]):
        sl = ndimage.gaussian_filter(vol[:, :, k], sigma)
        if acq.sharpen:
            sl += acq.sharpen * (sl - ndimage.gaussian_filter(sl, 2 * sigma))
        noise = ndimage.gaussian_filter(rng.standard_normal(sl.shape).astype(np.float32), grain)
        vol[:, :, k] = sl + noise * (acq.noise_sd / noise.std())
    return vol


def lowdose_streaks(vol: np.ndarray, head: np.ndarray, acq: Acquisition,
                    rng: np.random.Generator) -> None:
    """Photon-starvation streaks: thin bright/dark lines through the head, per slice."""
    m = acq.matrix
    ii, jj = np.meshgrid(np.arange(m) - m / 2, np.arange(m) - m / 2, indexing="ij")
    for k in range(vol.shape[2]):
        for _ in range(acq.lowdose_streaks):
            theta = rng.uniform(0, np.pi)
            dist = ii * np.cos(theta) + jj * np.sin(theta) - rng.normal(0, m / 12)
            line = np.exp(-((dist * acq.inplane_mm / 1.2) ** 2))
            vol[:, :, k] += rng.choice([-1, 1]) * acq.streak_hu * 0.6 * line * head[:, :, k]


def finish(vol: np.ndarray, acq: Acquisition) -> np.ndarray:
    """Calibration (gain, offset), reconstruction circle with the site's padding, int16 HU."""
    vol = vol * acq.hu_gain + acq.hu_offset
    m = acq.matrix
    ii, jj = np.meshgrid(np.arange(m) - (m - 1) / 2, np.arange(m) - (m - 1) / 2, indexing="ij")
    vol[(ii**2 + jj**2) > (m / 2) ** 2] = acq.padding
    return np.clip(np.round(vol), -32768, 32767).astype(np.int16)


def store(data: np.ndarray, mask: np.ndarray, affine: np.ndarray, codes: str,
          reverse_slices: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorder voxels to the site's stored orientation and slice order (geometry unchanged)."""
    target = nib.orientations.axcodes2ornt(tuple(codes))
    if reverse_slices:
        target[2, 1] *= -1
    start = nib.orientations.io_orientation(affine)
    tr = nib.orientations.ornt_transform(start, target)
    new_affine = affine @ nib.orientations.inv_ornt_aff(tr, data.shape)
    return (nib.orientations.apply_orientation(data, tr),
            nib.orientations.apply_orientation(mask, tr), new_affine)
