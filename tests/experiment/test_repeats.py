"""`ichfed combine`: studies repeated with other model seeds, read together; studies that differ
in more than the seed are refused with one line and nothing written."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.experiment.study import StudySpec
from ichfed.report.tables import read_csv, write_csv

CASES = [f"nih_{i:04d}" for i in range(6)]


def _study(folder, dice: dict[tuple[str, str], list[float]], seed: int | None, **settings):
    """A finished study's two files, as `ichfed experiment` writes them (the built-in sites:
    nih trains, thin is a holdout site)."""
    overrides = {"max_epochs": 2} | ({"seed": seed} if seed is not None else {})
    spec = StudySpec(overrides=overrides, **settings)
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps(spec.to_dict(), default=list))
    write_csv([{"model": m, "site": site, "role": "-", "case": c, "dice": d, "pred_ml": d,
                "true_ml": 1.0, "hd95_mm": 2.0, "surface_dice_1mm": d}
               for (m, site), values in dice.items()
               for c, d in zip(CASES, values, strict=True)], folder / "results.csv")
    return folder


@pytest.fixture
def repeats(tmp_path):
    rng = np.random.default_rng(0)
    dice = {seed: {(m, site): rng.uniform(*low_high, 6).round(3).tolist()
                   for m, low_high in {"single-nih": (0.2, 0.9), "cwt": (0.3, 1),
                                       "pooled": (0.5, 1)}.items()
                   for site in ("nih", "thin")}
            for seed in (0, 1, 2)}
    folders = [_study(tmp_path / "s0", dice[0], None), _study(tmp_path / "s1", dice[1], 1),
               _study(tmp_path / "s2", dice[2], 2)]
    return folders, dice


def test_means_across_seeds_and_tests_on_seed_averaged_dice(repeats, tmp_path):
    folders, dice = repeats
    out = tmp_path / "combined"
    result = CliRunner().invoke(app, ["combine", *map(str, folders), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = {(r["model"], r["site"]): r for r in read_csv(out / "summary.csv")}
    mean = {}
    for pair in dice[0]:
        means = [np.mean(dice[s][pair]) for s in (0, 1, 2)]
        mean[pair] = np.mean(means)
        assert summary[pair]["seeds"] == 3
        assert summary[pair]["mean_dice"] == pytest.approx(mean[pair], abs=1e-4)
        assert summary[pair]["sd_dice"] == pytest.approx(np.std(means, ddof=1), abs=1e-4)
        assert summary[pair]["min_dice"] == pytest.approx(min(means), abs=1e-4)
    tests = {(t["site"], t["versus"]): t for t in read_csv(out / "wilcoxon.csv")}
    assert set(tests) == {(s, m) for s in ("nih", "thin") for m in ("single-nih", "pooled")}
    averaged = {m: np.mean([dice[s][(m, "thin")] for s in (0, 1, 2)], axis=0)
                for m in ("cwt", "single-nih")}
    assert tests[("thin", "single-nih")]["scans"] == 6
    assert tests[("thin", "single-nih")]["mean_dice_difference"] == pytest.approx(
        float((averaged["cwt"] - averaged["single-nih"]).mean()), abs=1e-4)
    answers = json.loads((out / "findings.json").read_text())
    beats = sum(np.mean(dice[s][("cwt", "thin")]) > np.mean(dice[s][("single-nih", "thin")])
                for s in (0, 1, 2))
    assert answers["multi_site_vs_single_site_on_holdout"]["thin"]["cwt_better_in"] == beats
    assert answers["against_pooled"]["cwt"]["ratio_of_means"]["nih"] == pytest.approx(
        mean[("cwt", "nih")] / mean[("pooled", "nih")], abs=1e-3)
    assert "mean Dice over 3 model seeds" in result.output
    assert f"in {beats} of 3 seeds" in result.output


@pytest.mark.parametrize("problem, message", [
    ("settings", "differ from"), ("seed", "seed 1"), ("unfinished", "not a finished study"),
    ("scans", "other models or scans")])
def test_studies_that_differ_in_more_than_the_seed_are_refused(repeats, tmp_path, problem,
                                                               message):
    folders, dice = repeats
    odd = tmp_path / "odd"
    if problem == "settings":
        _study(odd, dice[1], 3, test_cases=4)
    elif problem == "seed":
        _study(odd, dice[1], 1)
    elif problem == "unfinished":
        odd.mkdir()
    else:
        _study(odd, {("cwt", "nih"): dice[1][("cwt", "nih")]}, 3)
    out = tmp_path / "combined"
    result = CliRunner().invoke(app, ["combine", str(folders[0]), str(folders[1]), str(odd),
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert message in result.output and str(odd) in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_study_folder_is_not_overwritten(repeats):
    folders, _ = repeats
    before = (folders[0] / "results.csv").read_bytes()
    result = CliRunner().invoke(app, ["combine", *map(str, folders), "--out", str(folders[0])])
    assert result.exit_code == 1 and "holds a study" in result.output
    assert sorted(p.name for p in folders[0].iterdir()) == ["results.csv", "study.json"]
    assert (folders[0] / "results.csv").read_bytes() == before


def test_the_combined_report_shows_every_seed_and_study(repeats, tmp_path):
    folders, dice = repeats
    out = tmp_path / "combined"
    result = CliRunner().invoke(app, ["combine", *map(str, folders), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    means = [np.mean(dice[s][("cwt", "thin")]) for s in (0, 1, 2)]
    assert f"{np.mean(means):.3f} ({np.std(means, ddof=1):.3f})" in page
    assert "Mean Dice over 3 model seeds" in page and "data:image/png;base64," in page
    assert all(str(f.resolve()) in page for f in folders) and "<script" not in page
    assert "holdout thin: cwt beats the single-site models&#x27; mean in" in page
