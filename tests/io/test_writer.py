"""Masks are written in the scan's exact geometry, and ITK sees the same orientation."""

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from ichfed.io import read_ct, write_mask
from tests.helpers import save_nifti, tiny_head, tiny_lesion

OBLIQUE = np.array([[0, -0.45, 0, 100.0], [0.45, 0, 0, -80.0], [0, 0, -5.0, 60.0], [0, 0, 0, 1]])


@pytest.mark.parametrize("affine", [np.diag([0.5, 0.5, 5.0, 1]), np.diag([-0.5, -0.5, 5.0, 1]),
                                    OBLIQUE], ids=["RAS", "LPS", "permuted-flipped"])
def test_mask_geometry_matches_scan(tmp_path, affine):
    vol = tiny_head()
    ct = read_ct(save_nifti(vol, affine, tmp_path / "scan.nii.gz"))
    out = write_mask(tiny_lesion(vol), ct, tmp_path / "out" / "scan_mask.nii.gz")

    img = nib.load(out)
    assert img.shape == vol.shape
    assert np.issubdtype(img.get_data_dtype(), np.integer)
    np.testing.assert_allclose(img.affine, affine, atol=1e-5)

    itk = sitk.ReadImage(str(out))
    itk_scan = sitk.ReadImage(str(tmp_path / "scan.nii.gz"))
    np.testing.assert_allclose(itk.GetDirection(), itk_scan.GetDirection(), atol=1e-5)
    np.testing.assert_allclose(itk.GetOrigin(), itk_scan.GetOrigin(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(itk).transpose(2, 1, 0), tiny_lesion(vol))
    assert not list((tmp_path / "out").glob(".tmp-*"))
