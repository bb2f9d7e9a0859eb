"""A quick look at each prediction: the axial slice with the most predicted hematoma, outlined
in a brain window, titled with the case's volume (TotalSegmentator's --preview, for the same
reason: a reader checks the outline before trusting the number)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ichfed.io.volume import CTVolume  # noqa: E402
from ichfed.report.overlay import draw_axial, fullest_slice, save_figure  # noqa: E402


def write_preview(row: dict, ct: CTVolume, mask: np.ndarray, out: Path) -> Path:
    """OUT/<case>_preview.png for one predicted case (`row` as `predict_inputs` makes it)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.4))
    k = fullest_slice(mask, ct.affine)
    title = (f"{row['case']}: {row['volume_ml']:.1f} mL in {row['components']} "
             f"component{'s' if row['components'] != 1 else ''}")
    draw_axial(ax, ct.data, ct.affine, k, {"predicted hematoma": mask > 0}, title=title)
    return save_figure(fig, out / f"{row['case']}_preview.png")
