"""The study on a user's own sites: a study file, a seeded split written and honoured, and a bad
site stopping the run before any training."""

import csv
import json

from typer.testing import CliRunner

from ichfed.cli import app
from tests.helpers import make_site

QUICK = ["--set", "max_epochs=1", "--set", "max_minutes=0", "--set", "features=[4,4,8,8,16,4]",
         "--set", "patch=32", "--set", "lesion_patches=4", "--device", "cpu",
         "--models", "single,pooled,threshold"]


def _study_file(path, sites: dict[str, tuple[str, str]], split: str | None = None):
    lines = ['[study]', 'seed = 3', 'test_fraction = 0.4', '']
    for name, (role, folder) in sites.items():
        lines += ["[[site]]", f'name = "{name}"', f'role = "{role}"', f'path = "{folder}"']
        if split and name == "alpha":
            lines.append(f'split = "{split}"')
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _results(out):
    with open(out / "results.csv", newline="") as fh:
        return [(r["model"], r["site"], r["case"], r["dice"]) for r in csv.DictReader(fh)]


def test_study_file_with_user_sites_and_a_repeatable_split(tmp_path):
    sites = {"alpha": ("train", str(make_site(tmp_path / "a", n=5))),
             "beta": ("holdout", str(make_site(tmp_path / "b", n=2)))}
    runner = CliRunner()
    first = runner.invoke(app, ["experiment", "--out", str(tmp_path / "s1"), "--study",
                                str(_study_file(tmp_path / "study.toml", sites)), *QUICK])
    assert first.exit_code == 0, first.output
    split = json.loads((tmp_path / "s1" / "splits" / "alpha.json").read_text())
    assert len(split["test"]) == 2 and len(split["train"]) == 3
    assert not set(split["train"]) & set(split["test"])
    rows = _results(tmp_path / "s1")
    assert {r[1] for r in rows} == {"alpha", "beta"}
    assert {r[2] for r in rows if r[1] == "alpha"} == set(split["test"])
    assert (tmp_path / "s1" / "report.html").is_file()
    # the same study with the written split, in a new folder: the same per-case results
    again = _study_file(tmp_path / "again.toml", sites,
                        split=str(tmp_path / "s1" / "splits" / "alpha.json"))
    second = runner.invoke(app, ["experiment", "--out", str(tmp_path / "s2"), "--study",
                                 str(again), *QUICK])
    assert second.exit_code == 0, second.output
    assert _results(tmp_path / "s2") == rows


def test_bad_site_stops_the_study_before_training(tmp_path):
    good = make_site(tmp_path / "good", n=3)
    bad = make_site(tmp_path / "bad", n=3)
    (bad / "images" / "case01.nii.gz").write_bytes(b"not a nifti")
    study = _study_file(tmp_path / "study.toml", {"good": ("train", str(good)),
                                                   "bad": ("holdout", str(bad))})
    result = CliRunner().invoke(app, ["experiment", "--out", str(tmp_path / "s"), "--study",
                                      str(study), *QUICK])
    assert result.exit_code == 1
    assert "site bad" in result.output and "not usable" in result.output
    assert "case01" in result.output
    assert not (tmp_path / "s" / "models").exists()
