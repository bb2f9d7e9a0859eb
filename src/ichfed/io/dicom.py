"""Read one DICOM CT series from a folder into HU with a NIfTI-style (RAS) affine.

Decisions, so that users know what they get:
- slices are ordered by their position along the slice normal, never by file name;
- classic CT (one file per slice) and enhanced CT (one multi-frame file, geometry in its
  functional groups) are read alike: every frame is one slice; an enhanced file whose frames
  form several stacks (StackID: other reconstructions or orientations) offers each stack as a
  series of its own, chosen as NUMBER:STACK;
- gantry tilt is kept as a sheared affine (no resampling: voxels stay as acquired);
- a gap larger than 1.5x the usual spacing is a missing slice and an error;
- smaller unevenness (>1% of the spacing) is resampled linearly to the median spacing;
- compressed pixel data as PACS exports it is decoded by pydicom: RLE by itself, JPEG Lossless,
  JPEG-LS and JPEG 2000 through GDCM, a dependency;
- a folder as a PACS exports a study also holds the scout (localizer) and perhaps other
  modalities: without --series, those are set aside and the one CT series left is read; a
  chosen series that is not CT (its Modality says so) is an error.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ichfed.errors import InputError
from ichfed.io.reader import check_size
from ichfed.io.volume import HU_FLOOR, CTVolume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MISSING_SLICE_FACTOR = 1.5
UNEVEN_TOLERANCE = 0.01


@dataclass(frozen=True)
class _Slice:
    """One image plane with its geometry, whether it is a file or a frame of a multi-frame file."""

    path: Path
    frame: int | None  # index into a multi-frame file's frames; None for a one-slice file
    orientation: tuple[float, ...]
    position: tuple[float, ...]
    spacing: tuple[float, ...] | None  # (row spacing, column spacing) in mm; None: missing
    slope: float
    intercept: float
    series_uid: str
    series_number: str
    series_description: str
    stack: str = ""  # an enhanced file's StackID; "" for classic CT
    modality: str = "CT"  # as the file says; "" where it does not
    localizer: bool = False  # a scout (ImageType LOCALIZER): not a volume to segment
    size: tuple[int, int] = (0, 0)  # (Rows, Columns) as the header claims them

    @property
    def name(self) -> str:
        return self.path.name if self.frame is None else f"{self.path.name} frame {self.frame + 1}"


def _functional(ds: pydicom.Dataset, frame: pydicom.Dataset, sequence: str, keyword: str):
    """An enhanced-CT attribute from a frame's own functional group, else the shared one."""
    for group in (frame, *ds.get("SharedFunctionalGroupsSequence", [])):
        for item in group.get(sequence, []):
            if keyword in item:
                return item[keyword].value
    return None


def _spacing(value) -> tuple[float, ...] | None:
    """Checked only for the series chosen, so another series' odd header does not stop it."""
    if value is None or len(value) != 2 or min(map(float, value)) <= 0:
        return None
    return tuple(map(float, value))


