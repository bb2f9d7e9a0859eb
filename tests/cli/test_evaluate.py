"""`ichfed evaluate`: the per-scan CSV, the summary file, and cases without a prediction."""

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


def test_cases_without_prediction_are_left_out_and_named(tmp_path):
    site = make_site(tmp_path / "site", n=3)
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(site / "masks" / "case01.nii.gz", pred / "case01_mask.nii.gz")
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--truth", str(site)])
    assert result.exit_code == 0, result.output
    summary = json.loads((pred / "evaluation_summary.json").read_text())
    assert summary["scans"] == 1 and summary["without_prediction"] == ["case00", "case02"]
    assert (f"note: 2 labelled case(s) of {site} have no prediction in {pred} and were left "
            "out: case00, case02") in result.output


def test_no_prediction_at_all_is_one_line_and_writes_nothing(tmp_path):
    site = make_site(tmp_path / "site", n=2)
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "notes.txt").write_text("predictions go elsewhere")
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--truth", str(site)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {pred}: no <case>_mask.nii.gz for any of the 2 labelled cases of {site}"]
    assert sorted(p.name for p in pred.iterdir()) == ["notes.txt"]
