"""An adult head built around a real brain: the MNI ICBM152 template, reshaped per case.

Head coordinates p (mm; x to the patient's right, y anterior, z superior, origin near the head's
centre) map to template coordinates q = HEAD_CENTRE + A p + warp(p): a random size and shape
(A), a smooth random deformation and left-right asymmetry (warp). Every structure is then a
function of q, so the head can be sampled on any scanner grid (tilted, rotated, thick or thin
slices) without resampling a voxel model. Brain tissue follows the template's grey and white
matter maps; the cranial cavity is the brain's closed outline; the skull, the skull base and the
scalp are layers of the signed distance outside it. Structures the maps do not hold (falx,
tentorium, sinuses, orbits, air cells, calcifications) sit at their MNI positions.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ichfed.io.volume import HU_AIR
from ichfed.phantom.fields import SmoothField, transform
from ichfed.phantom.template import SD_UNIT_MM, Template, load

HEAD_CENTRE = np.array([0.0, -18.0, 0.0], np.float32)  # MNI point at the head frame's origin
CAVITY_CENTRE = np.array([0.0, -18.0, 10.0], np.float32)  # MNI; skull and bleeds face out from it
TENTORIUM_FRONT_Y = -25.0  # MNI y in front of which nothing is infratentorial
FAR_MM = 60.0
LATTICE, LATTICE_MM = 8, 7.0  # samples of the smooth fields on a scanner plane: at least
# every 8 pixels, or every 7 mm on fine grids (the fields' wavelengths are 30-50 mm)


def inside(q: np.ndarray, where: np.ndarray, centre, semi) -> np.ndarray:
    """Points inside an axis-aligned ellipsoid, tested only at the indices `where` (for speed)."""
    r = q[where]
    d = sum(((r[:, a] - centre[a]) / semi[a]) ** 2 for a in range(3))
    out = np.zeros(len(q), bool)
    out[where] = d < 1
    return out


def tentorium(q: np.ndarray) -> np.ndarray:
    """MNI height of the tentorium over (x, y), fitted to the gap between the occipital lobes
    and the cerebellum in the template."""
    return -2 + 0.30 * (q[:, 1] + 40) - 0.006 * q[:, 0] ** 2


def falx_edge(q: np.ndarray) -> np.ndarray:
    """MNI height of the falx's free edge: above the corpus callosum, down to the crista galli."""
    return 28 - 0.01 * (q[:, 1] + 10) ** 2


