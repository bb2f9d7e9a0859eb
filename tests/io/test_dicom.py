"""DICOM series written with pydicom read back to the same HU and affine."""

import shutil

import numpy as np
import pytest

from ichfed.errors import InputError
from ichfed.io import read_ct
from tests.helpers import (
    compress_dicom_series,
    tiny_head,
    write_dicom_series,
    write_enhanced_ct,
)

RAS = np.array([[0.5, 0, 0, -12.0], [0, 0.5, 0, -10.0], [0, 0, 5.0, 20.0], [0, 0, 0, 1]])
LPS = np.array([[-0.5, 0, 0, 12.0], [0, -0.5, 0, 10.0], [0, 0, 5.0, 20.0], [0, 0, 0, 1]])
TILT = RAS.copy()
TILT[1, 2] = 5.0 * np.tan(np.radians(15))  # each slice shifts along y: a 15 degree gantry tilt


@pytest.mark.parametrize("affine", [RAS, LPS, TILT], ids=["RAS", "LPS", "tilt"])
@pytest.mark.parametrize("reverse", [False, True], ids=["ordered", "reversed-names"])
def test_dicom_round_trip(tmp_path, affine, reverse):
    vol = tiny_head()
    write_dicom_series(vol, affine, tmp_path / "dcm", reverse_names=reverse)
    ct = read_ct(tmp_path / "dcm")
    assert ct.data.shape == vol.shape
    np.testing.assert_allclose(ct.data, vol, atol=1e-4)
    np.testing.assert_allclose(ct.affine, affine, atol=1e-4)
    assert any("tilt" in n for n in ct.notes) == (affine is TILT)


@pytest.mark.parametrize("affine", [LPS, TILT], ids=["LPS", "tilt"])
def test_enhanced_multiframe_ct_read_as_the_classic_series(tmp_path, affine):
    """Newer scanners export one multi-frame file per series, its geometry per frame; the frames
    come out in scan order whatever order the file stores them in."""
    vol = tiny_head(shape=(20, 18, 7))
    write_dicom_series(vol, affine, tmp_path / "classic")
    write_enhanced_ct(vol, affine, tmp_path / "enhanced" / "CT.dcm",
                      frame_order=(3, 0, 6, 1, 5, 2, 4))
    classic, enhanced = read_ct(tmp_path / "classic"), read_ct(tmp_path / "enhanced")
    np.testing.assert_array_equal(enhanced.data, classic.data)
    np.testing.assert_allclose(enhanced.affine, affine, atol=1e-4)
    assert enhanced.notes == classic.notes
    given_as_file = read_ct(tmp_path / "enhanced" / "CT.dcm")  # the one file, without its folder
    np.testing.assert_array_equal(given_as_file.data, classic.data)
    assert given_as_file.name == "CT"


def test_enhanced_ct_one_frame_per_file(tmp_path):
    """Some scanners write enhanced CT one frame per file: the series is then many files."""
    vol, uid = tiny_head(shape=(20, 18, 5)), "1.2.826.0.1.3680043.8.498.1"
    for k in range(5):
        write_enhanced_ct(vol, LPS, tmp_path / "e" / f"F{4 - k}.dcm", frame_order=(k,),
                          series_uid=uid)
    write_dicom_series(vol, LPS, tmp_path / "classic")
    np.testing.assert_array_equal(read_ct(tmp_path / "e").data, read_ct(tmp_path / "classic").data)


def test_enhanced_ct_stacks_are_series_of_their_own(tmp_path):
    """One enhanced file can hold several stacks (a soft and a bone reconstruction, frames
    interleaved): each is offered as NUMBER:STACK, never mixed into one volume."""
    soft = tiny_head(shape=(20, 18, 5))
    path = write_enhanced_ct([soft, soft + 300], LPS, tmp_path / "e" / "CT.dcm",
                             series_uid="1.2.826.0.1.3680043.8.498.2")
    with pytest.raises(InputError, match="holds 2 CT series, choose one with --series: "
                                         "3:1 'HEAD ENHANCED' .5 images.*; 3:2 "):
        read_ct(path)
    with pytest.raises(InputError, match="--series '3' matches 2 of its series"):
        read_ct(path, series="3")
    np.testing.assert_array_equal(read_ct(path, series="3:1").data, np.maximum(soft, -1024))
    bone = read_ct(tmp_path / "e", series="1.2.826.0.1.3680043.8.498.2:2")
    np.testing.assert_array_equal(bone.data, np.maximum(soft + 300, -1024))
    np.testing.assert_allclose(bone.affine, LPS, atol=1e-4)


def test_enhanced_ct_missing_frame_named(tmp_path):
    write_enhanced_ct(tiny_head(shape=(20, 18, 7)), LPS, tmp_path / "e" / "CT.dcm",
                      frame_order=(0, 1, 2, 4, 5, 6))
    with pytest.raises(InputError, match="slice missing after CT.dcm frame 3"):
        read_ct(tmp_path / "e")


@pytest.mark.parametrize("syntax, uid", [("JPEGLosslessProcess14_1", "1.2.840.10008.1.2.4.70"),
                                         ("JPEGLSLossless", "1.2.840.10008.1.2.4.80"),
                                         ("JPEG2000Lossless", "1.2.840.10008.1.2.4.90")])
