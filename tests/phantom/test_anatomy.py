"""Heads built around the MNI template: adult volumes, atrophy, a skull around the brain."""

from dataclasses import replace

import numpy as np
import pytest

from ichfed.phantom import BUILTIN
from ichfed.phantom.anatomy import Head
from ichfed.phantom.generate import plan_case
from ichfed.phantom.lesions import Lesion, paint
from ichfed.phantom.template import DATA, VENTRICLE_SEEDS, load

STEP = 2.0


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    axes = (np.arange(-90, 90, STEP), np.arange(-110, 110, STEP), np.arange(-75, 105, STEP))
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)


def test_shipped_template_and_its_notice():
    t = load()
    notice = (DATA.parent / "ICBM152_NOTICE.txt").read_text()
    assert "Louis Collins" in notice and "copyright notice appear in all copies" in notice
    seeds = np.array(VENTRICLE_SEEDS, np.float32)
    assert (t.vent(seeds, 0.5) > 0).all()  # the seeds lie inside the ventricles
    assert (t.cavity(seeds, 0.5) > 20).all()  # deep inside the cranial cavity
    far = np.array([[0, 0, 115], [95, 0, 0]], np.float32)
    assert (t.cavity(far, 0.5) < 0).all()
    assert t.gm.values.dtype == np.uint8 and t.gm.values.shape == t.wm.values.shape


def test_adult_volumes_and_csf_share(points):
    voxel_ml = STEP**3 / 1000
    for index in range(3):
        anat = plan_case(BUILTIN["nih"], 4, index).head.render(points)
        icv = anat.cavity.sum() * voxel_ml
        csf = (anat.sulcal_csf | anat.ventricle).sum() * voxel_ml
        assert 1100 <= icv <= 1800, icv
        assert 0.08 <= csf / icv <= 0.35, csf / icv
        assert 900 <= anat.brain.sum() * voxel_ml <= 1500


def test_atrophy_widens_ventricles_and_csf(points):
    plan = plan_case(BUILTIN["nih"], 4, 0)
    rng = np.random.default_rng(0)
    young = Head(replace(plan.head.p, atrophy=0.0, ventricle_mm=0.0), rng).render(points)
    rng = np.random.default_rng(0)
    old = Head(replace(plan.head.p, atrophy=0.8, ventricle_mm=4.0), rng).render(points)
    assert old.ventricle.sum() > 2 * young.ventricle.sum()
    assert old.sulcal_csf.sum() > 1.3 * young.sulcal_csf.sum()
    assert old.cavity.sum() == young.cavity.sum()  # the skull does not shrink with the brain


def test_skull_surrounds_the_cavity(points):
    anat = plan_case(BUILTIN["vumc"], 4, 1).head.render(points)
    bone = anat.hu > 400  # calcifications inside reach 350 HU
    assert not (bone & anat.cavity).any()
    # every cavity voxel on the vault's rim has bone within a few mm outside it
    q = anat.q
    rim = anat.cavity & (anat.depth_in < STEP) & (q[:, 2] > 20)
    outward = points[rim] + 6 * (points[rim] - points[rim].mean(0)) / np.linalg.norm(
        points[rim] - points[rim].mean(0), axis=1, keepdims=True)
    head = plan_case(BUILTIN["vumc"], 4, 1).head
    assert (head.render(outward.astype(np.float32)).hu > 400).mean() > 0.8


def test_bleeds_follow_anatomy(points):
    """Intraventricular blood layers in the occipital horns, a falcine subdural hugs the falx,
    Sylvian blood fills CSF, a contusion stays in brain tissue."""
    plan = plan_case(BUILTIN["nih"], 4, 2)
    anat = plan.head.render(points)
    q = anat.q
    ivh = Lesion("intraventricular", 5.0, 60.0, (0, 0, 0), (0, 0, 1), 0.0, side=0,
                 level_mm=-35.0)
    blood, _ = paint(ivh, points, anat, plan.irregular)
    assert blood.sum() > 50 and (anat.ventricle[blood]).all() and (q[blood, 1] < -35).all()
    falx = Lesion("subdural", 5.0, 60.0, (0, -20, 45), (1, 0, 0), 4.0, side=1, where="falx")
    blood, _ = paint(falx, points, anat, plan.irregular)
    assert blood.sum() > 20 and (q[blood, 0] > 0.6).all() and (q[blood, 0] < 4.7).all()
    sylvian = Lesion("subarachnoid", 3.0, 50.0, (40, 5, -8), (0, 0, 1), 15.0, where="sylvian")
    blood, _ = paint(sylvian, points, anat, plan.irregular)
    assert blood.sum() > 20 and anat.sulcal_csf[blood].all()
    contusion = Lesion("contusion", 10.0, 70.0, (20, 35, -15), (1, 1, 1), 12.0, oedema_mm=3.0)
    blood, _ = paint(contusion, points, anat, plan.irregular)
    assert blood.sum() > 50 and (anat.tissue[blood] > 0.25).all()
