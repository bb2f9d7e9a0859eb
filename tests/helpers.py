"""Small seeded CT volumes and a pydicom series writer for tests (no data ships with them)."""

from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def tiny_head(shape=(48, 40, 12), seed=0) -> np.ndarray:
    """A crude head in integer HU: air, a bone ellipse, brain inside, a bright blob (lesion)."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij")
    r = np.sqrt(i**2 + j**2 + (0.5 * k) ** 2)
    vol = np.full(shape, -1000.0)
    vol[r < 0.9] = 900.0
    vol[r < 0.8] = 30.0
    vol[(i - 0.3) ** 2 + j**2 + k**2 < 0.04] = 65.0
    return np.round(vol + rng.normal(0, 3, shape)).astype(np.float32)


def tiny_lesion(vol: np.ndarray) -> np.ndarray:
    return ((vol > 50) & (vol < 200)).astype(np.uint8)


def save_nifti(data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def make_site(root: Path, n: int = 2, affine: np.ndarray | None = None) -> Path:
    """A valid site with `n` NIfTI cases."""
    affine = np.diag([0.9, 0.9, 5.0, 1.0]) if affine is None else affine
    for c in range(n):
        vol = tiny_head(seed=c)
        save_nifti(vol, affine, root / "images" / f"case{c:02d}.nii.gz")
        save_nifti(tiny_lesion(vol), affine, root / "masks" / f"case{c:02d}.nii.gz")
    return root


def _store_hu(ds: Dataset, planes: np.ndarray) -> None:
    """Pixel data of (rows, columns) or (frames, rows, columns) HU as int16 HU + 1024."""
    ds.Rows, ds.Columns = planes.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = (np.round(planes) + 1024).astype(np.int16).tobytes()


def write_dicom_series(data: np.ndarray, affine: np.ndarray, folder: Path, *,
                       series_uid: str | None = None, series_number: int = 1,
                       reverse_names: bool = False, skip: tuple[int, ...] = ()) -> Path:
    """Write (I, J, K) HU data with a RAS affine as one CT series, stored as HU + 1024 (int16)."""
    folder.mkdir(parents=True, exist_ok=True)
    lps = LPS_TO_RAS @ affine
    col_step, row_step = lps[:3, 0], lps[:3, 1]
    row_dir, col_dir = col_step / np.linalg.norm(col_step), row_step / np.linalg.norm(row_step)
    series_uid = series_uid or generate_uid()
    study_uid, frame_of_reference = generate_uid(), generate_uid()
    n = data.shape[2]
    for k in range(n):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        name = f"IM{(n - 1 - k) if reverse_names else k:04d}.dcm"
        ds = FileDataset(str(folder / name), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.SeriesNumber = series_number
        ds.SeriesDescription = f"HEAD {series_number}"
        ds.Modality = "CT"
        ds.InstanceNumber = n - k if reverse_names else k + 1
        ds.ImagePositionPatient = [float(v) for v in lps[:3, :3] @ [0, 0, k] + lps[:3, 3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))]
        ds.SliceThickness = float(abs(lps[2, 2]))
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        _store_hu(ds, data[:, :, k].T)
        ds.save_as(folder / name, enforce_file_format=True)
    return folder


def _item(**attributes) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def write_enhanced_ct(data: np.ndarray | list[np.ndarray], affine: np.ndarray, path: Path,
                      frame_order: tuple[int, ...] | None = None,
                      series_uid: str | None = None) -> Path:
    """Write (I, J, K) HU data as one enhanced (multi-frame) CT file, as newer scanners export:
    geometry per frame in functional groups, frames stored in `frame_order` (slice indices).
    A list of volumes is written as stacks (StackID 1, 2, ...) of one geometry, their frames
    interleaved, as a file holding a soft and a bone reconstruction would."""
    stacks = data if isinstance(data, list) else [data]
    path.parent.mkdir(parents=True, exist_ok=True)
    lps = LPS_TO_RAS @ affine
    col_step, row_step = lps[:3, 0], lps[:3, 1]
    row_dir, col_dir = col_step / np.linalg.norm(col_step), row_step / np.linalg.norm(row_step)
    order = list(range(stacks[0].shape[2]) if frame_order is None else frame_order)
    frames = [(s, k) for k in order for s in range(len(stacks))]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), series_uid or generate_uid()
    ds.SeriesNumber, ds.SeriesDescription, ds.Modality = 3, "HEAD ENHANCED", "CT"
    ds.SharedFunctionalGroupsSequence = Sequence([_item(
        PixelMeasuresSequence=Sequence([_item(
            PixelSpacing=[float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))],
            SliceThickness=float(abs(lps[2, 2])))]),
        PlaneOrientationSequence=Sequence([_item(
            ImageOrientationPatient=[float(v) for v in (*row_dir, *col_dir)])]),
        PixelValueTransformationSequence=Sequence([_item(
            RescaleSlope=1, RescaleIntercept=-1024, RescaleType="HU")]))])

    def frame_groups(s: int, k: int) -> Dataset:
        groups = {"PlanePositionSequence": Sequence([_item(
            ImagePositionPatient=[float(v) for v in lps[:3, :3] @ [0, 0, k] + lps[:3, 3]])])}
        if len(stacks) > 1:
            groups["FrameContentSequence"] = Sequence([_item(
                StackID=str(s + 1), InStackPositionNumber=k + 1)])
        return _item(**groups)

    ds.PerFrameFunctionalGroupsSequence = Sequence([frame_groups(s, k) for s, k in frames])
    ds.NumberOfFrames = len(frames)
    _store_hu(ds, np.stack([stacks[s][:, :, k].T for s, k in frames]))
    ds.save_as(path, enforce_file_format=True)
    return path


def compress_dicom_series(folder: Path, syntax: str) -> Path:
    """Transcode every file of a series in place to a compressed transfer syntax (a
    `gdcm.TransferSyntax` name), as a PACS export would store it; pydicom cannot encode these."""
    import gdcm

    for path in sorted(folder.glob("*.dcm")):
        reader = gdcm.ImageReader()
        reader.SetFileName(str(path))
        assert reader.Read(), path
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax)))
        change.SetInput(reader.GetImage())
        assert change.Change(), (path, syntax)
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(path))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        assert writer.Write(), path
    return folder


def tree_state(root: Path) -> dict:
    """Every file's size and mtime: to assert that a command changed nothing."""
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}
