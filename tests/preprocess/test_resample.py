"""Resampling to a model's pixel size and slice thickness and back: volumes kept, masks on the
scan's grid."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.infer import segment
from ichfed.io import read_ct
from ichfed.metrics import dice
from ichfed.preprocess.resample import (
    Grid,
    mask_to_native,
    mask_to_work,
    plan_grid,
    to_native,
    to_work,
)
from tests.helpers import make_site, save_nifti, tiny_head, tiny_lesion
from tests.infer.test_predict import BRIGHT, LPS, RAS


@pytest.mark.parametrize("target", [0.9, 0.315], ids=["coarser", "finer"])
def test_mask_round_trip_keeps_volume(target):
    x, y, z = np.ogrid[:200, :180, :12]
    mask = ((x - 90) ** 2 + (y - 100) ** 2 + (3 * (z - 6)) ** 2) < 40 ** 2
    grid = plan_grid(mask.shape, (0.45, 0.45, 5.0), target)
    work = mask_to_work(mask, grid)
    assert work.shape[2] == mask.shape[2] and work.shape[0] == round(200 * 0.45 / target)
    back = mask_to_native(work, grid)
    assert back.shape == mask.shape
    assert abs(back.sum() / mask.sum() - 1) < 0.02
    work_ml = work.sum() * target * target * 5.0
    assert abs(work_ml / (mask.sum() * 0.45 * 0.45 * 5.0) - 1) < 0.02


@pytest.mark.parametrize("shape", [(50, 29), (20, 60)], ids=["finer-coarser", "coarser-finer"])
def test_interpolation_is_scipys_grid_mode_linear_zoom(shape):
    """The torch path must give what scipy's pixel-area linear zoom gives (the reference)."""
    vol = np.random.default_rng(0).normal(size=(37, 41, 3)).astype(np.float32)
    ours = to_work(vol, Grid(vol.shape, (*shape, 3)))
    factors = (shape[0] / 37, shape[1] / 41, 1.0)
    ref = ndimage.zoom(vol, factors, order=1, mode="nearest", grid_mode=True)
    assert ours.shape == (*shape, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref[:shape[0], :shape[1]], atol=1e-4)


def test_no_resampling_within_tolerance():
    assert plan_grid((10, 10, 3), (0.452, 0.449, 5.0), 0.45).identity
    assert plan_grid((10, 10, 3), (0.45, 0.45, 5.0), None).identity
    assert plan_grid((10, 10, 3), (0.45, 0.45, 5.0), None, 5.0).identity
    assert plan_grid((10, 10, 3), (0.45, 0.45, 3.4), None, 5.0).identity  # under 1.5x thinner
    assert plan_grid((10, 10, 3), (0.45, 0.45, 8.0), None, 5.0).identity  # never made thinner


def test_thin_slices_are_averaged_in_slabs_and_interpolated_back():
    vol = np.random.default_rng(0).normal(size=(6, 5, 11)).astype(np.float32)
    grid = plan_grid(vol.shape, (0.9, 0.9, 1.25), None, 5.0)
    assert grid.slab == 4 and grid.work_shape == (6, 5, 3)
    work = to_work(vol, grid)
    np.testing.assert_allclose(work[..., 0], vol[..., 0:4].mean(axis=2), atol=1e-6)
    np.testing.assert_allclose(work[..., 2], vol[..., 8:11].mean(axis=2), atol=1e-6)  # short
    back = to_native(work, grid)
    assert back.shape == vol.shape
    np.testing.assert_allclose(back[..., 1], work[..., 0], atol=1e-6)  # up to the first centre
    np.testing.assert_allclose(back[..., 3], 0.625 * work[..., 0] + 0.375 * work[..., 1],
                               atol=1e-6)  # between the centres at 1.5 and 5.5
    np.testing.assert_allclose(back[..., 10], work[..., 2], atol=1e-6)  # past the last


