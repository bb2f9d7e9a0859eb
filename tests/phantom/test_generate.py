"""The built-in data: realistic values, lesions where they belong, reproducible files."""

import json
from collections import Counter

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from ichfed.cli import app
from ichfed.phantom import BUILTIN, load_profile, synth_case, synth_site
from ichfed.phantom.generate import plan_case
from ichfed.phantom.lesions import KINDS
from ichfed.phantom.scanner import kernel_and_noise
from ichfed.preprocess import brain_mask, to_canonical

runner = CliRunner()


@pytest.fixture(scope="module")
def cases():
    """Two reduced scans with lesions per built-in site (seeded; a few seconds each)."""
    out = {}
    for site, profile in BUILTIN.items():
        found, index = [], 0
        while len(found) < 2:
            c = synth_case(profile, 7, index)
            index += 1
            if c.mask.any():
                found.append(c)
        out[site] = found
    return out


def test_tissue_values_in_reference_ranges():
    """Noise-free tissue HU of many sampled heads fall in phantom.md's table."""
    for index in range(10):
        plan = plan_case(BUILTIN["nih"], 3, index)
        grid = np.stack(np.meshgrid(np.arange(-60, 61, 3.0), np.arange(-80, 81, 3.0),
                                    np.arange(-10, 60, 3.0), indexing="ij"), -1)
        anat = plan.head.render(grid.reshape(-1, 3).astype(np.float32))
        hu = plan.head.p.hu
        brain = anat.hu[anat.brain]
        assert 20 <= hu["wm"] <= 30 and 35 <= hu["gm"] <= 45
        assert 0 <= np.median(anat.hu[anat.ventricle]) <= 15
        assert 20 <= np.median(brain) <= 45
        assert 300 <= hu["diploe"] <= 800 and 1000 <= hu["table"] <= 1900
        assert -100 <= hu["fat"] <= -50 and 40 <= hu["scalp"] <= 60


@pytest.mark.parametrize("site", list(BUILTIN))
def test_noise_sd_matches_profile(site):
    """The scanner model's noise measured on a flat 30 HU object is within 15% of target."""
    plan = plan_case(BUILTIN[site], 0, 0)
    acq = plan.acquisition
    flat = np.full((acq.matrix, acq.matrix, 4), 30.0, np.float32)
    image = kernel_and_noise(flat, acq, np.random.default_rng(0))
    centre = image[acq.matrix // 4: -acq.matrix // 4, acq.matrix // 4: -acq.matrix // 4]
    assert abs(centre.std() - acq.noise_sd) <= 0.15 * acq.noise_sd


def test_blood_only_in_cranial_cavity():
    """At the model level every lesion's blood lies inside the cavity, never in bone."""
    from ichfed.phantom.lesions import paint

    grid = np.stack(np.meshgrid(np.arange(-80, 81, 2.0), np.arange(-100, 101, 2.0),
                                np.arange(-50, 95, 2.0), indexing="ij"), -1).reshape(-1, 3)
    grid = grid.astype(np.float32)
    seen = 0
    for index in range(12):
        plan = plan_case(BUILTIN["vumc"], 9, index)
        for lesion in plan.lesions:
            anat = plan.head.render(grid)
            bone = anat.hu > 300
            blood, _ = paint(lesion, grid, anat, plan.irregular)
            assert not (blood & ~anat.cavity).any() and not (blood & bone).any()
            seen += blood.any()
    assert seen >= 5


def test_labels_inside_brain_mask_not_on_bone(cases):
    for site, found in cases.items():
        for c in found:
            label = c.mask.astype(bool)
            assert (c.image[label] < 1000).mean() > 0.995, site
            can = to_canonical(np.maximum(c.image, -1024).astype(np.float32), c.affine)
            brain = brain_mask(can.data, can.spacing)
            inside = (to_canonical(c.mask, c.affine).data.astype(bool) & brain).sum()
            assert inside >= 0.97 * label.sum(), site


def test_site_files_share_geometry_and_are_reproducible(tmp_path):
    a = synth_site(tmp_path / "a", BUILTIN["vumc"], 2, seed=5)
    b = synth_site(tmp_path / "b", BUILTIN["vumc"], 2, seed=5)
    for img in sorted((a / "images").iterdir()):
        mask = a / "masks" / img.name
        i, m = nib.load(img), nib.load(mask)
        assert i.shape == m.shape
        np.testing.assert_array_equal(i.affine, m.affine)
        assert img.read_bytes() == (b / "images" / img.name).read_bytes()
        assert mask.read_bytes() == (b / "masks" / img.name).read_bytes()
        params = json.loads((a / "params" / img.name.replace(".nii.gz", ".json")).read_text())
        assert params["seed"] == 5 and "acquisition" in params and "lesions" in params
    assert runner.invoke(app, ["check", str(a)]).exit_code == 0


def test_lesion_mix_over_a_batch():
    """Over 20 scans every lesion type appears; 20-40% lesion-free is the site setting."""
    kinds = Counter()
    for site in ("nih", "vumc"):
        for index in range(10):
            kinds.update(les.kind for les in plan_case(BUILTIN[site], 11, index).lesions)
    assert set(kinds) == set(KINDS)
    free, volumes = 0, []
    for index in range(200):
        lesions = plan_case(BUILTIN["nih"], 2, index).lesions
        free += not lesions
        volumes.append(sum(les.target_ml for les in lesions))
    assert 0.15 <= free / 200 <= 0.4
    volumes = [v for v in volumes if v > 0]
    assert min(volumes) < 3 and max(volumes) > 100 and 10 <= np.median(volumes) <= 30


def test_user_profile_from_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ndescription = "test"\nrole = "holdout"\n'
                    'p_no_lesion = 0.0\n[[scanners]]\nname = "X"\nslice_mm = [3.0, 3.0]\n'
                    '[annotation]\ninclude_oedema = true\n')
    profile = load_profile(str(path))
    assert profile.scanners[0].slice_mm == (3.0, 3.0) and profile.annotation.include_oedema
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--site", str(path),
                                 "--cases", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "images" / "mine_000.nii.gz").exists()


def test_bad_profile_and_existing_site(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nfoo = 1\n')
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--site", str(bad)])
    assert result.exit_code == 1 and str(bad) in result.stderr
    synth_site(tmp_path / "s", BUILTIN["nih"], 1)
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--cases", "1"])
    assert result.exit_code == 1 and "already holds a site" in result.stderr


def test_list_sites():
    result = runner.invoke(app, ["synth", "--list-sites"])
    assert result.exit_code == 0
    assert all(name in result.stdout for name in BUILTIN)
