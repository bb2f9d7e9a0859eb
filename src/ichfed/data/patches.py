"""2D axial patches centred 1:1 on lesion voxels and on non-lesion brain voxels (the paper).

Volumes stay whole (on the training device); a patch is a slice view, so memory does not grow
with the number of patches and the GPU never waits for a CPU loader.
"""

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ichfed.data.prepare import PreparedScan


def sample_centres(label: np.ndarray, brain: np.ndarray, n_lesion: int,
                   rng: np.random.Generator) -> np.ndarray:
    """(M, 3) voxel centres: up to n_lesion on lesion voxels, as many on other brain voxels.

    Scans without a lesion still give n_lesion // 4 brain patches, so they teach 'no bleed'.
    """
    lesion = np.argwhere(label > 0)
    other = np.argwhere(brain & (label == 0))
    n_les = min(n_lesion, len(lesion))
    n_other = min(len(other), n_les if n_les else n_lesion // 4)
    picks = [lesion[rng.choice(len(lesion), n_les, replace=False)]] if n_les else []
    if n_other:
        picks.append(other[rng.choice(len(other), n_other, replace=False)])
    return np.concatenate(picks) if picks else np.zeros((0, 3), int)


class PatchSet:
    """Patches of several scans, served as shuffled batches of (B, 1, P, P) tensors."""

    def __init__(self, scans: list[PreparedScan], patch: int, n_lesion: int, seed: int,
                 device: torch.device) -> None:
        rng = np.random.default_rng(seed)
        half = patch // 2
        self.patch = patch
        self.images, self.labels, rows = [], [], []
        for index, scan in enumerate(scans):
            centres = sample_centres(scan.label, scan.brain, n_lesion, rng)
            pad = (0, 0, half, half, half, half)  # Z untouched, pad Y and X
            img = torch.from_numpy(scan.image).to(device)
            lab = torch.from_numpy(scan.label.astype(np.float32)).to(device)
            self.images.append(F.pad(img, pad))
            self.labels.append(F.pad(lab, pad))
            rows.append(np.column_stack([np.full(len(centres), index), centres]))
        self.centres = np.concatenate(rows) if rows else np.zeros((0, 4), int)

    def __len__(self) -> int:
        return len(self.centres)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        p = self.patch
        for start in range(0, len(order), batch_size):
            rows = self.centres[order[start:start + batch_size]]
            x = torch.stack([self.images[s][i:i + p, j:j + p, k] for s, i, j, k in rows])
            y = torch.stack([self.labels[s][i:i + p, j:j + p, k] for s, i, j, k in rows])
            yield x[:, None], y[:, None]
