"""A predicted mask as a DICOM Segmentation object that references its source series, so that
it goes back to the PACS and opens in viewers (OHIF, 3D Slicer) over the scan it came from.
highdicom builds the object; each frame is one source slice, referenced by its SOP Instance UID
and placed at that slice's own position and orientation (tilted and reversed-order series
alike)."""

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from ichfed import __version__
from ichfed.errors import InputError
from ichfed.io.dicom import series_planes
from ichfed.io.labels import TYPES

# Patient and study attributes a SEG copies from its source (type 2: present, may be empty);
# anonymised exports sometimes drop them, so they are added empty to the copies read here
COPIED_EMPTY_IF_MISSING = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                           "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName",
                           "AccessionNumber")


def _source(path: Path) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    for keyword in COPIED_EMPTY_IF_MISSING:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


# A typed model's segments: hemorrhage (SNOMED CT, as for blood) in the type's space, with the
# anatomic region's code where pydicom's dictionary of the standard's codes has one; it has no
# code for the epidural or subdural space, so those two segments are told apart by their labels.
# Segment number = the type's code in io/labels.py.
TYPE_REGIONS = {"epidural": None, "subdural": None,
                "subarachnoid": codes.SCT.CranialSubarachnoidSpace,
                "intraparenchymal": codes.SCT.Brain, "intraventricular": codes.SCT.BrainVentricle}


def _segment(number: int, label: str, region=None) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Hemorrhage,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="ichfed", version=__version__, family=codes.cid7162.ArtificialIntelligence),
        anatomic_regions=[region] if region is not None else None)


def _segments(typed: bool) -> list[hd.seg.SegmentDescription]:
    if not typed:
        return [_segment(1, "Hemorrhage")]
    return [_segment(code, f"{name.capitalize()} hemorrhage", TYPE_REGIONS[name])
            for code, name in TYPES.items()]


def write_dicom_seg(mask: np.ndarray, source: Path, out: Path, series: str | None = None,
                    types: np.ndarray | None = None) -> Path:
    """Write `mask` ((I=column, J=row, K=slice) as `read_ct` stacks the series in folder
    `source`) as a binary DICOM SEG at `out`: one segment for blood, or with `types` (a typed
    model's map of bleed types on the same grid) one segment per type, every type listed. A
    series read with uneven spacing was resampled; each source slice then takes the mask's
    nearest plane."""
    planes, along = series_planes(source, series)
    if any(plane.frame is not None for plane in planes):
        raise InputError(source, "a DICOM SEG for an enhanced (multi-frame) CT series is not "
                                 "supported yet; use the NIfTI mask")
    depth = mask.shape[2]
    if depth == len(planes):
        index = np.arange(depth)
    else:  # read_dicom_series resampled it to the median step from along[0]
        step = float(np.median(np.diff(along)))
        index = np.clip(np.rint((along - along[0]) / step).astype(int), 0, depth - 1)
    images = [_source(plane.path) for plane in planes]
    labels = (mask > 0) if types is None else np.where(mask > 0, types, 0)
    frames = np.stack([labels[:, :, k].T for k in index])  # (slices, rows, columns)
    first = images[0]
    if "FrameOfReferenceUID" not in first:
        raise InputError(source, "the series has no Frame of Reference UID, which a DICOM SEG "
                                 "needs; use the NIfTI mask")
    seg = hd.seg.Segmentation(
        source_images=images, pixel_array=frames.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segments(types is not None), series_instance_uid=hd.UID(),
        series_number=int(first.get("SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="ichfed",
        manufacturer_model_name="ichfed", software_versions=__version__,
        device_serial_number="ichfed", series_description="ichfed hemorrhage",
        omit_empty_frames=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out
