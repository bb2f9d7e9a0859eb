"""Hostile files, as an attacker or a broken export would make them: each gives one line that
names the file, a non-zero exit, no traceback, no allocation a header alone asks for beyond
ichfed's cap, and nothing left behind."""

import gzip
import io
import json
import os
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.io.reader import MAX_VOXELS
from ichfed.model.bundle import save_config, save_weights
from ichfed.model.config import ModelSpec, TrainSpec
from ichfed.model.network import build_network
from tests.helpers import (
    make_site,
    save_nifti,
    tiny_head,
    write_dicom_series,
    write_enhanced_ct,
)

runner = CliRunner()
AFFINE = np.diag([0.9, 0.9, 5.0, 1.0])
TINY = ModelSpec(features=(4, 4, 8, 8, 16, 4), inplane_mm=None, slice_mm=None)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A real model folder (untrained weights: these inputs never reach the network)."""
    folder = tmp_path_factory.mktemp("model")
    save_weights(build_network(TINY), folder)
    save_config(folder, TINY, TrainSpec().to_dict(), {})
    return folder


def _one_line_about(result, name: str, words: str = "") -> None:
    text = result.output.strip()
    assert result.exit_code not in (0, None), text
    assert "Traceback" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    assert len(text.splitlines()) == 1 and name in text and words in text, text


def _predict(inputs: list[Path], model: Path, out: Path):
    result = runner.invoke(app, ["predict", *map(str, inputs), "--model", str(model), "--out",
                                 str(out), "--device", "cpu"])
    assert not out.exists(), list(out.iterdir())  # nothing left behind, not even the folder
    return result


def _header(shape: tuple[int, ...], dtype=np.int16, affine=AFFINE) -> bytes:
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    header["vox_offset"] = 352
    return header.binaryblock + b"\0" * 4


def _hostile_niftis(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words its error must hold)."""
    root.mkdir(parents=True, exist_ok=True)
    made = {}
    huge = root / "huge.nii"  # 500 bytes claiming 4000x4000x4000 int16 (128 GB)
    huge.write_bytes(_header((4000, 4000, 4000)) + b"\0" * 144)
    made["huge"] = (huge, "over ichfed's limit")
    bomb = root / "bomb.nii.gz"  # 64 MiB of zeros in 64 KB, behind a header claiming 2e9 voxels
    bomb.write_bytes(gzip.compress(_header((2000, 1000, 1000), np.uint8) + bytes(64 * 2**20),
                                   compresslevel=1))
    made["bomb"] = (bomb, "over ichfed's limit")
    good = save_nifti(tiny_head(), AFFINE, root / "good.nii")
    cut = root / "cut.nii"
    cut.write_bytes(good.read_bytes()[:20_000])
    made["cut"] = (cut, "truncated")
    packed = save_nifti(tiny_head(), AFFINE, root / "packed.nii.gz").read_bytes()
    (root / "cutgz.nii.gz").write_bytes(packed[: len(packed) // 2])
    made["cutgz"] = (root / "cutgz.nii.gz", "not a readable NIfTI file")
    flipped = bytearray(packed)
    flipped[len(flipped) // 2: len(flipped) // 2 + 64] = bytes(64)
    (root / "corrupt.nii.gz").write_bytes(bytes(flipped))
    made["corrupt"] = (root / "corrupt.nii.gz", "not a readable NIfTI file")
    for name, row, value, words in (("nan", "srow_x", [np.nan, 0, 0, 0], "NaN or infinite"),
                                    ("zero", "srow_y", [0, 0, 0, 0], "singular")):
        # nibabel will not write such an affine; a broken exporter might
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(_header((48, 40, 12))))
        header["qform_code"] = 0
        header[row] = value
        (root / f"{name}.nii").write_bytes(header.binaryblock + b"\0" * 4 + tiny_head().astype(
            np.int16).tobytes(order="F"))
        made[name] = (root / f"{name}.nii", words)
    good.unlink()
    (root / "packed.nii.gz").unlink()
    return made


@pytest.mark.parametrize("name", ["huge", "bomb", "cut", "cutgz", "corrupt", "nan", "zero"])
def test_a_hostile_nifti_is_one_line_for_predict(tmp_path, model, name):
    path, words = _hostile_niftis(tmp_path / "in")[name]
    result = _predict([path], model, tmp_path / "out")
    _one_line_about(result, path.name, words)


def test_hostile_niftis_are_problems_for_check_and_nothing_is_read_past_the_cap(tmp_path):
    made = _hostile_niftis(tmp_path / "site" / "images")
    for path, _ in made.values():  # each scan its own (valid) mask, so only the scans are bad
        mask = tmp_path / "site" / "masks" / path.name.replace(".nii.gz", ".nii.gz")
        save_nifti(np.zeros((48, 40, 12), np.uint8), AFFINE, mask)
    result = runner.invoke(app, ["check", str(tmp_path / "site"), "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    problems = "\n".join(json.loads(result.stdout)["problems"])
    for path, words in made.values():
        assert any(path.name in line and words in line for line in problems.splitlines()), (
            path.name, problems)
    assert MAX_VOXELS < 2000 * 1000 * 1000


def _series(root: Path) -> Path:
    return write_dicom_series(tiny_head(), AFFINE, root / "case1")


def _edit(path: Path, **values) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in values.items():
        setattr(ds, key, value)
    ds.save_as(path)


def test_a_series_whose_slices_disagree_on_their_size_is_refused_before_decoding(tmp_path, model):
    folder = _series(tmp_path)
    _edit(sorted(folder.glob("*.dcm"))[3], Rows=24, Columns=20)
    _one_line_about(_predict([folder], model, tmp_path / "out"), "IM0003.dcm", "slice size")


def test_a_slice_with_an_impossible_orientation_is_refused(tmp_path, model):
    folder = _series(tmp_path)
    _edit(sorted(folder.glob("*.dcm"))[0], ImageOrientationPatient=[1, 0, 0, 1, 0, 0])
    _one_line_about(_predict([folder], model, tmp_path / "out"), "IM0000.dcm",
                    "orthogonal unit vectors")


def test_a_series_claiming_huge_slices_is_refused_before_decoding(tmp_path, model):
    folder = _series(tmp_path)
    for path in folder.glob("*.dcm"):
        _edit(path, Rows=60000, Columns=60000)
    _one_line_about(_predict([folder], model, tmp_path / "out"), "IM0000.dcm",
                    "over ichfed's limit")


def test_an_enhanced_ct_claiming_a_billion_frames_is_refused_before_decoding(tmp_path, model):
    path = write_enhanced_ct(tiny_head(), AFFINE, tmp_path / "in" / "scan.dcm")
    _edit(path, NumberOfFrames=1_000_000_000)
    _one_line_about(_predict([path], model, tmp_path / "out"), "scan.dcm", "over ichfed's limit")


def test_a_compressed_series_with_a_corrupt_frame_is_one_line(tmp_path, model):
    import pydicom
    from pydicom.uid import RLELossless

    folder = _series(tmp_path)
    victim = sorted(folder.glob("*.dcm"))[5]
    ds = pydicom.dcmread(victim)
    ds.compress(RLELossless)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]  # a frame cut short
    ds.save_as(victim)
    _one_line_about(_predict([folder], model, tmp_path / "out"), victim.name,
                    "pixel data cannot be decoded")


def test_a_link_out_of_the_site_is_refused(tmp_path):
    site = make_site(tmp_path / "site", n=2)
    outside = save_nifti(tiny_head(), AFFINE, tmp_path / "elsewhere" / "secret.nii.gz")
    os.symlink(outside, site / "images" / "case09.nii.gz")
    result = runner.invoke(app, ["check", str(site)])
    _one_line_about(result, "case09.nii.gz", "links outside the site folder")


def test_a_pipe_in_place_of_a_scan_is_refused_without_blocking(tmp_path, model):
    fifo = tmp_path / "in" / "scan.nii"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    _one_line_about(_predict([fifo], model, tmp_path / "out"), "scan.nii", "not a regular file")


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000, " " * (2 * 2**20)],
                         ids=["invalid", "deep", "large"])
def test_a_hostile_site_json_is_one_line(tmp_path, text):
    site = make_site(tmp_path / "site", n=1)
    (site / "site.json").write_text(text)
    _one_line_about(runner.invoke(app, ["check", str(site)]), "site.json")


@pytest.mark.parametrize("text", ["[study\nseed = ", "a = " + "[" * 100_000,
                                  "# " + "x" * (2 * 2**20)], ids=["invalid", "deep", "large"])
def test_a_hostile_study_file_is_one_line(tmp_path, text):
    study = tmp_path / "study.toml"
    study.write_text(text)
    result = runner.invoke(app, ["experiment", "--study", str(study), "--out",
                                 str(tmp_path / "run")])
    _one_line_about(result, "study.toml")
    assert not (tmp_path / "run").exists()


def _model_copy(model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model / name).read_bytes())
    return folder


