"""A procedural adult head in head coordinates (mm; x lateral, y anterior, z superior).

Every structure is an implicit function of position, so the head can be sampled on any scanner
grid (tilted, rotated, thick or thin slices) without resampling a voxel model. Depths are radial
distances from the scalp surface, a close approximation of the normal distance for a head shape.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ichfed.io.volume import HU_AIR
from ichfed.phantom.fields import SmoothField


def _sig(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def inside(p: np.ndarray, where: np.ndarray, centre, semi) -> np.ndarray:
    """Points inside an axis-aligned ellipsoid, tested only at the indices `where` (for speed)."""
    q = p[where]
    d = sum(((q[:, a] - centre[a]) / semi[a]) ** 2 for a in range(3))
    out = np.zeros(len(p), bool)
    out[where] = d < 1
    return out


@dataclass
class Anatomy:
    """Per-point results that lesion painting needs besides the HU values."""

    hu: np.ndarray
    depth_in: np.ndarray  # mm below the inner table (or above the skull base); < 0 outside
    depth_b: np.ndarray  # mm below the brain surface; < 0 outside the brain
    cavity: np.ndarray  # inside the cranial cavity
    brain: np.ndarray  # brain parenchyma (grey, white, deep grey)
    sulcal_csf: np.ndarray  # subarachnoid CSF: surface layer, sulci, fissure
    ventricle: np.ndarray
    infratentorial: np.ndarray
    plate: np.ndarray  # skull plate id between sutures (an epidural bleed stays in one)


@dataclass(frozen=True)
class HeadParams:
    """Every sampled number of one head, recorded in the case sidecar."""

    axes_mm: tuple[float, float, float, float]  # lateral, anterior, superior, inferior
    shape: tuple[float, ...]
    scalp_mm: float
    skull_mm: tuple[float, float, float]  # base, extra frontal/occipital, less temporal
    atrophy: float
    ventricle_scale: float
    hu: dict
    pineal_calc: bool
    choroid_calc: tuple[bool, bool]
    falx_calc: tuple[float, float, float] | None  # dural plaque on the falx: (y, z, radius)
    basal_calc: float  # radius (mm) of bilateral pallidal calcification, 0 when absent
    blood_factor: float  # < 1 for anaemic or hyperacute blood (lower HU)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "HeadParams":
        atrophy = float(rng.beta(1.5, 2.5))
        gm = rng.uniform(36, 42)
        hu = {
            "gm": gm, "wm": gm - rng.uniform(10, 14), "csf": rng.uniform(2, 10),
            "scalp": rng.uniform(40, 55), "fat": rng.uniform(-100, -70),
            "table": rng.uniform(1300, 1700), "diploe": rng.uniform(450, 750),
            "falx": rng.uniform(45, 65), "sinus": rng.uniform(48, 70),
            "deep_gm": gm - rng.uniform(0, 3), "calc": rng.uniform(120, 350),
            "globe": rng.uniform(5, 15),
        }
        falx = (float(rng.uniform(-40, 40)), float(rng.uniform(25, 55)),
                float(rng.uniform(3, 8))) if rng.random() < 0.4 else None
        return cls(
            axes_mm=(rng.uniform(69, 77), rng.uniform(88, 98), rng.uniform(80, 90),
                     rng.uniform(66, 74)),
            shape=tuple(float(v) for v in rng.normal(0, 0.025, 6)),
            scalp_mm=float(rng.uniform(4, 7)),
            skull_mm=(float(rng.uniform(5.5, 6.5)), float(rng.uniform(1.5, 2.5)),
                      float(rng.uniform(1.0, 2.0))),
            atrophy=atrophy,
            ventricle_scale=float((1 + 1.3 * atrophy) * rng.uniform(0.85, 1.15)),
            hu={k: round(float(v), 2) for k, v in hu.items()},
            pineal_calc=bool(rng.random() < 0.5),
            choroid_calc=(bool(rng.random() < 0.5), bool(rng.random() < 0.5)),
            falx_calc=falx,
            basal_calc=float(rng.uniform(2, 5)) if rng.random() < 0.2 else 0.0,
            blood_factor=float(rng.uniform(0.68, 0.8)) if rng.random() < 0.2 else 1.0,
        )

    def to_dict(self) -> dict:
        return asdict(self)


class Head:
    """Renders a sampled head at head-frame points."""

    def __init__(self, params: HeadParams, rng: np.random.Generator) -> None:
        self.p = params
        self.gyri = SmoothField.make(rng, wavelength_mm=22.0)
        self.texture = SmoothField.make(rng, wavelength_mm=30.0)

    # --- geometry -------------------------------------------------------------------------
    def scalp_depth(self, p: np.ndarray) -> np.ndarray:
        """Radial distance (mm) below the scalp surface; negative outside the head."""
        a, b, c, c_low = self.p.axes_mm
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        cz = np.where(z > 0, c, c_low)
        rho = np.sqrt((x / a) ** 2 + (y / b) ** 2 + (z / cz) ** 2) + 1e-6
        r = np.sqrt((p * p).sum(axis=1)) + 1e-6
        ux, uy, uz = x / r, y / r, z / r
        s = self.p.shape
        surface = (1 + s[0] * ux * uy + s[1] * uz + s[2] * (ux * ux - uy * uy) + s[3] * uy * uz
                   + s[4] * uy ** 3 + s[5] * ux * uz)
        return r * (surface / rho - 1)

    def skull_thickness(self, p: np.ndarray) -> np.ndarray:
        r = np.sqrt((p * p).sum(axis=1)) + 1e-6
        base, front, temporal = self.p.skull_mm
        return base + front * (p[:, 1] / r) ** 2 - temporal * (p[:, 0] / r) ** 2

    @staticmethod
    def floor(p: np.ndarray) -> np.ndarray:
        """Height of the skull base (anterior, middle, posterior fossa) plus petrous ridges."""
        x, y = p[:, 0], p[:, 1]
        z = -12 - 18 * _sig((25 - y) / 6) - 16 * _sig((-28 - y) / 6)
        ridge = (np.abs(x) > 14) & (np.abs(x) < 55)
        return z + ridge * 18 * np.exp(-(((y - (-20 + 0.35 * np.abs(x))) / 4.5) ** 2))

    @staticmethod
    def tentorium(p: np.ndarray) -> np.ndarray:
        return -4 + 0.26 * (p[:, 1] + 5) - 0.004 * p[:, 0] ** 2

    @staticmethod
    def sutures(p: np.ndarray, wobble: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance to nearest suture in mm, plate id) for points in the skull vault."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        coronal = y - (18 + 0.15 * z) + wobble
        lambdoid = y - (-62 + 0.35 * np.abs(x) - 0.1 * z) + wobble
        sagittal = np.where((y < 18) & (y > -62) & (z > 25), np.abs(x + 0.5 * wobble), 99.0)
        dist = np.minimum(np.minimum(np.abs(coronal), np.abs(lambdoid)), sagittal)
        plate = (coronal > 0) * 1 + (lambdoid > 0) * 2 + (x > 0) * 4
        return dist, plate.astype(np.int8)

    # --- rendering ------------------------------------------------------------------------
    def render(self, p: np.ndarray) -> Anatomy:
        """Normal anatomy at (N, 3) head-frame points (float32 mm)."""
        hu_t = self.p.hu
        n = len(p)
        hu = np.full(n, HU_AIR, np.float32)
        depth = self.scalp_depth(p)
        thick = self.skull_thickness(p)
        scalp = self.p.scalp_mm
        h_floor = p[:, 2] - self.floor(p)
        depth_in = np.minimum(depth - scalp - thick, h_floor)
        head = depth >= 0

        # scalp with its subcutaneous fat layer
        hu[head] = hu_t["scalp"]
        hu[head & (depth > 1.5) & (depth < 2.8)] = hu_t["fat"]

        # vault: outer table, diploe, inner table; sutures are fibrous gaps
        tex = self.texture(p)
        wobble = 1.5 * tex
        bone = head & (depth >= scalp) & (depth_in < 0)
        in_bone = depth - scalp
        table = (in_bone < 1.6) | (in_bone > thick - 1.6)
        hu[bone] = np.where(table[bone], hu_t["table"], hu_t["diploe"]) + 120 * tex[bone]
        suture_d, plate = self.sutures(p, wobble)
        hu[bone & (suture_d < 0.6) & (p[:, 2] > -10)] = 120.0

        # below the skull base: soft tissue, orbits, sinuses and mastoid air
        below = head & (h_floor < -9) & (depth >= scalp)
        hu[below] = hu_t["scalp"]
        base_bone = head & (h_floor >= -9) & (h_floor < 0) & (depth >= scalp)
        hu[base_bone] = hu_t["diploe"] + 250 + 150 * tex[base_bone]
        low = np.nonzero(below)[0]
        for side in (-1, 1):
            orbit = inside(p, low, (side * 31, 60, -30), (16, 19, 14))
            hu[orbit] = hu_t["fat"]
            hu[orbit & inside(p, low, (side * 31, 66, -29), (11, 11, 11))] = hu_t["globe"]
            mastoid = inside(p, low, (side * 52, -22, -34), (9, 10, 10))
            hu[mastoid] = np.where(tex[mastoid] > 0.2, 700.0, -900.0)
        sinus_air = inside(p, low, (0, 42, -36), (16, 14, 11)) & (np.abs(tex) > 0.15)
        hu[sinus_air] = -950.0

        cavity = head & (depth_in >= 0)
        return self._render_cavity(p, hu, depth_in, cavity, plate, tex)

    def _render_cavity(self, p, hu, depth_in, cavity, plate, tex) -> Anatomy:
        hu_t, atrophy, vs = self.p.hu, self.p.atrophy, self.p.ventricle_scale
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        csf_mm = 1.0 + 2.5 * atrophy
        depth_b = np.where(cavity, depth_in - csf_mm, -1.0)
        tent = self.tentorium(p)
        infra = cavity & (y < -5) & (z < tent)

        # gyri: sulci are level sets of a smooth field near the surface; grey matter lines them
        g = np.zeros(len(p), np.float32)
        g[cavity] = self.gyri(np.where(infra[cavity, None], 2.2, 1.0) * p[cavity])
        eps = np.where(infra, 0.05, 0.06 + 0.14 * atrophy)
        sulc_depth = np.where(infra, 30.0, 17.0)
        ag = np.abs(g)
        sulcus = cavity & (depth_b >= 0) & (depth_b < sulc_depth) & (ag < eps)
        grey = cavity & ((depth_b < 2.8) | ((depth_b < sulc_depth + 2.5) & (ag < eps + 0.25)))
        falx_edge = 22 - 0.004 * y ** 2
        fissure = cavity & (np.abs(x) < 0.7 + 1.5 * atrophy) & (z > falx_edge) & ~infra

        brain_hu = np.where(grey, hu_t["gm"], hu_t["wm"]) + 1.5 * tex
        hu[cavity] = brain_hu[cavity]
        # deep structures live in a central box: test only those points
        deep = np.nonzero(cavity & (np.abs(x) < 48) & (y > -48) & (y < 36) & (z > -40)
                          & (z < 34))[0]
        for side in (-1, 1):
            for centre, semi in (((side * 11, 12, 12), (4, 8, 6)), ((side * 20, 2, 4), (5, 12, 8)),
                                 ((side * 9, -12, 6), (7, 10, 7))):
                hu[inside(p, deep, centre, semi)] = hu_t["deep_gm"]

        ventricle = np.zeros(len(p), bool)
        for side in (-1, 1):
            body = inside(p, deep, (side * (2 + 3 * vs), 2, 15), (3.6 * vs, 26, 5 * vs))
            atrium = inside(p, deep, (side * 14, -28, 10), (4.5 * vs, 10, 5.5 * vs))
            temporal = inside(p, deep, (side * 29, -5, -12), (2 * vs, 12, 2.5 * vs))
            ventricle |= (body | atrium | temporal) & (x * side > 0.8)
        ventricle |= inside(p, deep, (0, -6, 2), (1.2 * vs, 11, 7))
        ventricle |= inside(p, deep, (0, -36, -30), (5, 3, 6))

        surface_csf = cavity & (depth_b < 0)
        sulcal_csf = surface_csf | sulcus | fissure
        hu[sulcal_csf | ventricle] = hu_t["csf"]
        brain = cavity & ~sulcal_csf & ~ventricle

        # dense membranes and vessels: the hyperdense look-alikes of normal anatomy
        falx = cavity & (np.abs(x) < 0.6) & (z > falx_edge) & ~infra
        hu[falx] = hu_t["falx"]
        hu[cavity & (np.abs(z - tent) < 0.7) & (y < -5) & (np.abs(x) > 4)] = hu_t["falx"]
        sss = cavity & (depth_in < 7) & (np.abs(x) < 6 - 0.8 * depth_in) & (z > 5)
        transverse = cavity & (depth_in < 5) & (np.abs(z - tent) < 3.5) & (y < -55)
        hu[sss | transverse] = hu_t["sinus"]
        calcs = []
        if self.p.pineal_calc:
            calcs.append(((0, -21, 8), (2.5,) * 3))
        for side, present in zip((-1, 1), self.p.choroid_calc, strict=True):
            if present:
                calcs.append(((side * 14, -28, 11), (3.5, 5.0, 3.5)))
        if self.p.falx_calc is not None:
            fy, fz, radius = self.p.falx_calc
            calcs.append(((0, fy, fz), (1.5, radius, radius)))
        if self.p.basal_calc:
            for side in (-1, 1):
                calcs.append(((side * 19, 2, 3), (self.p.basal_calc,) * 3))
        near_midline = np.nonzero(cavity & (np.abs(x) < 30))[0]
        for centre, semi in calcs:
            hu[inside(p, near_midline, centre, semi)] = hu_t["calc"]
        return Anatomy(hu=hu, depth_in=depth_in, depth_b=depth_b, cavity=cavity, brain=brain,
                       sulcal_csf=sulcal_csf, ventricle=ventricle, infratentorial=infra,
                       plate=plate)
