"""`ichfed evaluate`: the per-scan CSV, the summary file, and a missing prediction."""

import json
import shutil

from typer.testing import CliRunner

from ichfed.cli import app
from tests.helpers import make_site


def test_evaluate_writes_per_scan_csv_and_summary(tmp_path):
    site = make_site(tmp_path / "site", n=3)
    pred = tmp_path / "pred"
    pred.mkdir()
    for mask in sorted((site / "masks").iterdir()):
        shutil.copy(mask, pred / mask.name.replace(".nii.gz", "_mask.nii.gz"))
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--truth", str(site)])
    assert result.exit_code == 0, result.output
    assert len((pred / "evaluation.csv").read_text().splitlines()) == 4  # header + 3 scans
    summary = json.loads((pred / "evaluation_summary.json").read_text())
    assert summary["scans"] == 3 and summary["mean_dice"] == 1.0
    assert summary["volume_bias_ml"] == 0.0
    assert summary["volume_limits_low_ml"] == summary["volume_limits_high_ml"] == 0.0
    assert "volume_bias_ml" in result.output


def test_missing_prediction_is_one_line_and_writes_nothing(tmp_path):
    site = make_site(tmp_path / "site", n=2)
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(site / "masks" / "case00.nii.gz", pred / "case00_mask.nii.gz")
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--truth", str(site)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {pred / 'case01_mask.nii.gz'}: no prediction for case case01"]
    assert sorted(p.name for p in pred.iterdir()) == ["case00_mask.nii.gz"]
