"""Validate a site before anything trains on it. Reads only; never writes or changes a file."""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ichfed.errors import InputError
from ichfed.io.align import read_case_mask
from ichfed.io.labels import TYPES, label_problem, label_set
from ichfed.io.reader import read_ct
from ichfed.io.site import Case, open_site

AIR_BELOW_HU = -900.0
BONE_ABOVE_HU = 300.0
MIN_AIR_FRACTION = 0.01


@dataclass
class CaseFindings:
    case: str
    image: str
    mask: str | None
    shape: list[int] | None = None
    spacing_mm: list[float] | None = None
    orientation: str | None = None
    lesion_ml: float | None = None
    labels: list[int] | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class SiteFindings:
    site: str
    root: str
    cases: list[CaseFindings]
    problems: list[str]
    labels: str = "binary"  # the masks' label set: "binary" or "types" (io/labels.py)
    types: dict[str, int] = field(default_factory=dict)  # bleed type -> cases that hold it

    @property
    def usable(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"usable": self.usable, **asdict(self)}


def _ct_plausibility(data: np.ndarray) -> str | None:
    lo, hi = float(data.min()), float(data.max())
    if lo >= 0 and hi <= 255:
        return f"values {lo:.0f}..{hi:.0f} look like an 8-bit image, not CT in HU"
    if (data < AIR_BELOW_HU).mean() < MIN_AIR_FRACTION:
        return f"no air near -1000 HU (minimum {lo:.0f}): not CT in HU (an MRI or rescaled image?)"
    if hi < BONE_ABOVE_HU:
        return f"no bone above {BONE_ABOVE_HU:.0f} HU (maximum {hi:.0f}): not a head CT in HU?"
    return None


def check_case(case: Case) -> CaseFindings:
    """Read one case and record what a trainer needs to know; problems are one line each."""
    found = CaseFindings(case.name, str(case.image), str(case.mask) if case.mask else None)
    try:
        ct = read_ct(case.image)
    except InputError as exc:
        found.problems.append(str(exc))
        return found
    found.shape = list(ct.data.shape)
    found.spacing_mm = [round(s, 4) for s in ct.spacing]
    found.orientation = ct.orientation
    found.notes.extend(ct.notes)
    if (why := _ct_plausibility(ct.data)) is not None:
        found.problems.append(f"{case.image}: {why}")
    if case.mask is None:
        found.problems.append(
            f"{case.image}: image has no mask (expected masks/{case.name}.nii.gz)")
        return found
    try:  # a mask in another voxel order of the same grid is reoriented, as training does
        mask, note = read_case_mask(case.mask, ct)
    except InputError as exc:
        found.problems.append(str(exc))
        return found
    if note:
        found.notes.append(note)
    found.labels = sorted(int(v) for v in np.unique(mask))
    found.lesion_ml = round(float((mask > 0).sum()) * ct.voxel_ml, 3)
    return found


def check_site(root: str | Path) -> SiteFindings:
    """Check every case of a site. Raises InputError only when the site itself cannot be opened."""
    site = open_site(root)
    cases = [check_case(c) for c in site.cases]
    values = {v for c in cases for v in (c.labels or [])}
    labels = label_set(site.labels, values)
    for c in cases:
        why = label_problem(set(c.labels or []), labels)
        if why:
            c.problems.append(f"{c.mask}: {why}")
    types = {}
    if labels == "types":
        types = {name: sum(code in (c.labels or []) for c in cases)
                 for code, name in TYPES.items()}
    problems = [p for c in cases for p in c.problems]
    problems += [f"{m}: mask without an image (expected images/{m.name})"
                 for m in site.orphan_masks]
    return SiteFindings(site=site.name, root=str(site.root), cases=cases, problems=problems,
                        labels=labels, types=types)
