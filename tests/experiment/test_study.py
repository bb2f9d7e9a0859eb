"""A tiny study end to end: every output file, summary numbers recomputed from the per-scan
results, a rerun that skips finished stages, and the report rendered by headless Chromium.
Its models are typed (`labels=types`, on typed built-in sites): the same study, with each
model's bleed types scored too."""

import csv
import json
import math
import shutil
import subprocess

import pytest
import torch
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.errors import IchfedError
from ichfed.experiment import study as study_module
from ichfed.infer.predict import segmentation
from ichfed.metrics.evaluate import summarize
from ichfed.preprocess.resample import plan_grid

pytestmark = pytest.mark.xdist_group("ray")  # one local Ray cluster at a time

MODELS = {"single-nih", "single-vumc", "cwt", "pooled", "threshold"}
SITES = {"nih", "vumc", "thin", "lowdose"}
CPU = torch.device("cpu")


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "run"
    args = ["experiment", "--out", str(out), "--train-cases", "3", "--test-cases", "2",
            "--set", "max_epochs=2", "--set", "max_minutes=0", "--set", "features=[4,4,8,8,16,4]",
            "--set", "patch=32", "--set", "lesion_patches=4", "--set", "labels=types",
            "--device", "cpu",
            "--models", "single,cwt,pooled,threshold"]  # fedavg: tests/federated
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, args, result.output


def test_every_output_is_written(study):
    out, _, output = study
    for name in ("results.csv", "summary.csv", "wilcoxon.csv", "findings.json", "report.html",
                 "study.json"):
        assert (out / name).is_file(), name
    for model in MODELS - {"threshold"}:
        assert (out / "models" / model / "model.safetensors").is_file()
        assert (out / "models" / model / "config.json").is_file()
    assert "mean Dice" in output and "cwt" in output
    rows = _rows(out / "results.csv")
    assert {r["model"] for r in rows} == MODELS and {r["site"] for r in rows} == SITES
    assert len(rows) == len(MODELS) * len(SITES) * 2
    typed = _rows(out / "types.csv")  # every model but the threshold floor, on every site
    assert {(r["model"], r["site"], r["case"]) for r in typed} == {
        (r["model"], r["site"], r["case"]) for r in rows if r["model"] != "threshold"}
    assert (out / "predictions" / "cwt" / "nih" / f"{typed[0]['case']}_types.nii.gz").is_file()
    assert "Bleed types: Dice per type" in (out / "report.html").read_text()
    tests = _rows(out / "wilcoxon.csv")
    assert {(t["model"], t["versus"]) for t in tests} == {("cwt", "single-nih"),
                                                        ("cwt", "single-vumc")}


def test_summary_is_recomputed_from_results(study):
    out, _, _ = study
    rows = _rows(out / "results.csv")
    for line in _rows(out / "summary.csv"):
        mine = [{k: float(r[k]) for k in ("dice", "pred_ml", "true_ml", "hd95_mm",
                                          "surface_dice_1mm")}
                for r in rows if r["model"] == line["model"] and r["site"] == line["site"]]
        expected = summarize(mine)
        for key in ("mean_dice", "median_dice", "mean_abs_volume_error_ml", "pearson_r",
                    "volume_bias_ml", "volume_limits_low_ml", "volume_limits_high_ml",
                    "mean_surface_dice_1mm"):
            got, want = float(line[key]), expected[key]
            assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want,
                                                                          abs_tol=1e-3), key


def test_rerun_skips_finished_stages(study):
    out, args, _ = study
    weights = out / "models" / "cwt" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert weights.stat().st_mtime_ns == before
    changed = CliRunner().invoke(app, [*args[:-2], "--seed", "1"])
    assert changed.exit_code == 1 and "other settings" in changed.output


def test_each_model_is_evaluated_at_its_own_pixel_size(study, tmp_path, monkeypatch):
    """As `ichfed predict` would: each model on a scan prepared at its own working pixel size
    (the single-site models' differ, each its own site's median), not the first model's."""
    out, _, _ = study
    singles = ("single-nih", "single-vumc")
    sizes = {json.loads((out / "models" / m / "config.json").read_text())["model"]["inplane_mm"]
             for m in singles}
    assert len(sizes) == 2
    seen = []

    def recording(prep, model, device):
        seen.append(prep.grid == plan_grid(prep.canonical.data.shape, prep.canonical.spacing,
                                           model.spec.working_mm))
        return segmentation(prep, model, device)

    monkeypatch.setattr(study_module, "segmentation", recording)
    study_module.evaluate_all(tmp_path, study_module.StudySpec(kinds=("single",)),
                              {"vumc": out / "data" / "vumc-test-types"},
                              {m: out / "models" / m for m in singles}, CPU)
    assert len(seen) == 2 * 2 and all(seen)  # two models on two scans


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed "
                    "(make test installs it)")
