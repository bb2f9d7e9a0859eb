"""Whole-scan prediction: geometry round trips, volumes, small components, DICOM input
(classic series and enhanced multi-frame files)."""

import json

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.infer import lesion_stats, segment
from ichfed.io import read_ct
from ichfed.metrics import dice
from ichfed.model.bundle import LoadedModel
from ichfed.model.config import ModelSpec
from ichfed.model.postprocess import keep_components
from tests.helpers import (
    make_site,
    save_nifti,
    tiny_head,
    tiny_lesion,
    write_dicom_series,
    write_enhanced_ct,
)

runner = CliRunner()
SPEC = ModelSpec(features=(4, 4, 8, 8, 16, 4), hu_window=(0.0, 150.0), hu_scale=1 / 150,
                 min_component_voxels=5)


class BrightSpot(torch.nn.Module):
    """Stands in for trained weights: a logit that is positive above 55 HU, so where the mask
    lands can be checked against known anatomy. Everything around the network is real."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 55 / 150) * 200


BRIGHT = LoadedModel(BrightSpot(), SPEC, {})
RAS = np.diag([0.9, 0.9, 5.0, 1.0])
LPS = np.array([[-0.9, 0, 0, 30], [0, -0.9, 0, 20], [0, 0, 5.0, 0], [0, 0, 0, 1]])
PERMUTED = np.array([[0, 0.9, 0, -10], [0, 0, -5.0, 40], [0.9, 0, 0, 5], [0, 0, 0, 1]])
TILTED = RAS.copy()
TILTED[1, 2] = 5.0 * np.tan(np.radians(20))


@pytest.mark.parametrize("affine", [RAS, LPS, PERMUTED, TILTED],
                         ids=["RAS", "LPS", "permuted", "tilted"])
@pytest.mark.parametrize("flip", [False, True], ids=["stored", "flipped-array"])
def test_mask_lands_on_the_same_anatomy(tmp_path, affine, flip):
    vol = tiny_head()
    truth = tiny_lesion(vol)
    if flip:  # the same scan stored with its first axis reversed (affine adjusted)
        vol, truth = vol[::-1].copy(), truth[::-1].copy()
        affine = affine @ np.array([[-1, 0, 0, vol.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0],
                                    [0, 0, 0, 1]])
    ct = read_ct(save_nifti(vol, affine, tmp_path / "scan.nii.gz"))
    mask = segment(ct, BRIGHT, torch.device("cpu"))
    assert mask.shape == vol.shape
    assert dice(mask, truth) > 0.9


def test_volume_is_count_times_voxel_volume():
    mask = np.zeros((10, 10, 10), np.uint8)
    mask[2:5, 2:5, 2:5] = 1
    mask[8, 8, 8] = 1
    voxel_ml = 0.45 * 0.45 * 5 / 1000
    stats = lesion_stats(mask, voxel_ml)
    assert stats["volume_ml"] == pytest.approx(28 * voxel_ml, abs=1e-3)
    assert stats["components"] == 2
    assert stats["largest_component_ml"] == pytest.approx(27 * voxel_ml, abs=1e-3)


def test_components_under_27_voxels_are_removed():
    mask = np.zeros((20, 20, 20), bool)
    mask[1:4, 1:4, 1:4] = True  # 27 voxels: kept
    mask[10:13, 10:13, 10:13] = True
    mask[12, 12, 12] = False  # 26 voxels: removed
    out = keep_components(mask, 27)
    assert out[1:4, 1:4, 1:4].all() and not out[10:13, 10:13, 10:13].any()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (tiny) model folder trained for one epoch by the CLI."""
    root = tmp_path_factory.mktemp("model")
    for c in range(3):
        vol = tiny_head(seed=c)
        save_nifti(vol, RAS, root / "site" / "images" / f"c{c}.nii.gz")
        save_nifti(tiny_lesion(vol), RAS, root / "site" / "masks" / f"c{c}.nii.gz")
    result = runner.invoke(app, [
        "train", str(root / "site"), "--out", str(root / "model"), "--device", "cpu",
        "--set", "features=[4,4,8,8,16,4]", "--set", "patch=32", "--set", "lesion_patches=8",
        "--set", "batch_size=8", "--set", "max_epochs=1"])
    assert result.exit_code == 0, result.output
    return root / "model"


