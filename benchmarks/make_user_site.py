"""Write a built-in hospital's scans out as a user's site would arrive: another pixel size and
LPS voxel order (as DICOM-derived NIfTI often is), plain NIfTI files in the site layout with no
site.json. Used for the study on a mix of built-in and user sites (docs/study.md).
Usage: python benchmarks/make_user_site.py OUT [--profile thin] [--cases 8] [--pixel-factor 0.6]
"""

import argparse
from pathlib import Path

import numpy as np

from ichfed.io import open_site, read_ct, read_mask
from ichfed.io.writer import write_nifti
from ichfed.phantom import BUILTIN, synth_site
from ichfed.preprocess import to_canonical
from ichfed.preprocess.resample import mask_to_work, plan_grid, to_work

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def as_user_scan(image: np.ndarray, mask: np.ndarray, affine: np.ndarray, factor: float):
    """Canonical order, in-plane pixel size times `factor`, then stored in LPS order."""
    can, lab = to_canonical(image, affine), to_canonical(mask, affine).data > 0
    grid = plan_grid(can.data.shape, can.spacing, can.spacing[0] * factor)
    data, label = to_work(can.data, grid), mask_to_work(lab, grid)
    scaled = can.affine.copy()
    scaled[:3, 0] *= can.data.shape[0] / grid.work_shape[0]
    scaled[:3, 1] *= can.data.shape[1] / grid.work_shape[1]
    # reverse the first two voxel axes (RAS -> LPS order) and move the origin to match
    flip = np.eye(4)
    flip[0, 0], flip[1, 1] = -1, -1
    flip[0, 3], flip[1, 3] = data.shape[0] - 1, data.shape[1] - 1
    return (np.ascontiguousarray(data[::-1, ::-1]).astype(np.float32),
            np.ascontiguousarray(label[::-1, ::-1]).astype(np.uint8), scaled @ flip)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--profile", default="thin")
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--pixel-factor", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    source = synth_site(args.out.with_name(args.out.name + "-source"), BUILTIN[args.profile],
                        args.cases, seed=args.seed, first=2000)
    for case in open_site(source).labelled:
        ct, (mask, _) = read_ct(case.image), read_mask(case.mask)
        image, label, affine = as_user_scan(ct.data, mask, ct.affine, args.pixel_factor)
        name = f"patient{case.name.rsplit('_', 1)[1]}.nii.gz"
        write_nifti(image, affine, args.out / "images" / name)
        write_nifti(label, affine, args.out / "masks" / name)
    print(args.out)


if __name__ == "__main__":
    main()
