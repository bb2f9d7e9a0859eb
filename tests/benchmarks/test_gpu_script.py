"""benchmarks/gpu.sh end to end at a tiny size on the CPU (`--tiny`), so that a call on a lent
GPU machine only measures: training and predict speed (a full-size scan), and the study on
Flower's deployment runtime (the paper preset, a tiny network, eight reduced-size scans)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ichfed.report.tables import read_csv

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("deploy")  # a coordinator and site processes


def test_gpu_script_runs_every_part_at_a_tiny_size(tmp_path):
    out, study = tmp_path / "out", tmp_path / "study"
    env = {**os.environ, "OUT": str(out), "PY": sys.executable, "STUDY_DIR": str(study),
           "WHEELS": str(tmp_path / "no-wheels"), "STUDY_S": "500"}
    proc = subprocess.run(["bash", "benchmarks/gpu.sh", "all", "--tiny"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "study finished" in proc.stdout
    train, predict = (json.loads(line) for line in (out / "speed.jsonl").read_text().split("\n")
                      if line)
    assert train["benchmark"] == "train_speed" and train["ichfed"]["patches_per_s"] > 0
    assert train["monai_reference"]["patches_per_s"] > 0 and train["ratio_to_reference"] > 0
    assert predict["benchmark"] == "predict_speed" and predict["end_to_end_s"] > 0
    assert predict["scan_shape"] == [512, 512, 36]
    rows = read_csv(out / "summary.csv")
    assert {r["model"] for r in rows} == {"single-nih", "single-vumc", "cwt"}
    assert {r["site"] for r in rows} == {"nih", "vumc", "thin", "lowdose"}
    settings = json.loads((study / "study.json").read_text())
    assert settings["preset"] == "paper"
    assert [len(list((study / "data" / f"{site}-test" / "images").iterdir()))
            for site in ("nih", "thin")] == [1, 1]
    assert "Results" in (out / "report.html").read_text()
    # cwt ran on the deployment runtime: a coordinator on loopback, not Ray's simulation
    assert "submitted to 127.0.0.1:" in (out / "study.log").read_text()
