"""From scans to what training consumes: prepared volumes and 2D axial patches."""

from ichfed.data.patches import PatchSet, sample_centres
from ichfed.data.prepare import PreparedScan, load_site_scans, prepare_scan

__all__ = ["PatchSet", "PreparedScan", "load_site_scans", "prepare_scan", "sample_centres"]
