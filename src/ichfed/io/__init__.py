"""Reading CT (NIfTI files and DICOM folders) and writing masks, always with their geometry."""

from ichfed.io.reader import read_ct, read_mask
from ichfed.io.site import Case, Site, open_site
from ichfed.io.volume import CTVolume
from ichfed.io.writer import write_mask

__all__ = ["CTVolume", "Case", "Site", "open_site", "read_ct", "read_mask", "write_mask"]
