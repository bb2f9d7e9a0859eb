"""The brain every built-in head starts from: the MNI ICBM152 2009a nonlinear template.

ichfed ships a derived copy (`data/icbm152_2009a.npz`, with the template's copyright notice in
`data/ICBM152_NOTICE.txt`) rather than depending on nilearn, whose wheel carries the source maps
(about 11.5 MB, plus pandas, scikit-learn and requests) when the derived fields need about 1 MB.
`python -m ichfed.phantom.template NILEARN_DATA_DIR` rebuilds the copy from nilearn 0.14.1's
`nilearn/datasets/data/mni_icbm152_{gm,wm,t1}_tal_nlin_sym_09a_converted.nii.gz`
(`pip download nilearn==0.14.1 --no-deps`, then unzip).

Coordinates are MNI mm (x to the patient's left is negative: RAS). Derived fields:
- `gm`, `wm`: grey and white matter probability (uint8, 1 mm);
- `vent`: signed distance to the lateral and fourth ventricles' wall (inside > 0; 0.5 mm
  units, int8, 1 mm), so that atrophy can widen them by a chosen number of mm;
- `cavity`: signed distance to the inner table (inside the cranial cavity > 0; 0.5 mm units,
  int8, 2 mm grid over the whole head): the brain's outline closed over its sulci, 1.5 mm of
  CSF around it, and the foramen magnum below.
"""

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy import ndimage

DATA = Path(__file__).parent / "data" / "icbm152_2009a.npz"
SD_UNIT_MM = 0.5  # signed distances are stored in half millimetres
# Seeds (MNI mm) inside the lateral ventricles and the fourth ventricle of the template.
VENTRICLE_SEEDS = ((10, -5, 20), (-10, -5, 20), (0, -45, -30))
FORAMEN_MAGNUM = ((0.0, -42.0), (15.0, 18.0), -60.0)  # centre (x, y), semi-axes, top z


@dataclass(frozen=True)
class Grid:
    """A field sampled on a regular grid: value at index i is at origin + i * step (MNI mm)."""

    values: np.ndarray
    origin: np.ndarray
    step: float

    def __call__(self, q: np.ndarray, scale: float = 1.0, outside: float = 0.0) -> np.ndarray:
        """Trilinear samples at (N, 3) MNI points, times `scale`; `outside` past the grid."""
        coords = ((q - self.origin) / self.step).T
        return ndimage.map_coordinates(self.values, coords, order=1, mode="constant",
                                       cval=outside / scale, prefilter=False,
                                       output=np.float32) * np.float32(scale)


@dataclass(frozen=True)
class Template:
    gm: Grid
    wm: Grid
    vent: Grid
    cavity: Grid


@cache
def load() -> Template:
    with np.load(DATA) as z:
        fine, coarse = z["fine_origin"].astype(np.float32), z["coarse_origin"].astype(np.float32)
        return Template(gm=Grid(z["gm"], fine, 1.0), wm=Grid(z["wm"], fine, 1.0),
                        vent=Grid(z["vent"], fine, 1.0), cavity=Grid(z["cavity"], coarse, 2.0))


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """mm to the mask's surface on a 1 mm grid, positive inside, as int8 half millimetres."""
    sd = ndimage.distance_transform_edt(mask) - ndimage.distance_transform_edt(~mask)
    return np.clip(np.round(sd / SD_UNIT_MM), -127, 127).astype(np.int8)


def build(source: Path, out: Path = DATA) -> None:
    """Derive the shipped fields from nilearn's copy of the template (see the module doc)."""
    import nibabel as nib

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        img = nib.load(source / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")
        return np.asarray(img.dataobj).astype(np.float32) / 255, img.affine

    gm, affine = read("gm")
    wm, _ = read("wm")
    t1, _ = read("t1")
    if not np.allclose(affine[:3, :3], np.eye(3)):
        raise ValueError("expected the 1 mm template in MNI orientation")
    origin = affine[:3, 3]
    brain = t1 > 0

    # ventricles: dark on T1, little tissue, away from the surface, connected to a seed
    depth = ndimage.distance_transform_edt(brain)
    dark = brain & (t1 < 0.36) & (gm + wm < 0.5) & (depth > 5)
    comps, _ = ndimage.label(dark)
    ids = {int(comps[tuple(np.round(np.subtract(s, origin)).astype(int))])
           for s in VENTRICLE_SEEDS}
    ventricles = np.isin(comps, sorted(ids - {0}))

    # the cranial cavity on a larger 1 mm box (scalp, skull base and upper neck), then 2 mm
    lo, hi = np.array([-100, -140, -110]), np.array([100, 110, 120])
    big = np.zeros(tuple(hi - lo + 1), bool)
    at = tuple(slice(int(a), int(a) + n) for a, n in zip(origin - lo, brain.shape, strict=True))
    closed = ndimage.binary_closing(np.pad(brain, 4), ndimage.generate_binary_structure(3, 1),
                                    iterations=3)[4:-4, 4:-4, 4:-4]
    big[at] = ndimage.binary_fill_holes(closed)
    x, y, z = np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)),
                          indexing="ij")
    (cx, cy), (ax, ay), top = FORAMEN_MAGNUM
    big |= (z < top) & (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 < 1)
    sd = ndimage.distance_transform_edt(big) - ndimage.distance_transform_edt(~big) + 1.5
    cavity = np.clip(np.round(sd[::2, ::2, ::2] / SD_UNIT_MM), -127, 127).astype(np.int8)

    # crop the fine fields to the brain's box with a margin
    idx = np.argwhere(brain)
    a, b = np.maximum(idx.min(0) - 4, 0), np.minimum(idx.max(0) + 5, brain.shape)
    crop = tuple(slice(int(i), int(j)) for i, j in zip(a, b, strict=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, gm=np.round(gm[crop] * 255).astype(np.uint8),
        wm=np.round(wm[crop] * 255).astype(np.uint8), vent=_signed_distance(ventricles)[crop],
        fine_origin=origin + a, cavity=cavity, coarse_origin=lo.astype(np.float64))


if __name__ == "__main__":
    build(Path(sys.argv[1]))