def test_slabs_and_pixels_at_once_are_the_two_steps_in_turn():
    """to_work averages the slabs before resizing them, to_native resizes the slabs before
    interpolating between them (a slab-th of the slices to resize); the steps are linear along
    different axes, so each equals resizing every slice, then the slab step."""
    rng = np.random.default_rng(1)
    native = rng.normal(size=(31, 27, 11)).astype(np.float32)
    resized = to_work(native, Grid((31, 27, 11), (20, 18, 11), 1))  # in-plane only
    ref = to_work(resized, Grid((20, 18, 11), (20, 18, 3), 4))  # slab means only
    np.testing.assert_allclose(to_work(native, Grid((31, 27, 11), (20, 18, 3), 4)), ref,
                               atol=1e-5)
    work = rng.normal(size=(20, 18, 3)).astype(np.float32)
    slices = to_native(work, Grid((20, 18, 11), (20, 18, 3), 4))  # between the slabs only
    ref = to_native(slices, Grid((31, 27, 11), (20, 18, 11), 1))  # in-plane only
    np.testing.assert_allclose(to_native(work, Grid((31, 27, 11), (20, 18, 3), 4)), ref,
                               atol=1e-5)


def test_slab_round_trip_keeps_a_masks_volume():
    x, y, z = np.ogrid[:60, :60, :50]
    mask = ((x - 30) ** 2 + (y - 28) ** 2 + ((z - 24) / 2) ** 2) < 20 ** 2
    grid = plan_grid(mask.shape, (0.9, 0.9, 1.0), 0.6, 5.0)
    work = mask_to_work(mask, grid)
    assert grid.slab == 5 and work.shape == (90, 90, 10)
    back = mask_to_native(work, grid)
    assert back.shape == mask.shape
    assert abs(back.sum() / mask.sum() - 1) < 0.02


@pytest.mark.parametrize("affine", [RAS, LPS], ids=["RAS", "LPS"])
@pytest.mark.parametrize("pixel_mm", [0.6, 1.5])
def test_prediction_at_another_pixel_size_lands_on_the_scan_grid(tmp_path, affine, pixel_mm):
    vol = tiny_head()
    truth = tiny_lesion(vol)
    ct = read_ct(save_nifti(vol, affine, tmp_path / "scan.nii.gz"))
    model = replace(BRIGHT, spec=replace(BRIGHT.spec, inplane_mm=pixel_mm))
    mask = segment(ct, model, torch.device("cpu"))
    assert mask.shape == vol.shape
    # The stand-in fires on anything above 55 HU, so the interpolated skull edge lights up too;
    # inside the brain, the mask must land exactly on the lesion.
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, s) for s in vol.shape), indexing="ij")
    interior = np.sqrt(i**2 + j**2 + (0.5 * k) ** 2) < 0.6
    assert dice(mask & interior, truth & interior) > 0.85


def test_prediction_on_thin_slices_lands_on_every_slice(tmp_path):
    vol = tiny_head(shape=(48, 40, 30))
    truth = tiny_lesion(vol)
    ct = read_ct(save_nifti(vol, np.diag([0.9, 0.9, 2.0, 1.0]), tmp_path / "thin.nii.gz"))
    model = replace(BRIGHT, spec=replace(BRIGHT.spec, inplane_mm=None, slice_mm=5.0))
    mask = segment(ct, model, torch.device("cpu"))
    assert mask.shape == vol.shape
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, s) for s in vol.shape), indexing="ij")
    interior = np.sqrt(i**2 + j**2 + (0.5 * k) ** 2) < 0.6
    assert dice(mask & interior, truth & interior) > 0.8


def test_training_records_the_median_pixel_size(tmp_path):
    site = make_site(tmp_path / "site", n=3)  # 0.9 mm pixels
    result = CliRunner().invoke(app, [
        "train", str(site), "--out", str(tmp_path / "m"), "--device", "cpu",
        "--set", "features=[4,4,8,8,16,4]", "--set", "patch=32", "--set", "lesion_patches=4",
        "--set", "batch_size=8", "--set", "max_epochs=1"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["inplane_mm"] == pytest.approx(0.9)
    assert config["model"]["slice_mm"] == pytest.approx(5.0)
    native = CliRunner().invoke(app, [
        "train", str(site), "--out", str(tmp_path / "n"), "--device", "cpu",
        "--set", "features=[4,4,8,8,16,4]", "--set", "patch=32", "--set", "lesion_patches=4",
        "--set", "batch_size=8", "--set", "max_epochs=1", "--set", "inplane_mm=native"])
    assert native.exit_code == 0, native.output
    assert json.loads((tmp_path / "n" / "config.json").read_text())["model"]["inplane_mm"] is None
