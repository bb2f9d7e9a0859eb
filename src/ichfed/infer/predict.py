"""Predict whole axial slices (cropped to the brain, batched), threshold, drop small
components, and map the mask back to the scan's stored voxel order; a typed model's mask also
gets each voxel's bleed type (model/slices.py)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ichfed.data.prepare import PreparedScan, prepare_scan
from ichfed.errors import IchfedError
from ichfed.io import CTVolume, read_ct, write_mask
from ichfed.io.labels import TYPES
from ichfed.io.reader import ensure_readable
from ichfed.io.volume import case_name
from ichfed.model.bundle import LoadedModel, load_model
from ichfed.model.postprocess import CONNECTIVITY, binarise, scan_rule
from ichfed.model.slices import scan_probabilities
from ichfed.preprocess.morphology import bounding_box
from ichfed.preprocess.resample import codes_to_native, mask_to_native, to_native
from ichfed.report.tables import write_csv

VOLUME_COLUMNS = ("case", "volume_ml", "components", "largest_component_ml")
TYPE_VOLUME_COLUMNS = tuple(f"{name}_ml" for name in TYPES.values())  # a typed model's volumes.csv


@dataclass(frozen=True)
class Segmentation:
    """Arrays with exactly the scan's shape and voxel order."""

    mask: np.ndarray  # uint8 0/1: blood
    types: np.ndarray | None = None  # uint8 bleed-type codes inside the mask (typed models)


def segment(ct: CTVolume, model: LoadedModel, device: torch.device) -> np.ndarray:
    """Binary hematoma mask (uint8) with exactly the scan's shape and voxel order."""
    return segment_prepared(prepare_scan(ct, model.spec, device=device), model, device)


def segment_prepared(prep: PreparedScan, model: LoadedModel, device: torch.device) -> np.ndarray:
    """`segment` for a scan already prepared (several models sharing one preprocessing)."""
    return segmentation(prep, model, device).mask


def segmentation(prep: PreparedScan, model: LoadedModel, device: torch.device) -> Segmentation:
    """The blood mask of a prepared scan and, for a typed model, its voxels' types."""
    spec = model.spec
    if not prep.brain.any():
        empty = np.zeros(prep.canonical.stored_shape, np.uint8)
        return Segmentation(empty, empty.copy() if spec.typed else None)
    prob, codes = scan_probabilities(prep, model.net, spec, device, types=spec.typed)
    brain = prep.brain
    if not prep.grid.identity:  # back to the scan's own grid before thresholding: volumes
        prob, brain = to_native(prob, prep.grid), mask_to_native(brain, prep.grid)  # live there
        codes = codes_to_native(codes, prep.grid) if codes is not None else None
    spacing = prep.canonical.spacing
    rule = scan_rule(spec, spacing)
    if device.type == "cuda":  # the components on the GPU too (the same mask)
        prob, brain = torch.as_tensor(prob, device=device), torch.as_tensor(brain, device=device)
        mask = binarise(prob, brain, spec, prep.voxel_ml, spacing, rule).cpu().numpy()
    else:
        mask = binarise(prob, brain, spec, prep.voxel_ml, spacing, rule)
    stored = prep.canonical.to_stored(mask).astype(np.uint8)
    if codes is None:
        return Segmentation(stored)
    return Segmentation(stored, prep.canonical.to_stored(np.where(mask, codes, 0)).astype(np.uint8))


def lesion_stats(mask: np.ndarray, voxel_ml: float, types: np.ndarray | None = None) -> dict:
    """Volume = voxel count x voxel volume on the scan's own grid; components 26-connected
    (labelled on the mask's bounding box: the same components, a fraction of the volume);
    with `types`, the volume of each bleed type."""
    comps, count = ndimage.label(mask[bounding_box(mask)] > 0, CONNECTIVITY)
    sizes = np.bincount(comps.ravel())[1:]
    stats = {"volume_ml": round(float(sizes.sum() * voxel_ml), 3), "components": int(count),
             "largest_component_ml": round(float(sizes.max() * voxel_ml), 3) if count else 0.0}
    if types is not None:
        counts = np.bincount(types.ravel(), minlength=len(TYPES) + 1)
        stats.update({column: round(float(counts[code] * voxel_ml), 3)
                      for column, code in zip(TYPE_VOLUME_COLUMNS, TYPES, strict=True)})
    return stats


def predict_inputs(inputs: list[Path], model_dir: Path, out: Path, device: torch.device,
                   series: str | None = None,
                   on_case: Callable[[dict, CTVolume, np.ndarray], Path] | None = None,
                   on_done: Callable[[str], None] | None = None,
                   dicom_seg: bool = False) -> list[dict]:
    """Predict each NIfTI file or DICOM folder; writes OUT/<case>_mask.nii.gz and volumes.csv
    (a typed model: also OUT/<case>_types.nii.gz and one mL column per type), and with
    `dicom_seg` OUT/<case>_seg.dcm for each DICOM series (io/seg.py).
    `on_case(row, scan, mask)` may write one more file per case (a preview) and return it;
    `on_done(case)` hears that a case is finished (progress).

    On a bad input nothing of this run is left behind in OUT.
    """
    for path in inputs:
        ensure_readable(path)
        if dicom_seg and not Path(path).is_dir():
            raise IchfedError(f"{path}: --dicom-seg needs a DICOM series folder (a DICOM SEG "
                              "references the series' slices); this input is a file")
    names = [case_name(Path(p)) for p in inputs]
    if len(set(names)) != len(names):
        raise IchfedError("two inputs share a case name; their masks would overwrite each other")
    model = load_model(model_dir, device)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    try:
        for path in inputs:
            ct = read_ct(path, series=series)
            found = segmentation(prepare_scan(ct, model.spec, device=device), model, device)
            mask = found.mask
            written.append(write_mask(mask, ct, out / f"{ct.name}_mask.nii.gz"))
            if found.types is not None:
                written.append(write_mask(found.types, ct, out / f"{ct.name}_types.nii.gz"))
            if dicom_seg:  # highdicom is imported only when a SEG is asked for
                from ichfed.io.seg import write_dicom_seg

                written.append(write_dicom_seg(mask, Path(path), out / f"{ct.name}_seg.dcm",
                                               series, found.types))
            rows.append({"case": ct.name, **lesion_stats(mask, ct.voxel_ml, found.types)})
            if on_case:
                written.append(on_case(rows[-1], ct, mask))
            if on_done:
                on_done(ct.name)
        columns = VOLUME_COLUMNS + (TYPE_VOLUME_COLUMNS if model.spec.typed else ())
        write_csv([{k: row[k] for k in columns} for row in rows], out / "volumes.csv")
    except IchfedError:
        for path in written:
            path.unlink(missing_ok=True)
        if created:
            out.rmdir()
        raise
    return rows
