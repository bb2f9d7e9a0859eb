"""Training: split by scan, best checkpoint kept, an interrupted run resumes."""

import json

import numpy as np
import pytest
import torch

from ichfed.data import load_site_scans
from ichfed.errors import IchfedError
from ichfed.model.config import preset
from ichfed.train import train_sites
from ichfed.train.fit import CHECKPOINT, split_scans
from tests.helpers import make_site

TINY = dict(features=(4, 4, 8, 8, 16, 4), patch=32, lesion_patches=8, batch_size=8)


def test_split_is_by_scan_and_seeded():
    scans = list(range(10))
    train, val = split_scans(scans, 0.2, seed=3)
    assert len(val) == 2 and not set(train) & set(val)
    assert split_scans(scans, 0.2, seed=3) == (train, val)


def test_train_then_resume(tmp_path):
    site = make_site(tmp_path / "site", n=3)
    spec, tspec = preset("demo", max_epochs=3, **TINY)

    class Interrupt(Exception):
        pass

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"),
                    on_epoch=stop_after_first)
    assert (tmp_path / "m" / CHECKPOINT).exists()
    with pytest.raises(IchfedError, match="already holds a model"):
        train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"))
    summary = train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"), resume=True)
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3]
    assert not (tmp_path / "m" / CHECKPOINT).exists()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["summary"]["sites"] == ["site"]
    assert "case00" not in json.dumps(config)  # no case names leave with the model
    with pytest.raises(IchfedError, match="nothing to resume"):
        train_sites([site], tmp_path / "m", spec, tspec, torch.device("cpu"), resume=True)


def test_patches_are_centred_one_to_one(tmp_path):
    from ichfed.data.patches import sample_centres

    site = make_site(tmp_path / "site", n=1)
    spec, _ = preset("demo")
    scan = load_site_scans(site, spec)[0]
    centres = sample_centres(scan.label, scan.brain, 50, np.random.default_rng(0))
    on_lesion = scan.label[tuple(centres.T)] > 0
    assert on_lesion.sum() == 50 and (~on_lesion).sum() == 50
    assert scan.brain[tuple(centres.T)].all()


def test_edge_sampling_takes_half_the_background_from_the_rim(tmp_path):
    from ichfed.data.patches import brain_edge, sample_centres

    site = make_site(tmp_path / "site", n=1)
    spec, _ = preset("demo")
    scan = load_site_scans(site, spec)[0]
    edge = brain_edge(scan.brain, scan.canonical.spacing, 3.0)
    assert edge.any() and (edge <= scan.brain).all()
    centres = sample_centres(scan.label, scan.brain, 20, np.random.default_rng(1), 2.0, edge)
    background = centres[scan.label[tuple(centres.T)] == 0]
    assert len(background) == 40
    assert edge[tuple(background.T)].sum() >= 20