def _slices_of(path: Path, ds: pydicom.Dataset) -> list[_Slice]:
    """The image planes of one file: itself, or each frame of an enhanced (multi-frame) CT."""
    series = (str(ds.get("SeriesInstanceUID", "unknown")), str(ds.get("SeriesNumber", "")),
              str(ds.get("SeriesDescription", "")))
    kind = {"modality": str(ds.get("Modality", "")).upper(),
            "localizer": "LOCALIZER" in [str(v).upper() for v in ds.get("ImageType", [])],
            "size": (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))}
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    if frames is None:
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            return []
        return [_Slice(path, None, tuple(map(float, ds.ImageOrientationPatient)),
                       tuple(map(float, ds.ImagePositionPatient)),
                       _spacing(ds.get("PixelSpacing")),
                       float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0)),
                       *series, **kind)]
    found = []
    for index, frame in enumerate(frames):
        position = _functional(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _functional(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
        if position is None or orientation is None:
            return []
        spacing = _functional(ds, frame, "PixelMeasuresSequence", "PixelSpacing")
        slope = _functional(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _functional(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
        stack = _functional(ds, frame, "FrameContentSequence", "StackID")
        found.append(_Slice(path, index, tuple(map(float, orientation)),
                            tuple(map(float, position)), _spacing(spacing),
                            1.0 if slope is None else float(slope),
                            0.0 if intercept is None else float(intercept), *series,
                            stack="" if stack is None else str(stack), **kind))
    return found


def _headers(folder: Path) -> list[_Slice]:
    """Every image plane under `folder` (or in it, when it is one multi-frame file)."""
    try:
        files = [folder] if folder.is_file() else sorted(
            p for p in folder.rglob("*") if p.is_file())
    except PermissionError as exc:
        raise InputError(folder, "cannot be read (permission denied)") from exc
    if not files:
        raise InputError(folder, "empty folder: no DICOM files")
    inside = folder.resolve() if folder.is_dir() else None
    found = []
    for path in files:
        if inside is not None and inside not in path.resolve().parents:
            raise InputError(path, f"links outside its series folder (to {path.resolve()})")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        try:
            found.extend(_slices_of(path, ds))
        except (ValueError, TypeError, IndexError) as exc:  # a number that is not one, say
            raise InputError(path, f"unreadable image geometry in the header ({exc})") from exc
    if not found:
        raise InputError(folder, "no DICOM image files with position and orientation found")
    return found


def _selector(item: _Slice, stacked: bool) -> str:
    """What --series takes for this group: the series number, with :STACK when it has stacks."""
    number = item.series_number or "?"
    return f"{number}:{item.stack}" if stacked else number


def _choose_series(folder: Path, found: list[_Slice], series: str | None) -> list[_Slice]:
    groups: dict[tuple[str, str], list[_Slice]] = defaultdict(list)
    for item in found:
        groups[(item.series_uid, item.stack)].append(item)
    stacks = Counter(uid for uid, _ in groups)
    names = {key: _selector(items[0], stacks[key[0]] > 1) for key, items in groups.items()}

    def listing() -> str:  # in series-number order, as a PACS viewer lists them
        def order(entry: tuple) -> tuple:
            (uid, stack), items = entry
            number = items[0].series_number
            return (int(number) if number.isdigit() else float("inf"), number, uid, stack)

        return "; ".join(f"{names[key]} '{items[0].series_description}' ({len(items)} "
                         f"{_kind(items[0])}images, UID {key[0]})"
                         for key, items in sorted(groups.items(), key=order))

    if series is None:
        volumes = [items for items in groups.values() if not _kind(items[0])]
        if len(volumes) == 1:
            return volumes[0]
        if not volumes:
            raise InputError(folder, f"holds no CT series to segment: {listing()}")
        raise InputError(folder, f"holds {len(volumes)} CT series, choose one with --series: "
                                 f"{listing()}")
    chosen = [items for key, items in groups.items()  # a series' number or UID takes its
              if series in (names[key], key[0], items[0].series_number,  # stacks, all of them
                            f"{key[0]}:{key[1]}")]
    if len(chosen) != 1:
        problem = (f"--series '{series}' matches {len(chosen)} of its series" if chosen
                   else f"no series '{series}'")
        raise InputError(folder, f"{problem}; it holds: {listing()}")
    if chosen[0][0].modality not in ("CT", ""):
        raise InputError(folder, f"series '{series}' is {chosen[0][0].modality}, not CT")
    return chosen[0]


def _kind(item: _Slice) -> str:
    """'' for a CT volume; else what it is, as the series listing names it."""
    if item.modality not in ("CT", ""):
        return f"{item.modality} "
    return "localizer " if item.localizer else ""


def _check_geometry(items: list[_Slice]) -> None:
    """Before any pixel is decoded: one slice size for the whole series, within the voxel cap,
    and every slice's position and orientation finite, its two axes orthogonal unit vectors."""
    first = items[0]
    for item in items:
        if item.size != first.size:
            raise InputError(item.path, f"slice size {item.size} (rows, columns) differs from "
                                        f"{first.size} in the rest of the series")
        values = np.array(item.orientation + item.position, dtype=float)
        if len(item.orientation) != 6 or len(item.position) != 3 or not np.isfinite(
                values).all():
            raise InputError(item.path, "image position or orientation is not a finite "
                                        "3-vector and 6-vector")
        axes = np.array(item.orientation).reshape(2, 3)
        if not np.allclose(axes @ axes.T, np.eye(2), atol=1e-3):
            raise InputError(item.path, "image orientation is not two orthogonal unit vectors")
    check_size(first.path, (*first.size, len(items)))


def _slice_positions(folder: Path, items: list[_Slice]) -> tuple[np.ndarray, np.ndarray, list]:
    """Sort slices along the normal. Returns (in-plane axes 2x3, positions Nx3, sorted items)."""
    _check_geometry(items)
    iop = np.array(items[0].orientation).reshape(2, 3)
    for item in items:
        if not np.allclose(item.orientation, iop.ravel(), atol=1e-4):
            raise InputError(item.path, "slice orientation differs from the rest of the series")
        if item.spacing is None:
            raise InputError(item.path, "pixel spacing missing or invalid")
        if not np.allclose(item.spacing, items[0].spacing, rtol=1e-3):
            raise InputError(item.path, f"pixel spacing {item.spacing} differs from "
                                        f"{items[0].spacing} in the rest of the series")
    normal = np.cross(iop[0], iop[1])
    pos = np.array([item.position for item in items])
    order = np.argsort(pos @ normal, kind="stable")
    pos, items = pos[order], [items[i] for i in order]
    if len(items) < 2:
        raise InputError(folder, "series has a single slice; expected a 3D volume")
    dist = np.diff(pos @ normal)
    if np.any(dist < 1e-3):
        raise InputError(folder, "two slices share one position (duplicate or mixed series)")
    usual = float(np.median(dist))
    gap = int(np.argmax(dist))
    if dist[gap] > MISSING_SLICE_FACTOR * usual:
        raise InputError(folder, f"slice missing after {items[gap].name}: gap of "
                                 f"{dist[gap]:.2f} mm where the series steps {usual:.2f} mm")
    return iop, pos, items


def _pixels(items: list[_Slice]) -> np.ndarray:
    """Stack slices as (I=column, J=row, K=slice) in HU, rescale slope and intercept applied.
    A multi-frame file is decoded once, however many of its frames the series uses."""
    slices = []
    shape = None
    path, decoded = None, np.empty(0)  # the last file decoded, kept for its other frames
    for item in items:
        if item.path != path:
            try:
                ds = pydicom.dcmread(item.path)
                check_size(item.path, (int(ds.get("NumberOfFrames", 1) or 1), *item.size))
                path, decoded = item.path, ds.pixel_array
            except InputError:
                raise
            except Exception as exc:  # pydicom raises many types for unsupported/corrupt data
                raise InputError(item.path, f"pixel data cannot be decoded ({exc})") from exc
        frames = decoded.shape[0] if decoded.ndim == 3 else 1  # one frame decodes to one plane
        if item.frame is None and frames > 1:
            raise InputError(item.path, f"{frames} frames but no per-frame positions")
        if (item.frame or 0) >= frames:
            raise InputError(item.path, f"frame {item.frame + 1} missing from the pixel data")
        px = decoded[item.frame or 0] if decoded.ndim == 3 else decoded
        if shape is not None and px.shape != shape:
            raise InputError(item.path, f"slice size {px.shape} differs from {shape}")
        shape = px.shape
        slices.append((px.astype(np.float32) * item.slope + item.intercept).T)
    return np.stack(slices, axis=-1)


def _resample_even(data: np.ndarray, along: np.ndarray) -> np.ndarray:
    """Linear resampling along k from positions `along` (mm) to an even median step."""
    step = float(np.median(np.diff(along)))
    n = int(round((along[-1] - along[0]) / step)) + 1
    target = along[0] + step * np.arange(n)
    idx = np.clip(np.searchsorted(along, target, side="right") - 1, 0, len(along) - 2)
    w = ((target - along[idx]) / (along[idx + 1] - along[idx])).astype(np.float32)
    out = data[..., idx] * (1 - w) + data[..., idx + 1] * w
    return out.astype(np.float32)


def series_planes(folder: Path, series: str | None = None) -> tuple[list[_Slice], np.ndarray]:
    """The chosen series' planes in the order `read_dicom_series` stacks them, and each one's
    position along the slice normal (mm): what a mask's slices are written back onto."""
    items = _choose_series(folder, _headers(folder), series)
    iop, pos, items = _slice_positions(folder, items)
    return items, pos @ np.cross(iop[0], iop[1])


def read_dicom_series(folder: Path, series: str | None = None) -> CTVolume:
    """Read the (chosen) series in `folder`; see the module docstring for geometry decisions."""
    items = _choose_series(folder, _headers(folder), series)
    iop, pos, items = _slice_positions(folder, items)
    data = _pixels(items)
    if not np.isfinite(data).all():
        raise InputError(folder, "pixel data contains NaN or infinite values")
    np.maximum(data, HU_FLOOR, out=data)

    row_mm, col_mm = items[0].spacing  # row spacing, column spacing
    normal = np.cross(iop[0], iop[1])
    along = pos @ normal
    notes = []
    steps = np.diff(along)
    if np.ptp(steps) > UNEVEN_TOLERANCE * np.median(steps):
        data = _resample_even(data, along)
        notes.append("uneven slice spacing resampled to the median spacing")
    # Step vector per slice along the acquisition (sheared when the gantry was tilted).
    slab = (pos[-1] - pos[0]) / (data.shape[2] - 1)
    inplane = slab - (slab @ normal) * normal
    if np.linalg.norm(inplane) > 1e-3 * abs(slab @ normal):
        tilt = np.degrees(np.arctan2(np.linalg.norm(inplane), abs(slab @ normal)))
        notes.append(f"gantry tilt {tilt:.1f} deg kept as a sheared affine")
    lps = np.eye(4)
    lps[:3, 0] = iop[0] * col_mm
    lps[:3, 1] = iop[1] * row_mm
    lps[:3, 2] = slab
    lps[:3, 3] = pos[0]
    return CTVolume(data=data, affine=LPS_TO_RAS @ lps, source=folder, notes=tuple(notes))