@pytest.mark.parametrize("layout", ["folder", "enhanced-file"])
def test_predict_dicom_writes_scan_geometry(tmp_path, tiny_model, layout):
    vol = tiny_head()
    if layout == "folder":
        given = write_dicom_series(vol, LPS, tmp_path / "dcm" / "patient1", reverse_names=True)
    else:
        given = write_enhanced_ct(vol, LPS, tmp_path / "dcm" / "patient1.dcm",
                                  frame_order=tuple(reversed(range(vol.shape[2]))))
    result = runner.invoke(app, ["predict", str(given), "--model",
                                 str(tiny_model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    img = nib.load(tmp_path / "out" / "patient1_mask.nii.gz")
    assert img.shape == vol.shape
    np.testing.assert_allclose(img.affine, LPS, atol=1e-4)
    lines = (tmp_path / "out" / "volumes.csv").read_text().splitlines()
    assert lines[0] == "case,volume_ml,components,largest_component_ml"
    assert lines[1].startswith("patient1,")


def test_preview_is_written_per_case(tmp_path, tiny_model):
    given = save_nifti(tiny_head(), LPS, tmp_path / "in" / "a.nii.gz")
    result = runner.invoke(app, ["predict", str(given), "--model", str(tiny_model),
                                 "--out", str(tmp_path / "out"), "--preview"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a_preview.png").read_bytes().startswith(b"\x89PNG")


def test_bad_input_leaves_nothing(tmp_path, tiny_model):
    good = save_nifti(tiny_head(), RAS, tmp_path / "in" / "a.nii.gz")
    bad = tmp_path / "in" / "b.nii.gz"
    bad.write_text("not nifti")
    result = runner.invoke(app, ["predict", str(good), str(bad), "--model", str(tiny_model),
                                 "--out", str(tmp_path / "out"), "--preview"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error: {bad}: not a readable NIfTI")
    assert not list((tmp_path / "out").glob("*"))


def test_old_config_version_is_a_clear_error(tmp_path, tiny_model):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_model, old)
    config = json.loads((old / "config.json").read_text())
    config["config_version"] = 0
    (old / "config.json").write_text(json.dumps(config))
    scan = save_nifti(tiny_head(), RAS, tmp_path / "a.nii.gz")
    result = runner.invoke(app, ["predict", str(scan), "--model", str(old), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "model config version 0 is not supported" in result.stderr
    assert "Traceback" not in result.output


def test_a_model_with_settings_this_version_does_not_know_is_a_clear_error(tmp_path, tiny_model):
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(tiny_model, newer)
    config = json.loads((newer / "config.json").read_text())
    config["model"]["attention_gates"] = True
    (newer / "config.json").write_text(json.dumps(config))
    scan = save_nifti(tiny_head(), RAS, tmp_path / "a.nii.gz")
    result = runner.invoke(app, ["predict", str(scan), "--model", str(newer), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {newer / 'config.json'}: settings this ichfed")
    assert "attention_gates" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_is_a_file_is_a_one_line_error(tmp_path, tiny_model):
    scan = save_nifti(tiny_head(), RAS, tmp_path / "a.nii.gz")
    taken = tmp_path / "taken"
    taken.write_text("a user's file")
    result = runner.invoke(app, ["predict", str(scan), "--model", str(tiny_model), "--out",
                                 str(taken)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {taken}: File exists"
    assert taken.read_text() == "a user's file"


def test_dicom_seg_holds_the_predicted_mask(tmp_path, tiny_model):
    vol = tiny_head()
    given = write_dicom_series(vol, LPS, tmp_path / "dcm" / "patient1", reverse_names=True)
    result = runner.invoke(app, ["predict", str(given), "--model", str(tiny_model),
                                 "--out", str(tmp_path / "out"), "--dicom-seg"])
    assert result.exit_code == 0, result.output
    seg = hd.seg.segread(tmp_path / "out" / "patient1_seg.dcm")
    mask = nib.load(tmp_path / "out" / "patient1_mask.nii.gz")
    ct = read_ct(given)
    np.testing.assert_allclose(mask.affine, ct.affine, atol=1e-4)
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in sorted(
        given.iterdir(), key=lambda p: pydicom.dcmread(p).ImagePositionPatient[2])]
    frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids,
                                               segment_numbers=[1])[..., 0]
    assert frames.shape == (vol.shape[2], vol.shape[1], vol.shape[0])
    np.testing.assert_array_equal(frames.transpose(2, 1, 0), np.asarray(mask.dataobj) > 0)
    nifti = save_nifti(vol, LPS, tmp_path / "in" / "a.nii.gz")
    result = runner.invoke(app, ["predict", str(nifti), "--model", str(tiny_model),
                                 "--out", str(tmp_path / "out2"), "--dicom-seg"])
    assert result.exit_code == 1 and "needs a DICOM series folder" in result.stderr
    assert not (tmp_path / "out2").exists()


class BrightTypes(torch.nn.Module):
    """A typed stand-in: blood above 55 HU (channel 0), subdural above 90 HU, else
    intraparenchymal (the type channels, codes 2 and 4)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, x.shape[1] // 2: x.shape[1] // 2 + 1]
        out = torch.full((x.shape[0], 6, *x.shape[2:]), -10.0)
        out[:, :1] = (centre - 55 / 150) * 200
        out[:, 2:3] = (centre - 90 / 150) * 200
        out[:, 4] = 0.0
        return out


def _two_bleeds() -> tuple[np.ndarray, np.ndarray]:
    """The tiny head with a brighter second bleed; its map of types (2 bright, 4 faint)."""
    vol = tiny_head()
    vol[30:36, 15:25, 4:8] = 120.0
    blood = tiny_lesion(vol)
    return vol, np.where(blood > 0, np.where(vol > 90, 2, 4), 0).astype(np.uint8)


@pytest.mark.parametrize("affine", [RAS, LPS], ids=["RAS", "LPS"])
@pytest.mark.parametrize("working_mm", [None, 0.6], ids=["own-grid", "resampled"])
def test_a_typed_models_types_land_on_the_anatomy(tmp_path, affine, working_mm):
    from ichfed.data.prepare import prepare_scan
    from ichfed.infer.predict import segmentation

    vol, truth = _two_bleeds()
    spec = ModelSpec(features=SPEC.features, hu_window=(0.0, 150.0), hu_scale=1 / 150,
                     min_component_voxels=5, labels="types", inplane_mm=working_mm)
    ct = read_ct(save_nifti(vol, affine, tmp_path / "scan.nii.gz"))
    model = LoadedModel(BrightTypes(), spec, {})
    found = segmentation(prepare_scan(ct, spec), model, torch.device("cpu"))
    assert found.types.shape == vol.shape
    assert np.array_equal(found.types > 0, found.mask > 0)  # a type for every mask voxel
    assert (found.types[truth == 2] == 2).mean() > 0.9
    assert (found.types[truth == 4] == 4).mean() > 0.9
    stats = lesion_stats(found.mask, ct.voxel_ml, found.types)
    assert stats["subdural_ml"] + stats["intraparenchymal_ml"] == pytest.approx(
        stats["volume_ml"], abs=1e-3)


def test_a_typed_model_trains_predicts_types_and_evaluate_scores_them(tmp_path):
    site = tmp_path / "site"
    for c in range(3):
        vol, types = _two_bleeds() if c == 0 else (tiny_head(seed=c), None)
        types = types if types is not None else 2 * tiny_lesion(vol)
        save_nifti(vol, RAS, site / "images" / f"c{c}.nii.gz")
        save_nifti(types, RAS, site / "masks" / f"c{c}.nii.gz")
    (site / "site.json").write_text(json.dumps({"labels": "types"}))
    tiny = ["--set", "features=[4,4,8,8,16,4]", "--set", "patch=32", "--set",
            "lesion_patches=8", "--set", "batch_size=8", "--set", "max_epochs=1"]
    result = runner.invoke(app, ["train", str(site), "--out", str(tmp_path / "model"),
                                 "--device", "cpu", "--set", "labels=types", *tiny])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["model"]["labels"] == "types"
    images = sorted((site / "images").glob("*.nii.gz"))
    result = runner.invoke(app, ["predict", *map(str, images), "--model",
                                 str(tmp_path / "model"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    header = (tmp_path / "out" / "volumes.csv").read_text().splitlines()[0]
    assert header == ("case,volume_ml,components,largest_component_ml,epidural_ml,subdural_ml,"
                      "subarachnoid_ml,intraparenchymal_ml,intraventricular_ml")
    types = nib.load(tmp_path / "out" / "c0_types.nii.gz")
    assert types.shape == nib.load(tmp_path / "out" / "c0_mask.nii.gz").shape
    assert set(np.unique(np.asarray(types.dataobj))) <= {0, 1, 2, 3, 4, 5}
    # a DICOM series: its SEG holds one segment per type, each the types map's voxels
    series = write_dicom_series(_two_bleeds()[0], LPS, tmp_path / "dcm" / "p1")
    result = runner.invoke(app, ["predict", str(series), "--model", str(tmp_path / "model"),
                                 "--out", str(tmp_path / "seg"), "--dicom-seg"])
    assert result.exit_code == 0, result.output
    written = np.asarray(nib.load(tmp_path / "seg" / "p1_types.nii.gz").dataobj)
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in sorted(
        series.iterdir(), key=lambda p: pydicom.dcmread(p).ImagePositionPatient[2])]
    frames = hd.seg.segread(tmp_path / "seg" / "p1_seg.dcm").get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=[1, 2, 3, 4, 5])
    for code in range(1, 6):
        np.testing.assert_array_equal(frames[..., code - 1].transpose(2, 1, 0), written == code)
    result = runner.invoke(app, ["evaluate", "--pred", str(tmp_path / "out"), "--truth",
                                 str(site)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "evaluation_summary.json").read_text())
    assert summary["subdural_scans"] == 3 and summary["intraparenchymal_scans"] == 1
    assert "subdural_dice" in (tmp_path / "out" / "evaluation.csv").read_text()
    # a binary model cannot be trained as typed on sites without types
    plain = tmp_path / "plain"
    make_site(plain, n=2)
    result = runner.invoke(app, ["train", str(plain), "--out", str(tmp_path / "m2"),
                                 "--device", "cpu", "--set", "labels=types", *tiny])
    assert result.exit_code == 1
    assert "labels bleed types" in result.output and not (tmp_path / "m2").exists()
