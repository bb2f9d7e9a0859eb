"""`ichfed check`: findings for a good site, and one line per problem for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ichfed.cli import app
from tests.helpers import (
    make_site,
    save_nifti,
    tiny_head,
    tree_state,
    write_dicom_series,
    write_enhanced_ct,
)

runner = CliRunner()
AFFINE = np.diag([0.9, 0.9, 5.0, 1.0])


def run_check(*args: str):
    return runner.invoke(app, ["check", *map(str, args)])


def test_good_site_is_usable(tmp_path):
    site = make_site(tmp_path / "site", n=3)
    save_nifti(np.zeros((48, 40, 12), np.uint8), AFFINE, site / "masks" / "case00.nii.gz")
    result = run_check(site, "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["usable"] and len(found["cases"]) == 3
    assert found["cases"][0]["lesion_ml"] == 0.0
    assert found["cases"][1]["lesion_ml"] > 0
    assert found["cases"][1]["spacing_mm"] == [0.9, 0.9, 5.0]
    assert found["cases"][1]["orientation"] == "RAS"
    table = run_check(site)
    assert table.exit_code == 0 and "empty masks" in table.stdout and "usable" in table.output


def test_dicom_case_in_site(tmp_path):
    site = make_site(tmp_path / "site", n=1)
    vol = tiny_head(seed=0)
    (site / "images" / "case00.nii.gz").unlink()
    write_dicom_series(vol, AFFINE, site / "images" / "case00")
    assert run_check(site).exit_code == 0


def test_enhanced_ct_file_case_in_site(tmp_path):
    site = make_site(tmp_path / "site", n=1)
    (site / "images" / "case00.nii.gz").unlink()
    write_enhanced_ct(tiny_head(seed=0), AFFINE, site / "images" / "case00.dcm")
    result = run_check(site)
    assert result.exit_code == 0 and "usable" in result.output
    assert "mask without an image" not in result.output  # case00.dcm met case00.nii.gz


def _bad(site: Path, kind: str) -> Path:
    """Break one case of a valid site in the named way; return the file that should be named."""
    img, mask = site / "images" / "case01.nii.gz", site / "masks" / "case01.nii.gz"
    vol = tiny_head()
    if kind == "truncated":
        data = img.read_bytes()
        img.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        img.write_text("not an image\n")
    elif kind == "2d":
        save_nifti(vol[:, :, 0], AFFINE, img)
    elif kind == "4d":
        save_nifti(np.stack([vol, vol], axis=-1), AFFINE, img)
    elif kind == "nan":
        vol[3, 3, 3] = np.nan
        save_nifti(vol, AFFINE, img)
    elif kind == "mask-shape":
        save_nifti(np.zeros((10, 10, 10), np.uint8), AFFINE, mask)
        return mask
    elif kind == "mask-affine":
        save_nifti(np.zeros(vol.shape, np.uint8), np.diag([1.0, 1.0, 5.0, 1.0]), mask)
        return mask
    elif kind == "8bit":
        save_nifti(np.clip(vol, 0, 255), AFFINE, img)
    elif kind == "two-series":
        img.unlink()
        write_dicom_series(vol, AFFINE, site / "images" / "case01" / "a", series_number=1)
        write_dicom_series(vol, AFFINE, site / "images" / "case01" / "b", series_number=2)
        return site / "images" / "case01"
    elif kind == "missing-slice":
        img.unlink()
        write_dicom_series(vol, AFFINE, site / "images" / "case01", skip=(5,))
        return site / "images" / "case01"
    elif kind == "no-mask":
        mask.unlink()
    elif kind == "no-image":
        img.unlink()
        return mask
    return img


KINDS = {
    "truncated": "not a readable NIfTI", "text": "not a readable NIfTI", "2d": "is 2D",
    "4d": "is 4D", "nan": "NaN", "mask-shape": "is not its image's",
    "mask-affine": "is not its image's",
    "8bit": "8-bit", "two-series": "holds 2 CT series", "missing-slice": "slice missing",
    "no-mask": "has no mask", "no-image": "mask without an image",
}


@pytest.mark.parametrize("kind", KINDS)
def test_bad_case_is_one_line_naming_the_file(tmp_path, kind):
    site = make_site(tmp_path / "site", n=2)
    named = _bad(site, kind)
    before = tree_state(site)
    result = run_check(site)
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if KINDS[kind] in ln]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(str(named)), lines[0]
    assert "Traceback" not in result.output
    assert tree_state(site) == before


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_bad_site_path(tmp_path, kind):
    path = tmp_path / "site"
    if kind == "empty":
        path.mkdir()
    elif kind == "file":
        path.write_text("x")
    result = run_check(path)
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(f"error: {path}: ")


def test_unreadable_folder_real_process(tmp_path):
    """As the real command: one line, no traceback. Root reads anything, so as root the command
    runs without the capabilities that bypass file permissions (setpriv, from util-linux)."""
    site = make_site(tmp_path / "site", n=1)
    os.chmod(site, 0o000)
    cmd = [sys.executable, "-m", "ichfed", "check", str(site)]
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.chmod(site, 0o755)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {site}: cannot be read (permission denied)"
