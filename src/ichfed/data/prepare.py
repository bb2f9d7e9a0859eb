"""A scan ready for the network: canonical axial order, brain-masked, intensity-normalised."""

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ichfed import __version__
from ichfed.errors import IchfedError
from ichfed.io import CTVolume, open_site, read_ct
from ichfed.io.align import read_case_mask
from ichfed.io.labels import label_set
from ichfed.io.reader import read_mask, to_canonical_spacing
from ichfed.model.config import ModelSpec
from ichfed.preprocess import Canonical, brain_mask, to_canonical
from ichfed.preprocess.brainmask import CORTEX_HU
from ichfed.preprocess.resample import Grid, codes_to_work, mask_to_work, plan_grid, to_work


@dataclass
class PreparedScan:
    """Arrays on the working grid: canonical order, resampled in-plane to the model's pixel."""

    image: np.ndarray  # (X, Y, Z) float32, network input values, 0 outside the brain
    brain: np.ndarray  # (X, Y, Z) bool
    label: np.ndarray | None  # (X, Y, Z) uint8 0/1 (blood), when known
    canonical: Canonical  # the scan in canonical order on its own grid
    voxel_ml: float  # of the scan's own grid
    grid: Grid  # canonical own grid <-> working grid
    spacing: tuple[float, float, float]  # of the working grid (mm)
    # (X, Y, Z) uint8 bleed-type codes (io/labels.py) where `label` is set, for a typed model
    # when the scan's site labels types; None otherwise
    types: np.ndarray | None = None


def normalise(hu: np.ndarray, brain: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """HU inside the brain (optionally clipped to a window) times the scale; 0 outside unless
    `skull_context`."""
    values = np.clip(hu, *spec.hu_window) if spec.hu_window is not None else hu
    if spec.skull_context:
        return (values * spec.hu_scale).astype(np.float32)
    return np.where(brain, values * spec.hu_scale, 0.0).astype(np.float32)


def intensity_range(spec: ModelSpec) -> tuple[float, float]:
    """The network input's range inside the brain: the window in input units (unbounded
    without one)."""
    if spec.hu_window is None:
        return -float("inf"), float("inf")
    return spec.hu_window[0] * spec.hu_scale, spec.hu_window[1] * spec.hu_scale


def bone_and_top(spec: ModelSpec) -> tuple[float, float]:
    """Cortical bone in network input units before the window, and the window's top (inf
    without one): what a coarse scanner's bone-brain mixture becomes after windowing."""
    return CORTEX_HU * spec.hu_scale, intensity_range(spec)[1]


def preprocessing(spec: ModelSpec) -> tuple:
    """What `prepare_scan` reads of a spec: models that agree on it can share a prepared scan
    (a study's models work at the pixel sizes of their own training sites)."""
    return (spec.working_mm, spec.working_slice_mm, spec.hu_window, spec.hu_scale,
            spec.skull_context)


def prepare_scan(ct: CTVolume, spec: ModelSpec, mask: np.ndarray | None = None,
                 device: torch.device | None = None) -> PreparedScan:
    """The scan on the model's working grid; the brain mask on `device` when that is a GPU.
    For a typed model, `mask`'s codes are kept as `types` (which `load_site_scans` drops again
    for a binary site, where 1 means blood, not epidural)."""
    can = to_canonical(ct.data, ct.affine)
    grid = plan_grid(can.data.shape, can.spacing, spec.working_mm, spec.working_slice_mm)
    hu = to_work(can.data, grid)
    inplane = (can.spacing[:2] if grid.work_shape[:2] == grid.native_shape[:2]
               else (spec.working_mm, spec.working_mm))
    spacing = (*inplane, can.spacing[2] * grid.slab)
    brain = brain_mask(hu, spacing, device)
    label = types = None
    if mask is not None:
        codes = to_canonical(mask, ct.affine).data
        label = mask_to_work(codes > 0, grid).astype(np.uint8)
        if spec.typed:
            types = codes_to_work(codes.astype(np.uint8), grid, label > 0)
    return PreparedScan(normalise(hu, brain, spec), brain, label, can, ct.voxel_ml, grid,
                        tuple(float(s) for s in spacing), types)


def site_spacings(root: str | Path) -> list[tuple[float, float]]:
    """(in-plane pixel, slice thickness) in mm of every labelled case (from the headers where
    possible): what `auto` in a model's spec resolves from."""
    spacings = [to_canonical_spacing(case.image) for case in open_site(root).labelled]
    return [(float(np.mean(s[:2])), float(s[2])) for s in spacings]


def site_labels(root: str | Path) -> str:
    """The site's label set, "binary" or "types": as its site.json declares, else from its
    masks' values (io/labels.py)."""
    site = open_site(root)
    if site.labels is not None:
        return site.labels
    values: set[int] = set()
    for case in site.labelled:
        values.update(int(v) for v in np.unique(read_mask(case.mask)[0]))
    return label_set(None, values)


def load_site_scans(root: str | Path, spec: ModelSpec,
                    cache: Path | None = None) -> list[PreparedScan]:
    """Every labelled case of a site, prepared. Unlabelled cases are skipped. With a `cache`
    folder, the prepared scans are kept there (on the site's own disk) for the next process:
    a deployed site serves each round from a fresh process."""
    site = open_site(root)
    if not site.labelled:
        raise IchfedError(f"{root}: no case has a mask; training needs labelled scans")
    if cache is not None:
        return _cached(site, spec, cache)
    return _prepare_all(site, spec)


def _cached(site, spec: ModelSpec, cache: Path) -> list[PreparedScan]:
    """Keyed by the files' names, sizes and times and by the preprocessing settings."""
    key = hashlib.sha256(json.dumps([
        __version__, str(Path(site.root).resolve()), spec.hu_window, spec.hu_scale,
        spec.inplane_mm, spec.slice_mm, spec.skull_context, spec.labels,
        [(str(p), p.stat().st_size, p.stat().st_mtime_ns)
         for c in site.labelled for p in (c.image, c.mask)]], default=str).encode()).hexdigest()
    path = cache / f"{key[:32]}.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    scans = _prepare_all(site, spec)
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(scans, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return scans


def _prepare_all(site, spec: ModelSpec) -> list[PreparedScan]:
    scans, values = [], set()
    for case in site.labelled:
        ct = read_ct(case.image)
        mask, _ = read_case_mask(case.mask, ct)  # on the image's grid, or one line
        scans.append(prepare_scan(ct, spec, mask))
        if spec.typed and site.labels is None:
            values.update(int(v) for v in np.unique(mask))
    if spec.typed and label_set(site.labels, values) == "binary":
        scans = [replace(scan, types=None) for scan in scans]
    return scans