def test_report_renders_in_headless_chromium(study, tmp_path):
    out, _, _ = study
    page = (out / "report.html").as_uri()
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
            "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="paper-table"' in dom.stdout
    assert dom.stdout.count("data:image/png;base64,") == 4  # boxes, volumes, curves, overlays
    assert "CONSOLE" not in dom.stderr and "Uncaught" not in dom.stderr
    shot = tmp_path / "report.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,1600", page],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


def test_set_seed_reseeds_the_models_only():
    """`--set seed=N` draws the models again on the study's own scans and split (its --seed)."""
    again = study_module.StudySpec(seed=0, overrides={"seed": 3})
    for kind in ("single", "cwt", "fedavg", "pooled"):
        assert again.specs(kind)[1].seed == 3
        assert study_module.StudySpec(seed=5).specs(kind)[1].seed == 5
    assert again.seed == 0  # what gather_sites synthesises and splits with


def test_a_scale_sets_the_built_in_scans_unless_told_otherwise(tmp_path):
    paper = study_module.StudySpec(**study_module.scaled({"scale": "paper"}))
    assert (paper.size, paper.train_cases, paper.test_cases, paper.holdout_cases) == (
        "full", 32, 33, 20)
    mine = study_module.scaled({"scale": "paper", "test_cases": 5})
    assert (mine["size"], mine["test_cases"], mine["holdout_cases"]) == ("full", 5, 5)
    assert study_module.scaled({"holdout_cases": 3})["test_cases"] == 8
    for bad in ({"scale": "huge"}, {"size": "huge"}, {"holdout_cases": 0}):
        with pytest.raises(IchfedError, match="scale|size|holdout_cases"):
            study_module.StudySpec(**study_module.scaled(bad))
    # a folder written before the scale existed continues under today's settings
    old = study_module.StudySpec().to_dict()
    del old["size"], old["holdout_cases"]
    (tmp_path / "study.json").write_text(json.dumps(old))
    study_module.check_study_folder(tmp_path, study_module.StudySpec())
    with pytest.raises(IchfedError, match="other settings"):
        study_module.check_study_folder(tmp_path, paper)


def test_private_models_are_opt_in_and_named_by_their_noise(tmp_path):
    spec = study_module.StudySpec(dp_noise=(0.001, 1.0), kinds=("single", "fedavg"),
                                  overrides={"seed": 4})
    private = [(n, k) for n, k in study_module.models(spec) if k == "fedavg-dp"]
    assert private == [("fedavg-dp0.001", "fedavg-dp"), ("fedavg-dp1", "fedavg-dp")]
    assert not any(k == "fedavg-dp" for _, k in study_module.models(study_module.StudySpec()))
    assert spec.privacy(0.001).seed == 4  # a study's noise reruns the same
    assert spec.specs("fedavg-dp")[1].max_epochs == spec.specs("fedavg")[1].max_epochs
    for bad in ({"dp_noise": (0.0,)}, {"dp_noise": (1.0,), "dp_clip": -1.0}):
        with pytest.raises(IchfedError, match="dp"):
            study_module.StudySpec(**bad)
    # the report's privacy section: Dice against the epsilon each private model spent
    from ichfed.experiment.privacy import privacy_section

    folders = {}
    for name, epsilon in (("fedavg-dp0.001", 3.9e6), ("fedavg-dp1", 15.2)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "config.json").write_text(json.dumps({"summary": {"privacy": {
            "noise_multiplier": float(name.removeprefix("fedavg-dp")), "clipping_norm": 10.0,
            "spent_epsilon": epsilon, "delta": 1e-5}}}))
    summary = [{"model": m, "site": s, "mean_dice": d} for m, s, d in (
        ("fedavg", "nih", 0.6), ("fedavg-dp0.001", "nih", 0.4), ("fedavg-dp1", "nih", 0.0))]
    [(title, body)] = privacy_section(folders, summary, ["nih"])
    assert "epsilon" in title and body.count("<img") == 1 and "15.2" in body
    assert privacy_section({"fedavg-dp2": tmp_path / "untrained"}, summary, ["nih"]) == []