def sutures(q: np.ndarray, wobble: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the nearest suture in mm, skull plate id) for points of the vault."""
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    coronal = y - (5 + 0.2 * (80 - z)) + wobble
    lambdoid = y - (-88 + 0.3 * np.abs(x) - 0.15 * (z - 60)) + wobble
    sagittal = np.where((coronal < 0) & (lambdoid > 0) & (z > 30), np.abs(x + 0.5 * wobble), 99.0)
    dist = np.minimum(np.minimum(np.abs(coronal), np.abs(lambdoid)), sagittal)
    plate = (coronal > 0) * 1 + (lambdoid > 0) * 2 + (x > 0) * 4
    return dist, plate.astype(np.int8)


@dataclass
class Anatomy:
    """Per-point results that lesion painting needs besides the HU values."""

    hu: np.ndarray
    q: np.ndarray  # template (MNI) coordinates of each point
    depth_in: np.ndarray  # mm inside the inner table; < 0 outside the cranial cavity
    cavity: np.ndarray  # inside the cranial cavity
    tissue: np.ndarray  # brain tissue fraction (grey + white) after atrophy, 0 in CSF
    brain: np.ndarray  # brain parenchyma (grey, white, deep grey)
    sulcal_csf: np.ndarray  # subarachnoid CSF: surface layer, sulci, fissures, cisterns
    ventricle: np.ndarray
    infratentorial: np.ndarray
    plate: np.ndarray  # skull plate id between sutures (an epidural bleed stays in one)


@dataclass(frozen=True)
class HeadParams:
    """Every sampled number of one head, recorded in the case sidecar."""

    age: float
    scale: tuple[float, float, float]  # head mm per template mm along x, y, z
    shear: tuple[float, float, float]  # xy, xz, yz
    warp_mm: float  # SD of the smooth deformation
    petalia_mm: float  # right frontal / left occipital protrusion
    scalp_mm: float
    skull_mm: tuple[float, float, float]  # base, extra frontal/occipital, less temporal
    atrophy: float
    ventricle_mm: float  # how far the ventricles' walls move out from the template's
    hu: dict
    pineal_calc: bool
    choroid_calc: tuple[bool, bool]
    falx_calc: tuple[float, float, float] | None  # dural plaque on the falx: (y, z, radius)
    basal_calc: float  # radius (mm) of bilateral pallidal calcification, 0 when absent
    blood_factor: float  # < 1 for anaemic or hyperacute blood (lower HU)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "HeadParams":
        age = float(rng.uniform(18, 90))
        # atrophy grows with age past about 40, with a wide spread between people
        atrophy = float(np.clip(0.012 * max(age - 35, 0) + rng.normal(0.1, 0.12), 0, 1))
        wm = rng.uniform(24, 30)  # sources of the ranges: docs/phantom.md
        hu = {
            "gm": float(np.clip(wm + rng.uniform(9, 13), 36, 44)), "wm": wm,
            "csf": rng.uniform(2, 10),
            "scalp": rng.uniform(40, 55), "fat": rng.uniform(-100, -70),
            "table": rng.uniform(1300, 1700), "diploe": rng.uniform(450, 750),
            "petrous": rng.uniform(1100, 1500), "falx": rng.uniform(45, 65),
            "sinus": rng.uniform(48, 70), "calc": rng.uniform(120, 350),
            "globe": rng.uniform(5, 15),
        }
        size = rng.uniform(0.84, 0.95)  # the template is larger than an average adult head
        falx = (float(rng.uniform(-40, 30)), float(rng.uniform(30, 60)),
                float(rng.uniform(3, 8))) if rng.random() < 0.4 else None
        return cls(
            age=round(age, 1),
            scale=tuple(float(size * v) for v in rng.normal(1, 0.03, 3)),
            shear=tuple(float(v) for v in rng.normal(0, 0.03, 3)),
            warp_mm=float(rng.uniform(1.5, 3.5)),
            petalia_mm=float(rng.normal(1.5, 1.0)),
            scalp_mm=float(rng.uniform(4, 7)),
            skull_mm=(float(rng.uniform(5.0, 6.0)), float(rng.uniform(0.5, 1.5)),
                      float(rng.uniform(1.5, 2.5))),
            atrophy=atrophy,
            ventricle_mm=float(atrophy * rng.uniform(5.0, 8.0)),
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
        self.t: Template = load()
        sx, sy, sz = params.scale
        hxy, hxz, hyz = params.shear
        self.a = np.linalg.inv(np.array([[sx, hxy, hxz], [0, sy, hyz], [0, 0, sz]])).astype(
            np.float32)
        self.mm = float(np.mean(params.scale))  # head mm per template mm, for distances
        self.warp = [SmoothField.make(rng, wavelength_mm=50.0) for _ in range(3)]
        self.gyri = SmoothField.make(rng, wavelength_mm=14.0)
        self.texture = SmoothField.make(rng, wavelength_mm=30.0)

    def _affine(self, p: np.ndarray) -> np.ndarray:
        return transform(p, self.a) + HEAD_CENTRE

    def _petalia(self, q: np.ndarray) -> None:
        """The right frontal and the left occipital pole reach a little further (in place)."""
        front = np.clip((q[:, 1] - 20) / 50, 0, 1) * (q[:, 0] > 0)
        back = np.clip((-60 - q[:, 1]) / 40, 0, 1) * (q[:, 0] < 0)
        q[:, 1] -= self.p.petalia_mm * (front - back)

    def to_template(self, p: np.ndarray) -> np.ndarray:
        """Template (MNI) coordinates of (N, 3) head-frame points."""
        q = self._affine(p)
        for axis, field in enumerate(self.warp):
            q[:, axis] += self.p.warp_mm * field(p)
        self._petalia(q)
        return q

    def render(self, p: np.ndarray) -> Anatomy:
        """Normal anatomy at (N, 3) head-frame points (float32 mm)."""
        q = self.to_template(p)
        return self._render(q, self.texture(q))

    def render_plane(self, plane: np.ndarray, keep: np.ndarray) -> Anatomy:
        """Normal anatomy on an (M, M, 3) plane of head-frame points, at the points `keep`
        (a flat mask). The smooth fields (deformation, bone texture) are sampled on a coarse
        lattice and interpolated bilinearly: the same values within a fraction of a
        HU or a mm, at a fraction of the cost."""
        m = plane.shape[0]
        pixel_mm = float(np.linalg.norm(plane[1, 0] - plane[0, 0]))
        step = max(LATTICE, int(LATTICE_MM / pixel_mm))
        lat = np.unique(np.r_[np.arange(0, m, step), m - 1])
        k = len(lat)
        lo = np.clip(np.searchsorted(lat, np.arange(m), side="right") - 1, 0, k - 2)
        frac = ((np.arange(m) - lat[lo]) / (lat[lo + 1] - lat[lo])).astype(np.float32)
        coarse = plane[np.ix_(lat, lat)].reshape(-1, 3)

        def spread(values: np.ndarray) -> np.ndarray:
            # bilinear by indexing, not matrix products: BLAS threads cost more than they save
            v = values.reshape(k, k)
            rows = v[lo] * (1 - frac[:, None]) + v[lo + 1] * frac[:, None]
            full = rows[:, lo] * (1 - frac[None, :]) + rows[:, lo + 1] * frac[None, :]
            return full.ravel()[keep]

        p = plane.reshape(-1, 3)[keep]
        q = self._affine(p)
        for axis, field in enumerate(self.warp):
            q[:, axis] += self.p.warp_mm * spread(field(coarse))
        self._petalia(q)
        coarse_q = self._affine(coarse)
        return self._render(q, spread(self.texture(coarse_q)))

    def depth_in(self, q: np.ndarray) -> np.ndarray:
        """Head mm inside the inner table (negative outside the cranial cavity)."""
        return self.t.cavity(q, SD_UNIT_MM * self.mm, -FAR_MM)

    def skull_thickness(self, q: np.ndarray) -> np.ndarray:
        d = q - CAVITY_CENTRE
        r = np.sqrt((d * d).sum(axis=1)) + 1e-6
        base, front, temporal = self.p.skull_mm
        return base + front * (d[:, 1] / r) ** 2 - temporal * (d[:, 0] / r) ** 4

    # --- rendering ------------------------------------------------------------------------
    def _render(self, q: np.ndarray, tex: np.ndarray) -> Anatomy:
        hu_t = self.p.hu
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        hu = np.full(len(q), HU_AIR, np.float32)
        depth_in = self.depth_in(q)
        thick = self.skull_thickness(q)
        scalp = self.p.scalp_mm
        out = -depth_in  # mm outside the inner table
        # below the vault: the face, the skull base and the upper neck
        low = (z < -12) & ((x / 68) ** 2 + ((y + 14) / 94) ** 2 < 1 - np.clip(
            (-12 - z) / 200, 0, 0.2))
        head = (out < thick + scalp) | low
        hu[head] = hu_t["scalp"]
        fat = head & (out > thick + scalp - 2.8) & (out < thick + scalp - 1.5) & ~low
        hu[fat] = hu_t["fat"]  # the subcutaneous layer under the skin

        # vault: outer table, diploe, inner table; sutures are fibrous gaps
        vault = (out > 0) & (out < thick)
        table = (out < 1.6) | (out > thick - 1.6)
        hu[vault] = np.where(table[vault], hu_t["table"], hu_t["diploe"]) + 120 * tex[vault]
        suture_d, plate = sutures(q, 1.5 * tex)
        hu[vault & (suture_d < 0.6) & (z > -5)] = 120.0

        # skull base: dense bone under the fossae, petrous ridges between middle and posterior
        base = low & (out > 0) & (out < 9 + 4 * tex)
        petrous = base & (np.abs(x) > 15) & (np.abs(x) < 55) & (y < -15) & (y > -55) & (z < -20)
        hu[base] = hu_t["diploe"] + 250 + 150 * tex[base]
        hu[petrous] = hu_t["petrous"] + 100 * tex[petrous]
        soft = np.nonzero(low & (out > 2))[0]
        for side in (-1, 1):
            orbit = inside(q, soft, (side * 30, 44, -36), (16, 22, 14))
            hu[orbit] = hu_t["fat"]
            hu[orbit & inside(q, soft, (side * 32, 56, -38), (12, 12, 12))] = hu_t["globe"]
            mastoid = inside(q, soft, (side * 50, -36, -42), (10, 12, 12))
            hu[mastoid] = np.where(tex[mastoid] > 0.2, 700.0, -900.0)
        ethmoid = inside(q, soft, (0, 38, -32), (9, 16, 10)) & (np.abs(tex) > 0.1)
        sphenoid = inside(q, soft, (0, 12, -40), (12, 11, 9))
        hu[ethmoid | sphenoid] = -950.0

        cavity = depth_in >= 0
        return self._render_cavity(q, hu, depth_in, cavity, plate, tex)

    def _render_cavity(self, q, hu, depth_in, cavity, plate, tex) -> Anatomy:
        hu_t, atrophy = self.p.hu, self.p.atrophy
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        n = len(q)
        at = np.nonzero(cavity)[0]
        qc = q[at]
        gm = self.t.gm(qc, 1 / 255)
        wm = self.t.wm(qc, 1 / 255)
        tissue = gm + wm
        # atrophy (and each person's own folding) thins partial-tissue voxels: sulci, fissures
        # and the subarachnoid space widen; the cortex follows the template's gyri
        near_surface = np.clip(1 - depth_in[at] / 25, 0, 1)
        cut = np.clip(0.1 + 0.45 * atrophy + 0.12 * self.gyri(qc) * near_surface, 0, 0.8)
        kept = np.clip((tissue - cut) / (1 - cut), 0, 1)
        share = np.where(tissue > 1e-3, kept / np.maximum(tissue, 1e-3), 0)
        gm, wm = gm * share, wm * share
        vent = np.zeros(n, bool)
        box = np.nonzero((np.abs(x) < 50) & (y > -90) & (y < 45) & (z > -50) & (z < 45)
                         & cavity)[0]
        vent[box] = self.t.vent(q[box], SD_UNIT_MM, -FAR_MM) > -self.p.ventricle_mm
        tis = np.zeros(n, np.float32)
        tis[at] = kept
        tis[vent] = 0
        values = hu_t["csf"] * (1 - kept) + hu_t["gm"] * gm + hu_t["wm"] * wm
        hu[at] = values + 1.5 * tex[at]
        hu[vent] = hu_t["csf"]
        sulcal_csf = cavity & (tis < 0.5) & ~vent
        brain = cavity & (tis >= 0.5)

        tent = tentorium(q)
        infra = cavity & (y < TENTORIUM_FRONT_Y) & (z < tent)
        # dense membranes and vessels: the hyperdense look-alikes of normal anatomy
        falx = cavity & (np.abs(x) < 0.6) & (z > falx_edge(q)) & ~infra
        hu[falx] = hu_t["falx"]
        hu[cavity & (np.abs(z - tent) < 0.7) & (y < TENTORIUM_FRONT_Y) & (np.abs(x) > 4)] = \
            hu_t["falx"]
        sss = cavity & (depth_in < 7) & (np.abs(x) < 6 - 0.8 * depth_in) & (z > 5)
        transverse = cavity & (depth_in < 5) & (np.abs(z - tent) < 3.5) & (y < -75)
        hu[sss | transverse] = hu_t["sinus"]
        calcs = []
        if self.p.pineal_calc:
            calcs.append(((0, -30, 4), (2.5,) * 3))
        for side, present in zip((-1, 1), self.p.choroid_calc, strict=True):
            if present:
                calcs.append(((side * 25, -40, 14), (3.5, 5.0, 3.5)))
        if self.p.falx_calc is not None:
            fy, fz, radius = self.p.falx_calc
            calcs.append(((0, fy, fz), (1.5, radius, radius)))
        if self.p.basal_calc:
            for side in (-1, 1):
                calcs.append(((side * 19, -4, 0), (self.p.basal_calc,) * 3))
        near_midline = np.nonzero(cavity & (np.abs(x) < 35))[0]
        for centre, semi in calcs:
            hu[inside(q, near_midline, centre, semi)] = hu_t["calc"]
        return Anatomy(hu=hu, q=q, depth_in=depth_in, cavity=cavity, tissue=tis, brain=brain,
                       sulcal_csf=sulcal_csf, ventricle=vent, infratentorial=infra, plate=plate)
