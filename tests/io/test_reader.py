"""NIfTI reading: scaling, padding and shape rules."""

import nibabel as nib
import numpy as np
import pytest

from ichfed.errors import InputError
from ichfed.io import read_ct, read_mask
from tests.helpers import save_nifti, tiny_head

AFFINE = np.diag([0.5, 0.5, 5.0, 1.0])


def test_scaled_nifti_gives_hu(tmp_path):
    vol = tiny_head()
    img = nib.Nifti1Image((vol + 1024).astype(np.int16), AFFINE)
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, tmp_path / "a.nii.gz")
    ct = read_ct(tmp_path / "a.nii.gz")
    np.testing.assert_allclose(ct.data, vol, atol=1e-3)
    assert ct.spacing == (0.5, 0.5, 5.0)
    assert ct.name == "a"
    assert ct.voxel_ml == pytest.approx(0.5 * 0.5 * 5 / 1000)


def test_padding_values_become_air_floor(tmp_path):
    vol = tiny_head()
    vol[:2], vol[-2:] = -2000, -3024
    ct = read_ct(save_nifti(vol, AFFINE, tmp_path / "a.nii.gz"))
    assert ct.data.min() == -1024


def test_trailing_singleton_dimension_is_accepted(tmp_path):
    vol = tiny_head()[..., None]
    assert read_ct(save_nifti(vol, AFFINE, tmp_path / "a.nii")).data.ndim == 3


def test_mask_with_fractional_values_rejected(tmp_path):
    path = save_nifti(np.full((4, 4, 4), 0.5, np.float32), AFFINE, tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="non-integer"):
        read_mask(path)


def test_unknown_extension(tmp_path):
    (tmp_path / "a.mha").write_text("x")
    with pytest.raises(InputError, match="expected a .nii"):
        read_ct(tmp_path / "a.mha")
