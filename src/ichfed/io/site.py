"""The site layout every command uses.

    SITE/images/<case>.nii.gz   (or SITE/images/<case>/ holding one DICOM series)
    SITE/masks/<case>.nii.gz    (same case name; optional for prediction-only sites)
    SITE/site.json              (optional: {"name": ..., "notes": ...})
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ichfed.errors import InputError
from ichfed.io.reader import NIFTI_SUFFIXES, ensure_readable, is_scan
from ichfed.io.volume import case_name


@dataclass(frozen=True)
class Case:
    name: str
    image: Path
    mask: Path | None


@dataclass(frozen=True)
class Site:
    root: Path
    name: str
    notes: str
    cases: tuple[Case, ...]
    orphan_masks: tuple[Path, ...]

    @property
    def labelled(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if c.mask is not None)


def _listing(folder: Path) -> list[Path]:
    ensure_readable(folder)
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except PermissionError as exc:
        raise InputError(folder, "cannot be read (permission denied)") from exc


def _site_info(root: Path) -> tuple[str, str]:
    meta = root / "site.json"
    if not meta.exists():
        return root.name, ""
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(meta, f"not valid JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise InputError(meta, "expected a JSON object with 'name' and 'notes'")
    return str(info.get("name", root.name)), str(info.get("notes", ""))


def open_site(root: str | Path) -> Site:
    """List a site's cases (nothing is read beyond names); errors name the path and the problem."""
    root = Path(root)
    ensure_readable(root)
    if not root.is_dir():
        raise InputError(root, "is not a folder; expected a site with images/ and masks/")
    if not any(root.iterdir()):
        raise InputError(root, "empty folder; expected images/ and masks/")
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise InputError(root, "has no images/ folder")
    images = [p for p in _listing(images_dir) if is_scan(p)]
    if not images:
        raise InputError(images_dir, "no scans (.nii, .nii.gz, DICOM folders or .dcm files)")
    masks_dir = root / "masks"
    masks = {}
    if masks_dir.exists():
        masks = {case_name(p): p for p in _listing(masks_dir) if p.name.endswith(NIFTI_SUFFIXES)}
    names = [case_name(p) for p in images]
    cases = tuple(Case(n, p, masks.get(n)) for n, p in zip(names, images, strict=True))
    orphans = tuple(p for n, p in sorted(masks.items()) if n not in set(names))
    name, notes = _site_info(root)
    return Site(root=root, name=name, notes=notes, cases=cases, orphan_masks=orphans)
