"""Masks saved by other tools in another voxel order of their image's grid are reoriented
exactly (check, training and evaluation alike); a mask on any other grid is a one-line error
naming both grids."""

import numpy as np
import pytest

from ichfed.check import check_site
from ichfed.data.prepare import _prepare_all
from ichfed.errors import InputError
from ichfed.io import open_site
from ichfed.io.align import align_mask, read_case_mask
from ichfed.io.reader import read_ct
from ichfed.metrics.evaluate import evaluate_folder
from ichfed.model.config import preset
from tests.helpers import make_site, save_nifti, tiny_head, tiny_lesion


def _tilted(degrees: float = 15.0) -> np.ndarray:
    """A scan's affine with a gantry tilt about the left-right axis, 0.9 x 0.9 x 5 mm."""
    t = np.radians(degrees)
    rotation = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, 0.9, 5.0])
    affine[:3, 3] = (-21.0, -17.5, -30.0)
    return affine


def _stored_otherwise(mask: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask as a viewer may save it: rows and columns swapped, the first axis reversed,
    with the affine that keeps every voxel where it was (worked out here by hand:
    stored[a, b, c] = mask[X - 1 - b, a, c])."""
    x = mask.shape[0]
    to_image = np.array([[0, -1, 0, x - 1], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    return np.ascontiguousarray(mask[::-1].transpose(1, 0, 2)), affine @ to_image


@pytest.mark.parametrize("affine", [np.diag([0.9, 0.9, 5.0, 1.0]), _tilted()])
def test_another_voxel_order_is_reoriented_exactly(affine):
    mask = (np.random.default_rng(0).random((12, 10, 4)) > 0.7).astype(np.int16)
    stored, stored_affine = _stored_otherwise(mask, affine)
    assert stored.shape != mask.shape
    aligned, note = align_mask(stored, stored_affine, mask.shape, affine, "m.nii.gz")
    np.testing.assert_array_equal(aligned, mask)
    assert "reoriented exactly" in note and note.startswith("m.nii.gz")
    same, none = align_mask(mask, affine, mask.shape, affine, "m.nii.gz")
    assert same is mask and none is None


@pytest.mark.parametrize("how", ["shifted", "resampled", "same-shape-other-place"])
def test_another_grid_is_an_error_naming_both(how):
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    mask = np.zeros((12, 10, 4), np.int16)
    other = affine.copy()
    if how == "shifted":
        other[0, 3] += 0.45  # half a voxel
    elif how == "resampled":
        mask = np.zeros((24, 20, 4), np.int16)
        other = np.diag([0.45, 0.45, 5.0, 1.0])
    else:
        other = np.diag([1.0, 1.0, 5.0, 1.0])
    with pytest.raises(InputError) as info:
        align_mask(mask, other, (12, 10, 4), affine, "m.nii.gz")
    message = str(info.value)
    assert message.startswith("m.nii.gz: mask grid (") and "is not its image's (12x10x4" in message
    assert "\n" not in message


def test_check_and_training_use_the_reoriented_mask(tmp_path):
    affine = _tilted()
    site = make_site(tmp_path / "site", n=2, affine=affine)
    vol = tiny_head(seed=1)
    stored, stored_affine = _stored_otherwise(tiny_lesion(vol), affine)
    mask_path = site / "masks" / "case01.nii.gz"
    save_nifti(stored, stored_affine, mask_path)
    findings = check_site(site)
    assert findings.usable, findings.problems
    case = next(c for c in findings.cases if c.case == "case01")
    assert any("reoriented exactly" in n for n in case.notes)
    assert case.lesion_ml > 0
    ct = read_ct(site / "images" / "case01.nii.gz")
    np.testing.assert_array_equal(read_case_mask(mask_path, ct)[0], tiny_lesion(vol))
    spec, _ = preset("demo", inplane_mm=None, slice_mm=None)
    prepared = _prepare_all(open_site(site), spec)
    assert prepared[1].label.sum() == tiny_lesion(vol).sum()


def test_evaluate_reads_a_truth_mask_stored_otherwise(tmp_path):
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    site = make_site(tmp_path / "site", n=1, affine=affine)
    truth = tiny_lesion(tiny_head(seed=0))
    save_nifti(*_stored_otherwise(truth, affine), site / "masks" / "case00.nii.gz")
    save_nifti(truth, affine, tmp_path / "pred" / "case00_mask.nii.gz")
    rows, _ = evaluate_folder(tmp_path / "pred", site)
    assert rows[0]["dice"] == 1.0
    save_nifti(truth, np.diag([1.0, 1.0, 5.0, 1.0]), tmp_path / "pred" / "case00_mask.nii.gz")
    with pytest.raises(InputError, match="case00_mask.nii.gz: prediction grid .* is not the "
                                         "truth mask's"):
        evaluate_folder(tmp_path / "pred", site)
