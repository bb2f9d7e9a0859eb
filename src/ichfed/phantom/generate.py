"""Synthesize one scan (image, label, every sampled parameter) and whole sites on disk."""

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ichfed.errors import InputError
from ichfed.io.labels import TYPES
from ichfed.io.volume import HU_AIR
from ichfed.io.writer import write_nifti
from ichfed.phantom.anatomy import Head, HeadParams
from ichfed.phantom.fields import SmoothField, transform
from ichfed.phantom.lesions import Lesion, paint, sample_lesions
from ichfed.phantom.profiles import Annotation, SiteProfile
from ichfed.phantom.scanner import Acquisition, finish, kernel_and_noise, lowdose_streaks, store

SIZES = ("reduced", "full")
# each lesion kind's code in a map of bleed types (io/labels.py); contusions are intraparenchymal
TYPE_OF = {"epidural": 1, "subdural": 2, "subarachnoid": 3, "contusion": 4,
           "intraventricular": 5}
SUBSLICE_MM = 1.7  # thick slices average sub-slices this far apart (partial volume)
LOOKS_LIKE_BONE_HU = 200.0  # annotators do not label voxels that partial volume made bone-bright


@dataclass
class SynthCase:
    name: str
    image: np.ndarray  # (I, J, K) int16 HU, in the site's stored orientation
    mask: np.ndarray  # (I, J, K) uint8 label as the site's annotators drew it
    affine: np.ndarray
    params: dict


def case_rng(profile: SiteProfile, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, zlib.crc32(profile.name.encode())])


