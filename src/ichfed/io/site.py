"""The site layout every command uses.

    SITE/images/<case>.nii.gz   (or SITE/images/<case>/ holding one DICOM series)
    SITE/masks/<case>.nii.gz    (same case name; optional for prediction-only sites)
    SITE/site.json              (optional: {"name": ..., "notes": ..., "labels": "types"})
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ichfed.errors import InputError
from ichfed.io.labels import declared_labels
from ichfed.io.reader import NIFTI_SUFFIXES, ensure_readable, is_scan
from ichfed.io.text import read_settings_text
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
    labels: str | None = None  # "binary" or "types" when site.json declares it (io/labels.py)

    @property
    def labelled(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if c.mask is not None)


def _listing(folder: Path) -> list[Path]:
    ensure_readable(folder)
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except PermissionError as exc:
        raise InputError(folder, "cannot be read (permission denied)") from exc


def _site_info(root: Path) -> dict:
    meta = root / "site.json"
    if not meta.exists():
        return {}
    try:
        info = json.loads(read_settings_text(meta))
    except (ValueError, RecursionError) as exc:
        raise InputError(meta, f"not valid JSON ({str(exc)[:200]})") from exc
    if not isinstance(info, dict):
        raise InputError(meta, "expected a JSON object with 'name' and 'notes'")
    return info


def _readable_roots(root: Path, info: dict) -> tuple[Path, ...]:
    """Where a site's files may lie: inside the site folder, or, for a folder of links that
    ichfed's study wrote (its site.json names the `source` site), inside that site."""
    roots = [root.resolve()]
    source = info.get("source")
    if isinstance(source, str) and (Path(source) / "images").is_dir():
        roots.append(Path(source).resolve())
    return tuple(roots)


def _inside(path: Path, roots: tuple[Path, ...]) -> None:
    """Refuse a case whose file (through its links) lies outside the site."""
    real = path.resolve()
    if not any(real == r or r in real.parents for r in roots):
        raise InputError(path, f"links outside the site folder (to {real}); ichfed reads only "
                               "files inside a site")


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
    info = _site_info(root)
    roots = _readable_roots(root, info)
    for path in (*images, *masks.values()):
        _inside(path, roots)
    names = [case_name(p) for p in images]
    cases = tuple(Case(n, p, masks.get(n)) for n, p in zip(names, images, strict=True))
    orphans = tuple(p for n, p in sorted(masks.items()) if n not in set(names))
    return Site(root=root, name=str(info.get("name", root.name)),
                notes=str(info.get("notes", "")), cases=cases, orphan_masks=orphans,
                labels=declared_labels(info, str(root / "site.json")))
