"""Traumatic hemorrhages as implicit shapes in head coordinates.

Each lesion paints its HU onto the anatomy and returns where its blood (core) and its oedema are,
so that each site's annotation protocol can decide what the label holds. Positions are template
(MNI) coordinates, so bleeds sit where the anatomy puts them in every head.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ichfed.phantom.anatomy import (
    CAVITY_CENTRE,
    TENTORIUM_FRONT_Y,
    Anatomy,
    Head,
    falx_edge,
    sutures,
    tentorium,
)
from ichfed.phantom.fields import SmoothField

KINDS = ("epidural", "subdural", "contusion", "subarachnoid", "intraventricular")
KIND_P = (0.12, 0.34, 0.30, 0.15, 0.09)
NO_LABEL = np.zeros(0, bool)


@dataclass
class Lesion:
    """One bleed. `kind` in KINDS; `phase` for subdurals; `where` its anatomical site; positions
    in template mm, thicknesses (`size_mm` of extra-axial bleeds) in head mm."""

    kind: str
    target_ml: float
    hu: float
    centre: tuple[float, float, float]
    direction: tuple[float, float, float]
    size_mm: float  # max thickness (extra-axial) or radius (blobs, SAH region)
    extent_rad: float = 0.0
    phase: str = "acute"
    oedema_mm: float = 0.0
    side: int = 1
    plate: int = -1
    level_mm: float = 0.0
    where: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def inner_radius(head: Head, u: np.ndarray) -> float:
    """Template mm from CAVITY_CENTRE to the inner table along direction u."""
    r = np.linspace(10, 120, 221, dtype=np.float32)
    pts = (CAVITY_CENTRE + r[:, None] * u[None, :]).astype(np.float32)
    inside = np.nonzero(head.depth_in(pts) >= 0)[0]
    return float(r[inside[-1]]) if len(inside) else 60.0


def _extra_axial(rng, head: Head, kind: str, ml: float) -> Lesion:
    """An epidural, or a subdural along the convexity, the falx or the tentorium."""
    side = int(rng.choice([-1, 1]))
    where = "convexity"
    if kind == "epidural":
        u = _unit((side, rng.uniform(-0.7, 0.5), rng.uniform(-0.05, 0.6)))
        extent = float(np.clip(0.33 + 0.0045 * ml, 0.3, 0.8))
        shape_integral = 0.5
    else:
        where = str(rng.choice(["convexity", "falx", "tentorium"], p=[0.8, 0.12, 0.08]))
        u = _unit((side, rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.7)))
        extent = float(rng.uniform(0.75, 1.1))
        shape_integral = 1 / 1.6
    radius = inner_radius(head, u)
    if where == "convexity":
        area = np.pi * (radius * head.mm) ** 2 * extent**2 * shape_integral
        centre = tuple(float(v) for v in CAVITY_CENTRE + u * radius)
    else:  # a sheet along the membrane, about 60 x 40 mm
        area = 2400.0 * shape_integral
        centre = ((0.0, float(rng.uniform(-55, 20)), float(rng.uniform(35, 60))) if where == "falx"
                  else (float(side * rng.uniform(15, 35)), float(rng.uniform(-80, -50)), 0.0))
    thick = float(np.clip(ml * 1000 / area, 2.0, 35.0 if where == "convexity" else 8.0))
    phase, hu = "acute", rng.uniform(55, 82) * head.p.blood_factor
    if kind == "subdural":
        phase = str(rng.choice(["acute", "subacute", "chronic", "mixed"], p=[0.6, 0.2, 0.14, 0.06]))
        hu = {"acute": hu, "subacute": rng.uniform(32, 45), "chronic": rng.uniform(8, 22),
              "mixed": rng.uniform(10, 22)}[phase]
    plate = int(sutures(np.array([centre], np.float32), np.zeros(1, np.float32))[1][0])
    return Lesion(kind, ml, float(hu), centre, tuple(u), thick, extent, phase, side=side,
                  plate=plate, level_mm=float(rng.uniform(-50, -20)), where=where)


def _contusion_centre(rng) -> tuple[float, float, float]:
    """MNI centre: orbitofrontal and anterior temporal lobes most often (coup-contrecoup)."""
    side = rng.choice([-1, 1])
    where = rng.choice(["orbitofrontal", "temporal", "deep", "parietal"], p=[0.4, 0.35, 0.1, 0.15])
    if where == "orbitofrontal":
        return side * rng.uniform(8, 30), rng.uniform(20, 45), rng.uniform(-24, -8)
    if where == "temporal":
        return side * rng.uniform(36, 50), rng.uniform(0, 18), rng.uniform(-36, -20)
    if where == "deep":
        return side * rng.uniform(15, 26), rng.uniform(-15, 10), rng.uniform(0, 15)
    return side * rng.uniform(25, 50), rng.uniform(-60, -25), rng.uniform(25, 50)


def _sah_centre(rng, head: Head) -> tuple[tuple[float, float, float], str]:
    """MNI centre of a subarachnoid bleed: convexity sulci, a Sylvian fissure, basal cisterns."""
    where = str(rng.choice(["convexity", "sylvian", "basal"], p=[0.5, 0.3, 0.2]))
    if where == "sylvian":
        return (float(rng.choice([-1, 1]) * rng.uniform(35, 45)), float(rng.uniform(-5, 12)),
                float(rng.uniform(-14, 0))), where
    if where == "basal":
        return (0.0, float(rng.uniform(-20, 0)), float(rng.uniform(-22, -8))), where
    u = _unit((rng.normal(), rng.normal(), abs(rng.normal()) + 0.3))
    return tuple(float(v) for v in CAVITY_CENTRE + u * inner_radius(head, u)), where


def sample_lesions(rng: np.random.Generator, head: Head, p_none: float,
                   median_ml: float) -> list[Lesion]:
    """0-3 bleeds whose total volume is log-normal around the site's median."""
    if rng.random() < p_none:
        return []
    total = float(np.clip(rng.lognormal(np.log(median_ml), 1.0), 0.4, 160.0))
    n = int(rng.choice([1, 2, 3], p=[0.55, 0.33, 0.12]))
    shares = rng.dirichlet(np.full(n, 1.5)) * total
    lesions = []
    for ml in shares:
        kind = str(rng.choice(KINDS, p=KIND_P))
        if kind in ("epidural", "subdural"):
            lesions.append(_extra_axial(rng, head, kind, float(ml)))
        elif kind == "contusion":
            ml = float(min(ml, 90.0))
            r = float((3 * ml * 1000 / (4 * np.pi)) ** (1 / 3)) / head.mm
            lesions.append(Lesion(kind, ml, float(rng.uniform(55, 80) * head.p.blood_factor),
                                  _contusion_centre(rng),
                                  tuple(rng.uniform(0.7, 1.3, 3)), r,
                                  oedema_mm=float(rng.uniform(2, 8))))
        elif kind == "subarachnoid":
            centre, where = _sah_centre(rng, head)
            lesions.append(Lesion(kind, float(min(ml, 15.0)), float(rng.uniform(38, 60)),
                                  centre, (0.0, 0.0, 1.0), float(rng.uniform(14, 30)),
                                  where=where))
        else:
            lesions.append(Lesion(kind, float(min(ml, 25.0)),
                                  float(rng.uniform(50, 75) * head.p.blood_factor),
                                  (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.0,
                                  side=int(rng.choice([-1, 0, 1])),
                                  level_mm=float(rng.uniform(-52, -30))))
    return lesions


def paint(lesion: Lesion, p: np.ndarray, anat: Anatomy, irregular: SmoothField
          ) -> tuple[np.ndarray, np.ndarray]:
    """Write the lesion's HU into anat.hu; return (blood, oedema) masks at the points. Lesion
    geometry is in template (MNI) coordinates, anat.q; `p` (head frame) drives texture."""
    cav, q = anat.cavity, anat.q
    if lesion.kind in ("epidural", "subdural"):
        blood = _extra_axial_blood(lesion, q, anat)
        if lesion.phase == "mixed":  # acute blood layering in the dependent (posterior) part
            values = np.where(q[blood, 1] < lesion.level_mm, lesion.hu + 45, lesion.hu)
        else:
            values = lesion.hu + 4 * irregular(p[blood] * 2.0)
        anat.hu[blood] = values
        return blood, NO_LABEL
    if lesion.kind == "contusion":
        d = (q - np.asarray(lesion.centre, np.float32)) / (lesion.size_mm * np.asarray(
            lesion.direction, np.float32))
        rho = np.sqrt((d * d).sum(axis=1))
        near = rho < 1 + (lesion.oedema_mm / lesion.size_mm) + 0.5
        rho_n = np.full(len(p), 9.0, np.float32)
        rho_n[near] = rho[near] + 0.22 * irregular(p[near] * 1.5)
        tissue = cav & (anat.tissue > 0.25) & ~anat.ventricle
        blood = tissue & (rho_n < 1)
        oedema = tissue & ~blood & (rho_n < 1 + lesion.oedema_mm / lesion.size_mm)
        anat.hu[oedema] = np.minimum(anat.hu[oedema], 16.0)
        # haemorrhagic contusions are a mix of petechial blood and oedema, not a uniform clot
        mix = np.clip(0.6 + 0.45 * irregular(p[blood] * 4.0), 0.15, 1.0)
        anat.hu[blood] = lesion.hu * mix + 16.0 * (1 - mix)
        return blood, oedema
    if lesion.kind == "subarachnoid":
        near = np.sqrt(((q - np.asarray(lesion.centre, np.float32)) ** 2).sum(axis=1))
        blood = anat.sulcal_csf & (near < lesion.size_mm) & (anat.depth_in > 0.5)
        anat.hu[blood] = lesion.hu
        return blood, NO_LABEL
    side = lesion.side
    blood = anat.ventricle & (q[:, 1] < lesion.level_mm)  # supine: the occipital horns
    if side:
        blood &= q[:, 0] * side > 0
    anat.hu[blood] = lesion.hu
    return blood, NO_LABEL


def _extra_axial_blood(lesion: Lesion, q: np.ndarray, anat: Anatomy) -> np.ndarray:
    cav = anat.cavity
    if lesion.where == "falx":  # a sheet beside the falx, in one hemisphere
        d = q - np.asarray(lesion.centre, np.float32)
        alpha = np.sqrt((d[:, 1] / 30) ** 2 + (d[:, 2] / 20) ** 2)
        h = lesion.size_mm * np.clip(1 - alpha**2, 0, None) ** 0.6
        off = q[:, 0] * lesion.side
        return cav & (off > 0.6) & (off < 0.6 + h) & (q[:, 2] > falx_edge(q)) & \
            ~anat.infratentorial
    if lesion.where == "tentorium":  # a sheet on the tentorium, above it, on one side
        d = q - np.asarray(lesion.centre, np.float32)
        alpha = np.sqrt((d[:, 0] / 25) ** 2 + (d[:, 1] / 30) ** 2)
        h = lesion.size_mm * np.clip(1 - alpha**2, 0, None) ** 0.6
        above = q[:, 2] - tentorium(q)
        return cav & (above > 0.7) & (above < 0.7 + h) & (q[:, 1] < TENTORIUM_FRONT_Y) & \
            (q[:, 0] * lesion.side > 0.6)
    u = np.asarray(lesion.direction, np.float32)
    d = q - CAVITY_CENTRE
    r = np.sqrt((d * d).sum(axis=1)) + 1e-6
    alpha = np.arccos(np.clip((d * u).sum(axis=1) / r, -1, 1)) / lesion.extent_rad
    power = 1.0 if lesion.kind == "epidural" else 0.6
    h = lesion.size_mm * np.clip(1 - alpha**2, 0, None) ** power
    blood = cav & (anat.depth_in < h) & (alpha < 1)
    if lesion.kind == "epidural":
        return blood & (anat.plate == lesion.plate)
    return blood & (q[:, 0] * lesion.side > 0.6) & ~anat.infratentorial
