"""DICOM SEG out: read back by highdicom's own reader and by plain pydicom, every frame holds
its source slice's mask, references that slice and lies at its position, for plain, reversed
and tilted series."""

import highdicom as hd
import numpy as np
import pydicom
import pytest

from ichfed.errors import InputError
from ichfed.io import read_ct
from ichfed.io.seg import write_dicom_seg
from tests.helpers import tiny_head, tiny_lesion, write_dicom_series, write_enhanced_ct

RAS = np.array([[0.5, 0, 0, -12.0], [0, 0.5, 0, -10.0], [0, 0, 5.0, 20.0], [0, 0, 0, 1]])
LPS = np.array([[-0.5, 0, 0, 12.0], [0, -0.5, 0, 10.0], [0, 0, 5.0, 20.0], [0, 0, 0, 1]])
TILT = RAS.copy()
TILT[1, 2] = 5.0 * np.tan(np.radians(15))  # a 15 degree gantry tilt


@pytest.mark.parametrize(("affine", "reverse"), [(RAS, False), (LPS, True), (TILT, True)],
                         ids=["RAS", "LPS-reversed", "tilt-reversed"])
def test_each_frame_lands_on_its_source_slice(tmp_path, affine, reverse):
    vol = tiny_head()
    folder = write_dicom_series(vol, affine, tmp_path / "series", reverse_names=reverse)
    ct = read_ct(folder)
    mask = tiny_lesion(ct.data)  # in the order read_ct stacks the series, as predict's mask is
    mask[3:6, 4:9, 2] = 1  # and a mark that tells the slices and the in-plane axes apart
    assert mask.any() and (mask.sum(axis=(0, 1)) > 0).sum() > 1
    out = write_dicom_seg(mask, folder, tmp_path / "seg.dcm")

    seg = hd.seg.segread(out)
    sources = {}
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        k = int(path.stem[2:]) if not reverse else vol.shape[2] - 1 - int(path.stem[2:])
        sources[ds.SOPInstanceUID] = (k, [float(v) for v in ds.ImagePositionPatient])
    uids = list(sources)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids,
                                               segment_numbers=[1])
    for uid, frame in zip(uids, pixels[..., 0], strict=True):
        k, _ = sources[uid]
        # read_ct stacks (column, row, slice) with slices along the normal; the writer's k
        # counts along +z, which is along the normal here
        np.testing.assert_array_equal(frame, mask[:, :, k].T)
    raw = pydicom.dcmread(out)
    assert len(raw.PerFrameFunctionalGroupsSequence) == vol.shape[2]
    for group in raw.PerFrameFunctionalGroupsSequence:
        ref = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        position = [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(position, sources[ref][1], atol=1e-3)
    assert raw.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "50960005"


def test_an_enhanced_file_is_a_clear_error(tmp_path):
    vol = tiny_head()
    path = write_enhanced_ct(vol, RAS, tmp_path / "e.dcm")
    with pytest.raises(InputError, match="not supported yet"):
        write_dicom_seg(np.zeros(vol.shape, np.uint8), path, tmp_path / "seg.dcm")


def test_a_typed_mask_gives_one_segment_per_type_on_its_source_slices(tmp_path):
    folder = write_dicom_series(tiny_head(), TILT, tmp_path / "series", reverse_names=True)
    ct = read_ct(folder)
    types = 2 * tiny_lesion(ct.data).astype(np.uint8)  # a subdural
    types[3:6, 4:9, 2] = 5  # and an intraventricular bleed
    out = write_dicom_seg(types > 0, folder, tmp_path / "seg.dcm", types=types)

    seg = hd.seg.segread(out)
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in sorted(folder.iterdir())]
    order = [ct.data.shape[2] - 1 - int(p.stem[2:]) for p in sorted(folder.iterdir())]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids,
                                               segment_numbers=[1, 2, 3, 4, 5])
    for frame, k in zip(pixels, order, strict=True):
        for code in range(1, 6):  # segment number = the type's code
            np.testing.assert_array_equal(frame[..., code - 1], types[:, :, k].T == code)
    raw = pydicom.dcmread(out)
    labels = [s.SegmentLabel for s in raw.SegmentSequence]
    assert labels == ["Epidural hemorrhage", "Subdural hemorrhage", "Subarachnoid hemorrhage",
                      "Intraparenchymal hemorrhage", "Intraventricular hemorrhage"]
    assert {s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in raw.SegmentSequence} == {
        "50960005"}
    assert raw.SegmentSequence[2].AnatomicRegionSequence[0].CodeValue == "33930006"