def _render(head: Head, lesions: list[Lesion], acq: Acquisition, ann: Annotation,
            irregular: SmoothField, typed: bool = False
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Ideal HU, labelled fraction, head mask, per-lesion blood voxel counts on the grid, and
    with `typed` the labelled fraction of each bleed type (TYPES' codes in order)."""
    m, n = acq.matrix, acq.n_slices
    aff = acq.affine()
    rot, shift = acq.head_from_scanner()
    ii, jj = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    plane = (np.stack([ii.ravel(), jj.ravel()], 1) @ aff[:3, :2].T + aff[:3, 3]).astype(np.float32)
    n_sub = max(1, int(round(acq.slice_mm / SUBSLICE_MM)))
    offsets = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    hu = np.zeros((m * m, n), np.float32)
    label = np.zeros((m * m, n), np.float32)
    inhead = np.zeros((m * m, n), bool)
    blood_vox = np.zeros(len(lesions))
    by_type = np.zeros((len(TYPES), m * m, n), np.float32) if typed else None
    labelled = [ann.label_sah or les.kind != "subarachnoid" for les in lesions]
    labelled = [lab and (ann.label_ivh or les.kind != "intraventricular")
                for les, lab in zip(lesions, labelled, strict=True)]
    for k in range(n):
        for off in offsets:
            p = transform(plane + ((k + off) * aff[:3, 2] - shift).astype(np.float32), rot)
            inside = (p[:, 0] / 90) ** 2 + (p[:, 1] / 110) ** 2 + (p[:, 2] / 102) ** 2 < 1
            anat = head.render_plane(p.reshape(m, m, 3), inside)
            p = p[inside]
            lab = np.zeros(len(p), bool)
            for idx, les in enumerate(lesions):
                blood, oedema = paint(les, p, anat, irregular)
                blood_vox[idx] += blood.sum() / n_sub
                if labelled[idx]:
                    drawn = blood | oedema if ann.include_oedema and oedema.size else blood
                    lab |= drawn
                    if by_type is not None:
                        column = by_type[TYPE_OF[les.kind] - 1, :, k]
                        column[np.flatnonzero(inside)[drawn]] += 1.0 / n_sub
            val = anat.hu
            cav = anat.cavity
            val[cav] += acq.rim_hu * np.exp(-anat.depth_in[cav] / 2.5)
            x, y, z = anat.q[:, 0], anat.q[:, 1], anat.q[:, 2]
            band = cav & (np.abs(x) < 45) & (z < -10)  # between the petrous bones
            val[band] -= acq.streak_hu * np.exp(-(((y[band] + 38) / 6) ** 2)
                                                - ((z[band] + 32) / 10) ** 2)
            col = np.full(m * m, HU_AIR, np.float32)
            col[inside] = val
            hu[:, k] += col / n_sub
            label[inside, k] += lab / n_sub
            inhead[inside, k] |= anat.hu > -500
    shape = (m, m, n)
    types = by_type.reshape(len(TYPES), *shape) if by_type is not None else None
    return hu.reshape(shape), label.reshape(shape), inhead.reshape(shape), blood_vox, types


def type_map(mask: np.ndarray, by_type: np.ndarray, spacing: tuple[float, float, float]
             ) -> np.ndarray:
    """The label's voxels, each coded with the bleed type that fills most of it; voxels the
    annotators' smooth outline added beyond any blood take the type of the nearest."""
    strongest = by_type.argmax(axis=0).astype(np.uint8) + 1
    known = by_type.max(axis=0) > 0
    if not known.any():
        return np.zeros_like(mask)
    nearest = ndimage.distance_transform_edt(~known, sampling=spacing, return_distances=False,
                                             return_indices=True)
    return np.where(mask > 0, strongest[tuple(nearest)], 0).astype(np.uint8)


def annotate(fraction: np.ndarray, ideal: np.ndarray, ann: Annotation, inplane_mm: float,
             voxel_ml: float) -> np.ndarray:
    """The site's label from the labelled-blood fraction of each voxel: smooth outlines drawn
    slice by slice, a partial-volume threshold (low: generous, high: tight), voxels that look
    like bone left out, small lesions missed."""
    if ann.outline_mm > 0:
        sigma = ann.outline_mm / inplane_mm
        fraction = ndimage.gaussian_filter(fraction, (sigma, sigma, 0))
    mask = (fraction >= max(ann.partial_volume, 1e-6)) & (ideal < LOOKS_LIKE_BONE_HU)
    if ann.miss_below_ml > 0 and mask.any():
        comps, count = ndimage.label(mask)
        sizes = np.bincount(comps.ravel())[1:] * voxel_ml
        small = np.nonzero(sizes < ann.miss_below_ml)[0] + 1
        mask[np.isin(comps, small)] = False
    return mask.astype(np.uint8)


@dataclass
class CasePlan:
    """Everything sampled for one scan before any voxel is rendered."""

    rng: np.random.Generator
    head: Head
    lesions: list[Lesion]
    acquisition: Acquisition
    irregular: SmoothField


def plan_case(profile: SiteProfile, seed: int, index: int, size: str = "reduced") -> CasePlan:
    """Sample head, lesions and scanner settings (cheap: lets tests look at many cases)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    rng = case_rng(profile, seed, index)
    head = Head(HeadParams.sample(rng), rng)
    lesions = sample_lesions(rng, head, profile.p_no_lesion, profile.lesion_median_ml)
    scanner = profile.scanners[int(rng.integers(len(profile.scanners)))]
    acq = Acquisition.sample(rng, scanner, size)
    return CasePlan(rng, head, lesions, acq, SmoothField.make(rng, wavelength_mm=14.0))


def synth_case(profile: SiteProfile, seed: int, index: int, size: str = "reduced",
               labels: str = "binary") -> SynthCase:
    """One scan of `profile`; the same (profile, seed, index, size) always gives the same case.
    `labels="types"`: the mask is a map of bleed types (io/labels.py's codes) with the same
    voxels as the binary mask, as the site's annotators label them."""
    plan = plan_case(profile, seed, index, size)
    rng, head, lesions, acq = plan.rng, plan.head, plan.lesions, plan.acquisition
    ideal, fraction, inhead, blood_vox, by_type = _render(
        head, lesions, acq, profile.annotation, plan.irregular, typed=labels == "types")
    affine = acq.affine()
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    mask = annotate(fraction, ideal, profile.annotation, acq.inplane_mm, voxel_ml)
    if by_type is not None:
        mask = type_map(mask, by_type, (acq.inplane_mm, acq.inplane_mm, acq.slice_mm))
    if acq.lowdose_streaks:
        lowdose_streaks(ideal, inhead, acq, rng)
    image = finish(kernel_and_noise(ideal, acq, rng), acq)
    image, mask, affine = store(image, mask, affine, profile.orientation, profile.reverse_slices)

    name = f"{profile.name}_{index:03d}"
    params = {
        "case": name, "site": profile.name, "seed": seed, "index": index, "size": size,
        "labels": labels,
        "acquisition": acq.to_dict(), "head": head.p.to_dict(),
        "lesions": [{**les.to_dict(), "true_ml": round(float(v * voxel_ml), 3)}
                    for les, v in zip(lesions, blood_vox, strict=True)],
        "label_ml": round(float(mask.sum() * voxel_ml), 3),
        "annotation": profile.to_dict()["annotation"],
    }
    return SynthCase(name=name, image=image, mask=mask, affine=affine, params=params)


def synth_site(out: str | Path, profile: SiteProfile, cases: int, seed: int = 0,
               size: str = "reduced", first: int = 0,
               progress: Callable[[str], None] | None = None, labels: str = "binary") -> Path:
    """Write `cases` scans in the standard site layout, plus params/<case>.json sidecars;
    `labels="types"`: masks are maps of bleed types, and site.json says so."""
    out = Path(out)
    if (out / "images").exists() and any((out / "images").iterdir()):
        raise InputError(out, "already holds a site; choose a new or empty folder")
    for index in range(first, first + cases):
        name = write_case(out, profile, seed, index, size, labels)
        if progress:
            progress(name)
    return finish_site(out, profile, labels)


def write_case(out: Path, profile: SiteProfile, seed: int, index: int, size: str,
               labels: str = "binary") -> str:
    """One scan of a site folder (image, mask, parameters); returns its case name. Cases are
    independent, so a site may be written by several processes at once (`finish_site` last)."""
    case = synth_case(profile, seed, index, size, labels)
    write_nifti(case.image, case.affine, out / "images" / f"{case.name}.nii.gz")
    write_nifti(case.mask, case.affine, out / "masks" / f"{case.name}.nii.gz")
    _write_json(out / "params" / f"{case.name}.json", case.params)
    return case.name


def finish_site(out: Path, profile: SiteProfile, labels: str = "binary") -> Path:
    """site.json, written after every case: its presence marks a finished site."""
    _write_json(out / "site.json", {"name": profile.name, "notes": profile.description,
                                    "labels": labels, "synthetic": True,
                                    "profile": profile.to_dict()})
    return out


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=float) + "\n")
