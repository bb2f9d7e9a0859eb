"""Predict whole axial slices (cropped to the brain, batched), threshold, drop small
components, and map the mask back to the scan's stored voxel order."""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ichfed.data.prepare import PreparedScan, prepare_scan
from ichfed.errors import IchfedError
from ichfed.io import CTVolume, read_ct, write_mask
from ichfed.io.reader import ensure_readable
from ichfed.io.volume import case_name
from ichfed.model.bundle import LoadedModel, load_model
from ichfed.preprocess.resample import mask_to_native, to_native
from ichfed.report.tables import write_csv

CONNECTIVITY = ndimage.generate_binary_structure(3, 3)  # 26-connected lesion components
VOLUME_COLUMNS = ("case", "volume_ml", "components", "largest_component_ml")


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, mask.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


@torch.inference_mode()
def _probabilities(net: torch.nn.Module, image: np.ndarray, batch: int, device: torch.device,
                   context: int = 0) -> np.ndarray:
    """Sigmoid output for every axial slice of (X, Y, Z), padded to a multiple of 16; each slice
    goes in with `context` neighbours on each side as channels (zeros beyond the ends)."""
    x, y, z = image.shape
    px, py = (-x) % 16, (-y) % 16
    vol = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    vol = F.pad(vol, (0, 0, 0, 0, context, context))  # (Z + 2c, X, Y)
    out = np.empty((z, x, y), np.float32)
    cuda = device.type == "cuda"
    if cuda:  # the whole scan in a few passes, in bf16: memory is plentiful, launches are not
        batch, vol = max(batch, 64), vol.to(device, non_blocking=True)
    for start in range(0, z, batch):
        stop = min(start + batch, z)
        chunk = torch.stack([vol[k:k + 2 * context + 1] for k in range(start, stop)])
        chunk = F.pad(chunk.to(device), (0, py, 0, px)).contiguous(
            memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            prob = torch.sigmoid(net(chunk).float())[:, 0, :x, :y]
        out[start:start + batch] = prob.cpu().numpy()
    return out.transpose(1, 2, 0)


def remove_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    if min_voxels <= 1 or not mask.any():
        return mask
    comps, _ = ndimage.label(mask, CONNECTIVITY)
    sizes = np.bincount(comps.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[comps]


def segment(ct: CTVolume, model: LoadedModel, device: torch.device) -> np.ndarray:
    """Binary hematoma mask (uint8) with exactly the scan's shape and voxel order."""
    return segment_prepared(prepare_scan(ct, model.spec), model, device)


def segment_prepared(prep: PreparedScan, model: LoadedModel, device: torch.device) -> np.ndarray:
    """`segment` for a scan already prepared (several models sharing one preprocessing)."""
    if not prep.brain.any():
        return np.zeros(prep.canonical.stored_shape, np.uint8)
    box = _bbox(prep.brain, margin=2)
    prob = _probabilities(model.net, prep.image[box], model.spec.slice_batch, device,
                          model.spec.context_slices)
    if prep.grid.identity:
        mask = np.zeros(prep.image.shape, bool)
        mask[box] = (prob >= model.spec.threshold) & prep.brain[box]
    else:  # back to the scan's own grid before thresholding: volumes are measured there
        full = np.zeros(prep.image.shape, np.float32)
        full[box] = prob
        mask = ((to_native(full, prep.grid) >= model.spec.threshold)
                & mask_to_native(prep.brain, prep.grid))
    mask = remove_small(mask, model.spec.min_component_voxels)
    return prep.canonical.to_stored(mask).astype(np.uint8)


def lesion_stats(mask: np.ndarray, voxel_ml: float) -> dict:
    """Volume = voxel count x voxel volume on the scan's own grid; components 26-connected."""
    comps, count = ndimage.label(mask > 0, CONNECTIVITY)
    sizes = np.bincount(comps.ravel())[1:]
    return {"volume_ml": round(float(sizes.sum() * voxel_ml), 3), "components": int(count),
            "largest_component_ml": round(float(sizes.max() * voxel_ml), 3) if count else 0.0}


def predict_inputs(inputs: list[Path], model_dir: Path, out: Path, device: torch.device,
                   series: str | None = None, on_case=None) -> list[dict]:
    """Predict each NIfTI file or DICOM folder; writes OUT/<case>_mask.nii.gz and volumes.csv.

    On a bad input nothing of this run is left behind in OUT.
    """
    for path in inputs:
        ensure_readable(path)
    names = [case_name(Path(p)) for p in inputs]
    if len(set(names)) != len(names):
        raise IchfedError("two inputs share a case name; their masks would overwrite each other")
    model = load_model(model_dir, device)
    out.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    try:
        for path in inputs:
            ct = read_ct(path, series=series)
            mask = segment(ct, model, device)
            target = out / f"{ct.name}_mask.nii.gz"
            written.append(write_mask(mask, ct, target))
            rows.append({"case": ct.name, **lesion_stats(mask, ct.voxel_ml)})
            if on_case:
                on_case(rows[-1])
        write_csv([{k: row[k] for k in VOLUME_COLUMNS} for row in rows], out / "volumes.csv")
    except IchfedError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return rows
