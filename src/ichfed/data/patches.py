"""2D axial patches centred 1:1 on lesion voxels and on non-lesion brain voxels (the paper).

Volumes stay whole (on the training device); a patch is a slice view, so memory does not grow
with the number of patches and the GPU never waits for a CPU loader.
"""

from collections.abc import Iterator

import numpy as np
import torch
from scipy import ndimage

from ichfed.data.prepare import PreparedScan


def sample_centres(label: np.ndarray, brain: np.ndarray, n_lesion: int,
                   rng: np.random.Generator, background_ratio: float = 1.0,
                   edge: np.ndarray | None = None) -> np.ndarray:
    """(M, 3) voxel centres: up to n_lesion on lesion voxels, `background_ratio` times as many
    on other brain voxels. Scans without a lesion still give n_lesion * background_ratio / 4
    brain patches, so they teach 'no bleed'. With an `edge` mask, half of the brain patches are
    drawn from it (the rim inside the skull, where partial volume mimics thin subdurals)."""
    lesion = np.argwhere(label > 0)
    n_les = min(n_lesion, len(lesion))
    n_other = int(background_ratio * (n_les if n_les else n_lesion / 4))
    picks = [lesion[rng.choice(len(lesion), n_les, replace=False)]] if n_les else []
    pools = [(brain & (label == 0), n_other)]
    if edge is not None:
        pools = [(brain & (label == 0), n_other - n_other // 2),
                 (edge & brain & (label == 0), n_other // 2)]
    for pool, n in pools:
        where = np.argwhere(pool)
        n = min(n, len(where))
        if n:
            picks.append(where[rng.choice(len(where), n, replace=False)])
    return np.concatenate(picks) if picks else np.zeros((0, 3), int)


def brain_edge(brain: np.ndarray, spacing: tuple[float, ...], width_mm: float) -> np.ndarray:
    """Brain voxels within `width_mm` (in-plane) of the brain mask's border."""
    radius = [max(1, int(round(width_mm / s))) for s in spacing[:2]]
    x, y = np.ogrid[-radius[0]:radius[0] + 1, -radius[1]:radius[1] + 1]
    disk = ((x / radius[0]) ** 2 + (y / radius[1]) ** 2 <= 1)[:, :, None]
    return brain & ~ndimage.binary_erosion(brain, disk)


class PatchSet:
    """Patches of several scans, served as shuffled batches of (B, C, P, P) tensors, where the
    C = 1 + 2 * context channels are the centre slice and its neighbours.

    Each scan is cropped to its brain (patch centres lie in the brain) and all are padded to one
    shape and stacked, so a whole batch is cut out by one indexing operation on the device.
    """

    def __init__(self, scans: list[PreparedScan], patch: int, n_lesion: int, seed: int,
                 device: torch.device, background_ratio: float = 1.0, context: int = 0,
                 edge_mm: float = 0.0) -> None:
        rng = np.random.default_rng(seed)
        half = patch // 2
        self.patch, self.context = patch, context
        crops, rows = [], []
        for index, scan in enumerate(scans):
            edge = (brain_edge(scan.brain, scan.spacing, edge_mm) if edge_mm
                    else None)
            centres = sample_centres(scan.label, scan.brain, n_lesion, rng, background_ratio,
                                     edge)
            box = _brain_box(scan.brain)
            crops.append((scan.image[box], scan.label[box]))
            lo = np.array([b.start for b in box])
            rows.append(np.column_stack([np.full(len(centres), index), centres - lo]))
        self.centres = np.concatenate(rows) if rows else np.zeros((0, 4), int)
        shape = np.max([c[0].shape for c in crops], axis=0) if crops else np.zeros(3, int)
        size = (len(crops), shape[0] + 2 * half, shape[1] + 2 * half, shape[2] + 2 * context)
        self.images = torch.zeros(size, dtype=torch.float32, device=device)
        self.labels = torch.zeros(size, dtype=torch.uint8, device=device)
        for index, (image, label) in enumerate(crops):
            x, y, z = image.shape
            self.images[index, half:half + x, half:half + y, context:context + z] = (
                torch.from_numpy(image))
            self.labels[index, half:half + x, half:half + y, context:context + z] = (
                torch.from_numpy(label))
        self.offsets = torch.arange(patch, device=device)
        self.slab = torch.arange(2 * context + 1, device=device)

    def __len__(self) -> int:
        return len(self.centres)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        rows = torch.from_numpy(self.centres[order]).to(self.images.device)  # one copy per epoch
        for start in range(0, len(order), batch_size):
            s, i, j, k = rows[start:start + batch_size].T
            ii = (i[:, None] + self.offsets)[:, :, None, None]
            jj = (j[:, None] + self.offsets)[:, None, :, None]
            s = s[:, None, None, None]
            x = self.images[s, ii, jj, (k[:, None] + self.slab)[:, None, None, :]]
            y = self.labels[s, ii, jj, (k + self.context)[:, None, None, None]]
            yield x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2).float()


def _brain_box(brain: np.ndarray) -> tuple[slice, ...]:
    """The brain's bounding box (the whole volume when there is no brain)."""
    idx = np.argwhere(brain)
    if not len(idx):
        return tuple(slice(0, n) for n in brain.shape)
    lo, hi = idx.min(0), idx.max(0) + 1
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