@pytest.mark.parametrize("layout", ["classic", "enhanced"])
def test_compressed_series_read_as_the_uncompressed_one(tmp_path, syntax, uid, layout):
    """PACS exports are often JPEG Lossless, which pydicom decodes only through a plugin."""
    import pydicom

    vol = tiny_head(shape=(20, 20, 6))
    if layout == "classic":
        write_dicom_series(vol, LPS, tmp_path / "d")
    else:
        write_enhanced_ct(vol, LPS, tmp_path / "d" / "CT.dcm", frame_order=(5, 4, 3, 2, 1, 0))
    compress_dicom_series(tmp_path / "d", syntax)
    assert pydicom.dcmread(next((tmp_path / "d").glob("*.dcm"))).file_meta.TransferSyntaxUID == uid
    ct = read_ct(tmp_path / "d")
    np.testing.assert_array_equal(ct.data, np.maximum(np.round(vol), -1024))
    np.testing.assert_allclose(ct.affine, LPS, atol=1e-4)


def test_uneven_spacing_is_resampled(tmp_path):
    vol = tiny_head(shape=(20, 20, 8))
    write_dicom_series(vol, RAS, tmp_path / "a")
    import pydicom

    f = sorted((tmp_path / "a").glob("*.dcm"))[4]
    ds = pydicom.dcmread(f)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.0  # 5 -> 6 mm, 4 mm
    ds.save_as(f)
    ct = read_ct(tmp_path / "a")
    assert any("uneven" in n for n in ct.notes)
    np.testing.assert_allclose(ct.spacing, (0.5, 0.5, 5.0), atol=1e-6)


def test_two_series_named_and_selectable(tmp_path):
    vol = tiny_head(shape=(16, 16, 6))
    write_dicom_series(vol, RAS, tmp_path / "d" / "s1", series_number=3)
    write_dicom_series(vol + 10, RAS, tmp_path / "d" / "s2", series_number=4)
    with pytest.raises(InputError, match="holds 2 CT series, choose one with --series"):
        read_ct(tmp_path / "d")
    ct = read_ct(tmp_path / "d", series="4")
    np.testing.assert_allclose(ct.data, np.maximum(vol + 10, -1024), atol=1e-4)


def _retag(folder, **attributes) -> None:
    import pydicom

    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def test_a_pacs_study_folder_reads_its_one_ct_volume(tmp_path):
    """An exported study also holds the scout and other modalities: set aside unless chosen."""
    vol = tiny_head(shape=(16, 16, 6))
    write_dicom_series(vol, RAS, tmp_path / "d" / "axial", series_number=2)
    write_dicom_series(vol[:, :, :1] - 500, RAS, tmp_path / "d" / "scout", series_number=1)
    _retag(tmp_path / "d" / "scout", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    write_dicom_series(vol[:, :, :4], RAS, tmp_path / "d" / "mr", series_number=5)
    _retag(tmp_path / "d" / "mr", Modality="MR")
    ct = read_ct(tmp_path / "d")
    np.testing.assert_allclose(ct.data, np.maximum(vol, -1024), atol=1e-4)
    with pytest.raises(InputError, match="series '5' is MR, not CT"):
        read_ct(tmp_path / "d", series="5")
    with pytest.raises(InputError, match="single slice"):  # chosen, the scout is tried
        read_ct(tmp_path / "d", series="1")
    shutil.rmtree(tmp_path / "d" / "axial")
    with pytest.raises(InputError, match="holds no CT series to segment: 1 'HEAD 1' "
                                         r"\(1 localizer images.*; 5 'HEAD 5' \(4 MR images"):
        read_ct(tmp_path / "d")


def test_missing_slice_is_an_error(tmp_path):
    write_dicom_series(tiny_head(shape=(16, 16, 8)), RAS, tmp_path / "d", skip=(4,))
    with pytest.raises(InputError, match="slice missing"):
        read_ct(tmp_path / "d")


def test_padding_clipped(tmp_path):
    vol = tiny_head(shape=(16, 16, 6))
    vol[:3] = -2000
    vol[-3:] = -3024
    write_dicom_series(vol, RAS, tmp_path / "d")
    data = read_ct(tmp_path / "d").data
    assert data.min() == -1024
    np.testing.assert_allclose(data[4:-4], vol[4:-4], atol=1e-4)


def test_mixed_pixel_spacing_is_an_error(tmp_path):
    import pydicom

    folder = write_dicom_series(tiny_head(shape=(20, 18, 5)), LPS, tmp_path / "d")
    odd = sorted(folder.glob("*.dcm"))[2]
    ds = pydicom.dcmread(odd)
    ds.PixelSpacing = [0.7, 0.7]
    ds.save_as(odd)
    with pytest.raises(InputError, match=f"{odd.name}.*pixel spacing .*differs"):
        read_ct(folder)


def test_missing_pixel_spacing_is_an_error(tmp_path):
    import pydicom

    folder = write_dicom_series(tiny_head(shape=(20, 18, 5)), LPS, tmp_path / "d")
    odd = sorted(folder.glob("*.dcm"))[0]
    ds = pydicom.dcmread(odd)
    del ds.PixelSpacing
    ds.save_as(odd)
    with pytest.raises(InputError, match=f"{odd.name}: pixel spacing missing"):
        read_ct(folder)


def test_multiframe_file_without_frame_positions_is_an_error(tmp_path):
    """Frames with one position for all cannot be placed; none is dropped silently."""
    import pydicom

    folder = write_dicom_series(tiny_head(shape=(20, 18, 5)), LPS, tmp_path / "d")
    odd = sorted(folder.glob("*.dcm"))[1]
    ds = pydicom.dcmread(odd)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(odd)
    with pytest.raises(InputError, match=f"{odd.name}: 2 frames but no per-frame positions"):
        read_ct(folder)
