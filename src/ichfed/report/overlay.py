"""Axial slices in a brain window with label contours: for docs and the study report."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

BRAIN_WINDOW = (40.0, 80.0)  # level, width in HU


def _ras(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return nib.orientations.apply_orientation(data, nib.orientations.io_orientation(affine))


def canonical_slice(data: np.ndarray, affine: np.ndarray, k: int) -> np.ndarray:
    """Axial slice k after reorientation to RAS, in radiological display: anterior up, the
    patient's right on the viewer's left."""
    return _ras(data, affine)[::-1, ::-1, k].T


def fullest_slice(mask: np.ndarray, affine: np.ndarray) -> int:
    """The axial index (RAS order, as `draw_axial` takes it) with the most mask; the middle
    slice when the mask is empty."""
    ras = _ras(mask > 0, affine)
    area = ras.sum(axis=(0, 1))
    return int(np.argmax(area)) if area.any() else ras.shape[2] // 2


def draw_axial(ax, image: np.ndarray, affine: np.ndarray, k: int, masks: dict[str, np.ndarray],
               window: tuple[float, float] = BRAIN_WINDOW, title: str = "") -> None:
    """Show slice k (RAS order) with one contour per named mask (color by order)."""
    level, width = window
    ax.imshow(canonical_slice(image, affine, k), cmap="gray", vmin=level - width / 2,
              vmax=level + width / 2, interpolation="nearest")
    for (name, mask), color in zip(masks.items(), ("lime", "red", "cyan"), strict=False):
        sl = canonical_slice(mask.astype(np.float32), affine, k)
        if sl.any():
            ax.contour(sl, levels=[0.5], colors=color, linewidths=0.8)
        ax.plot([], [], color=color, label=name)
    if masks:
        ax.legend(loc="lower right", fontsize=6, framealpha=0.5)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
