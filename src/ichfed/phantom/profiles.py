"""Simulated hospitals: scanners (geometry, kernel, noise, artifacts) and annotation protocols.

A profile is pure data (no numpy), so `ichfed synth --list-sites` is instant, and users can write
their own in TOML or JSON with the same field names (see docs/phantom.md).
"""

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ichfed.errors import InputError

Range = tuple[float, float]


@dataclass(frozen=True)
class Scanner:
    """One scanner model as a site uses it. Ranges are sampled uniformly per scan."""

    name: str
    inplane_mm: Range = (0.45, 0.5)  # full-size pixel size; reduced size doubles it
    matrix: int = 512  # full-size matrix; reduced size halves it
    slice_mm: Range = (5.0, 5.0)
    tilt_deg: Range = (0.0, 0.0)  # gantry tilt, kept as a sheared affine
    psf_mm: float = 0.6  # in-plane blur of the reconstruction (sigma)
    sharpen: float = 0.0  # edge overshoot of a sharp kernel (unsharp-mask gain)
    noise_sd: Range = (5.0, 6.0)  # HU, as measured in homogeneous brain
    noise_grain_mm: float = 0.5  # noise correlation (sigma): iterative recon looks blotchy
    hu_offset: Range = (0.0, 0.0)
    hu_gain: Range = (1.0, 1.0)
    rim_hu: Range = (6.0, 10.0)  # beam-hardening bright rim inside the inner table
    streak_hu: Range = (10.0, 25.0)  # dark band and streaks between the petrous bones
    lowdose_streaks: int = 0  # number of random photon-starvation streaks per slice
    padding: int = -1024  # value outside the reconstruction circle


@dataclass(frozen=True)
class Annotation:
    """How a site's annotators draw the hematoma label."""

    partial_volume: float = 0.5  # labelled where the (outline-smoothed) blood fraction reaches
    outline_mm: float = 0.6  # annotators draw smooth outlines: in-plane smoothing of the fraction
    include_oedema: bool = False
    label_sah: bool = True  # some protocols leave subarachnoid blood unlabelled
    label_ivh: bool = True
    miss_below_ml: float = 0.0  # lesions smaller than this are missed


@dataclass(frozen=True)
class SiteProfile:
    name: str
    description: str
    role: str  # "train" or "holdout"
    scanners: tuple[Scanner, ...]
    annotation: Annotation = field(default_factory=Annotation)
    p_no_lesion: float = 0.3
    lesion_median_ml: float = 18.0
    orientation: str = "RAS"  # axis codes the files are stored in
    reverse_slices: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


BUILTIN: dict[str, SiteProfile] = {
    p.name: p
    for p in (
        SiteProfile(
            name="nih",
            description="Training site like NIH: one scanner, 0.45-0.5 mm, 5 mm slices, soft "
                        "kernel, tight annotations that leave out oedema.",
            role="train",
            scanners=(Scanner("Siemens Definition AS", inplane_mm=(0.45, 0.5), noise_sd=(4.5, 5.5),
                              psf_mm=0.6, noise_grain_mm=0.6),),
            annotation=Annotation(partial_volume=0.6, miss_below_ml=0.05),
            p_no_lesion=0.25, lesion_median_ml=24.0,
        ),
        SiteProfile(
            name="vumc",
            description="Training site like VUMC: three scanner models, slices 4.5-5.6 mm, "
                        "gantry tilt, HU offset and more noise; generous annotations with oedema.",
            role="train",
            scanners=(
                Scanner("Philips Brilliance 64", inplane_mm=(0.43, 0.49), slice_mm=(4.5, 5.0),
                        tilt_deg=(8.0, 22.0), noise_sd=(5.0, 6.0), hu_offset=(3.0, 6.0),
                        psf_mm=0.55, sharpen=0.2, padding=-2000),
                Scanner("GE LightSpeed Ultra", inplane_mm=(0.46, 0.55), slice_mm=(5.0, 5.0),
                        tilt_deg=(10.0, 20.0), noise_sd=(6.0, 7.0), hu_offset=(-2.0, 1.0),
                        hu_gain=(1.0, 1.03), psf_mm=0.65, streak_hu=(20.0, 40.0), padding=-3024),
                Scanner("Philips Mx8000", inplane_mm=(0.45, 0.5), slice_mm=(5.0, 5.6),
                        tilt_deg=(0.0, 15.0), noise_sd=(6.5, 8.0), hu_offset=(4.0, 8.0),
                        psf_mm=0.7, streak_hu=(25.0, 45.0), padding=-2000),
            ),
            annotation=Annotation(partial_volume=0.3, include_oedema=True),
            p_no_lesion=0.3, lesion_median_ml=22.0, orientation="LPS",
        ),
        SiteProfile(
            name="thin",
            description="Holdout site: thin 2-2.5 mm slices with iterative reconstruction "
                        "(smooth, blotchy noise), 0.4-0.45 mm pixels; SAH not labelled.",
            role="holdout",
            scanners=(Scanner("Canon Aquilion ONE", inplane_mm=(0.4, 0.45), slice_mm=(2.0, 2.5),
                              noise_sd=(5.5, 6.5), noise_grain_mm=1.2, psf_mm=0.5,
                              hu_offset=(-3.0, -1.0), rim_hu=(3.0, 6.0)),),
            annotation=Annotation(partial_volume=0.5, label_sah=False, miss_below_ml=0.2),
            p_no_lesion=0.3, lesion_median_ml=18.0, reverse_slices=True,
        ),
        SiteProfile(
            name="lowdose",
            description="Holdout site: an older low-dose scanner, 256 matrix (0.9-1 mm pixels), "
                        "sharp kernel, streaks; generous, roughly drawn labels.",
            role="holdout",
            scanners=(Scanner("GE HiSpeed (low dose)", inplane_mm=(0.9, 1.0), matrix=256,
                              slice_mm=(5.0, 5.0), noise_sd=(9.0, 11.0), noise_grain_mm=0.35,
                              psf_mm=0.8, sharpen=0.6, hu_offset=(5.0, 9.0), hu_gain=(0.97, 1.0),
                              rim_hu=(10.0, 16.0), streak_hu=(30.0, 50.0), lowdose_streaks=4,
                              padding=-3024),),
            annotation=Annotation(partial_volume=0.35, outline_mm=1.2, miss_below_ml=0.4),
            p_no_lesion=0.2, lesion_median_ml=25.0, orientation="LAS",
        ),
    )
}


def _build(cls, data: dict, where: Path):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InputError(where, f"unknown {cls.__name__.lower()} field(s): {names}")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def load_profile(name_or_path: str) -> SiteProfile:
    """A built-in profile by name, or a user's profile from a .toml or .json file."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".toml", ".json"):
        raise InputError(path, f"unknown site profile; built-in: {', '.join(BUILTIN)} "
                               "(or give a .toml/.json profile file)")
    if not path.is_file():
        raise InputError(path, "does not exist")
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot parse profile ({exc})") from exc
    try:
        scanners = tuple(_build(Scanner, s, path) for s in data.pop("scanners"))
        annotation = _build(Annotation, data.pop("annotation", {}), path)
        return _build(SiteProfile, {**data, "scanners": scanners, "annotation": annotation}, path)
    except (KeyError, TypeError) as exc:
        raise InputError(path, f"incomplete profile ({exc})") from exc