@pytest.mark.parametrize("change", ["foreign network", "giant network", "not an object"])
def test_a_hostile_model_config_is_one_line(tmp_path, model, change):
    folder = _model_copy(model, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    if change == "foreign network":
        config["model"]["network"] = "torchvision.models.resnet50"
    elif change == "giant network":
        config["model"]["features"] = [100_000] * 6
    else:
        config = ["model"]
    (folder / "config.json").write_text(json.dumps(config))
    scan = save_nifti(tiny_head(), AFFINE, tmp_path / "in" / "scan.nii.gz")
    _one_line_about(_predict([scan], folder, tmp_path / "out"), "config.json")


@pytest.mark.parametrize("change", ["wrong shapes", "not safetensors", "huge header"])
def test_hostile_weights_are_one_line(tmp_path, model, change):
    folder = _model_copy(model, tmp_path)
    weights = folder / "model.safetensors"
    if change == "wrong shapes":
        net = build_network(ModelSpec(features=(8, 8, 16, 16, 32, 8)))
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
    elif change == "not safetensors":
        weights.write_bytes(zlib.compress(b"\x80\x04 pickle or anything else" * 100))
    else:  # a header that claims 2**60 bytes of JSON
        weights.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    scan = save_nifti(tiny_head(), AFFINE, tmp_path / "in" / "scan.nii.gz")
    _one_line_about(_predict([scan], folder, tmp_path / "out"), "model.safetensors",
                    "weights do not fit")
