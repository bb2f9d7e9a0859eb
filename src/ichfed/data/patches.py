"""2D axial patches centred 1:1 on lesion voxels and on non-lesion brain voxels (the paper).

Volumes stay whole (on the training device); a patch is a slice view, so memory does not grow
with the number of patches and the GPU never waits for a CPU loader.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ichfed.data.prepare import PreparedScan
from ichfed.preprocess.morphology import bounding_box, disk


@dataclass(frozen=True)
class Pools:
    """Where one scan's patch centres may fall, as flat voxel indices (int32: a whole site's
    pools stay small enough to redraw centres every epoch)."""

    shape: tuple[int, ...]
    lesion: np.ndarray
    other: np.ndarray  # brain voxels outside the lesion
    edge: np.ndarray | None  # the rim inside the skull, outside the lesion

    @classmethod
    def of(cls, label: np.ndarray, brain: np.ndarray, edge: np.ndarray | None = None
           ) -> "Pools":
        background = brain & (label == 0)
        return cls(label.shape, _flat(label > 0), _flat(background),
                   _flat(edge & background) if edge is not None else None)

    def draw(self, n_lesion: int, rng: np.random.Generator, background_ratio: float = 1.0,
             hard: np.ndarray | None = None, hard_share: float = 0.0,
             missed: np.ndarray | None = None, missed_share: float = 0.0) -> np.ndarray:
        """(M, 3) voxel centres: up to n_lesion on lesion voxels, `background_ratio` times as
        many on other brain voxels. Scans without a lesion still give n_lesion *
        background_ratio / 4 brain patches, so they teach 'no bleed'. A `hard_share` of the
        brain patches comes from `hard` (voxels the network currently calls bleed wrongly), a
        `missed_share` of the lesion patches from `missed` (bleed it currently misses), and
        with an edge pool half of the other brain patches from the rim (where partial volume
        mimics thin subdurals)."""
        n_les = min(n_lesion, len(self.lesion))
        n_missed = int(round(missed_share * n_les)) if missed is not None and len(missed) else 0
        n_other = int(background_ratio * (n_les if n_les else n_lesion / 4))
        n_hard = int(round(hard_share * n_other)) if hard is not None and len(hard) else 0
        n_edge = (n_other - n_hard) // 2 if self.edge is not None else 0
        pools = [(self.lesion, n_les - n_missed), (missed, n_missed),
                 (self.other, n_other - n_hard - n_edge), (self.edge, n_edge), (hard, n_hard)]
        picks = [pool[rng.choice(len(pool), min(n, len(pool)), replace=False)]
                 for pool, n in pools if n and len(pool)]
        flat = np.concatenate(picks) if picks else np.zeros(0, np.int64)
        return np.column_stack(np.unravel_index(flat, self.shape)).astype(np.int64)


def _flat(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int32)


def sample_centres(label: np.ndarray, brain: np.ndarray, n_lesion: int,
                   rng: np.random.Generator, background_ratio: float = 1.0,
                   edge: np.ndarray | None = None) -> np.ndarray:
    """`Pools.draw` straight from the masks."""
    return Pools.of(label, brain, edge).draw(n_lesion, rng, background_ratio)


def brain_edge(brain: np.ndarray, spacing: tuple[float, ...], width_mm: float) -> np.ndarray:
    """Brain voxels within `width_mm` (in-plane) of the brain mask's border."""
    return brain & ~ndimage.binary_erosion(brain, disk(width_mm, spacing))


class PatchSet:
    """Patches of several scans, served as shuffled batches of (B, C, P, P) tensors, where the
    C = 1 + 2 * context channels are the centre slice and its neighbours.

    Each scan is cropped to its brain (patch centres lie in the brain) and all are padded to one
    shape and stacked, so a whole batch is cut out by one indexing operation on the device.
    With `augment`, every training epoch draws fresh centres, flips half the patches left to
    right (bleeds occur on either side) and, given `bone` (`bone_and_top`), shows half as a
    coarser scanner would (`coarser`) and, given `intensity`, each with another scanner's
    offset and noise (`other_scanner`), so a small site shows the network more than one fixed
    set of patches; the validation set always serves the centres drawn from `seed`. `mine` adds
    hard negatives to the next draw. With `sharp_rim_mm`, patches centred on bleed within that
    rim inside the skull are never shown coarser: blurred, a thin crescent along the inner
    table is the skull's own partial-volume ramp, so showing it labelled as bleed teaches that
    a coarse scanner's rim is bleed. With `types` (a typed model), the targets get a second
    channel: each bleed voxel's type code where its scan's masks give types, else 0.
    """

    def __init__(self, scans: list[PreparedScan], patch: int, n_lesion: int, seed: int,
                 device: torch.device, background_ratio: float = 1.0, context: int = 0,
                 edge_mm: float = 0.0, augment: bool = False,
                 bone: tuple[float, float] | None = None, missed_rim_mm: float = 0.0,
                 sharp_rim_mm: float = 0.0,
                 intensity: tuple[float, float, float, float] | None = None,
                 types: bool = False) -> None:
        half = patch // 2
        self.patch, self.context, self.augment, self.bone = patch, context, augment, bone
        self.intensity = intensity
        self.n_lesion, self.background_ratio = n_lesion, background_ratio
        self.hard: list[np.ndarray | None] = [None] * len(scans)  # false positives
        self.missed: list[np.ndarray | None] = [None] * len(scans)  # false negatives
        self.hard_share = self.missed_share = 0.0
        crops, self.pools = [], []
        for scan in scans:
            box = bounding_box(scan.brain)
            edge = brain_edge(scan.brain, scan.spacing, edge_mm) if edge_mm else None
            self.pools.append(Pools.of(scan.label[box], scan.brain[box],
                                       edge[box] if edge is not None else None))
            rims = [brain_edge(scan.brain, scan.spacing, mm)[box] if mm else None
                    for mm in (missed_rim_mm, sharp_rim_mm)]
            codes = scan.types[box] if types and scan.types is not None else None
            crops.append((scan.image[box], scan.label[box], scan.brain[box], *rims, codes))
        self.centres = self._draw(np.random.default_rng(seed))
        shape = np.max([c[0].shape for c in crops], axis=0) if crops else np.zeros(3, int)
        size = (len(crops), shape[0] + 2 * half, shape[1] + 2 * half, shape[2] + 2 * context)
        self.images = torch.zeros(size, dtype=torch.float32, device=device)
        self.labels = torch.zeros(size, dtype=torch.uint8, device=device)
        self.negatives = torch.zeros(size, dtype=torch.bool, device=device)  # brain, no lesion
        # the bleed that misses may be mined on: the label outside the `missed_rim_mm` rim
        # (None without a rim: the label itself)
        self.minable = (torch.zeros(size, dtype=torch.bool, device=device) if missed_rim_mm
                        else None)
        # bleed within the `sharp_rim_mm` rim: patches centred there stay sharp (None: off)
        self.sharp = (torch.zeros(size, dtype=torch.bool, device=device) if sharp_rim_mm
                      else None)
        self.types = torch.zeros(size, dtype=torch.uint8, device=device) if types else None
        self.depth = [image.shape[2] for image, *_ in crops]
        for index, (image, label, brain, rim, sharp_rim, codes) in enumerate(crops):
            x, y, z = image.shape
            inner = (index, slice(half, half + x), slice(half, half + y),
                     slice(context, context + z))
            self.images[inner] = torch.from_numpy(image)
            self.labels[inner] = torch.from_numpy(label)
            self.negatives[inner] = torch.from_numpy(brain & (label == 0))
            if self.minable is not None:
                self.minable[inner] = torch.from_numpy((label > 0) & ~rim)
            if self.sharp is not None:
                self.sharp[inner] = torch.from_numpy((label > 0) & sharp_rim)
            if codes is not None:
                self.types[inner] = torch.from_numpy(codes)
        self.offsets = torch.arange(patch, device=device)
        self.slab = torch.arange(2 * context + 1, device=device)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        """(M, 4) rows of (scan, x, y, z) in cropped coordinates."""
        rows = [np.column_stack([np.full(len(c), index), c]) for index, c in enumerate(
            p.draw(self.n_lesion, rng, self.background_ratio, hard, self.hard_share, missed,
                   self.missed_share)
            for p, hard, missed in zip(self.pools, self.hard, self.missed, strict=True))]
        return np.concatenate(rows) if rows else np.zeros((0, 4), np.int64)

    @torch.no_grad()
    def mine(self, logits: Callable[[torch.Tensor], torch.Tensor], rng: np.random.Generator,
             share: float, missed_share: float = 0.0, fraction: float = 0.25,
             batch: int = 8) -> None:
        """Hard examples for the next draw: run the network (`logits`, in eval mode) over a
        random `fraction` of the slices (whole brain-cropped slices, as prediction sees them)
        and keep the brain voxels it calls bleed that are not, and the bleed it misses (outside
        the `missed_rim_mm` rim, see TrainSpec); `share` of the brain patches and `missed_share`
        of the lesion patches are then centred on them.
        Patches alone rarely show the network the places its whole-scan false positives cluster
        (the top of the head, the rim inside the skull), and the batch-wide loss is ruled by the
        large, easy bleeds, so the faint ones (near-isodense contusions, subacute subdurals)
        stay missed."""
        slices = [(s, k) for s, depth in enumerate(self.depth) for k in range(depth)]
        chosen = sorted(rng.choice(len(slices), max(1, int(fraction * len(slices))),
                                   replace=False))
        half, c = self.patch // 2, self.context
        _, px, py, _ = self.images.shape
        pad = ((-px) % 16, (-py) % 16)
        found: list[list[np.ndarray]] = [[] for _ in self.pools]
        lost: list[list[np.ndarray]] = [[] for _ in self.pools]
        for start in range(0, len(chosen), batch):
            picks = [slices[i] for i in chosen[start:start + batch]]
            x = torch.stack([self.images[s, :, :, k:k + 2 * c + 1] for s, k in picks])
            x = F.pad(x.permute(0, 3, 1, 2), (0, pad[1], 0, pad[0]))
            bleed = logits(x)[:, 0, :px, :py] > 0
            wrong = bleed & torch.stack([self.negatives[s, :, :, k + c] for s, k in picks])
            minable = self.labels if self.minable is None else self.minable
            miss = ~bleed & torch.stack([minable[s, :, :, k + c] for s, k in picks]).bool()
            for (s, k), *masks in zip(picks, wrong.cpu().numpy(), miss.cpu().numpy(),
                                      strict=True):
                # labels and negatives are False in the padding: every voxel lies in the crop
                for hits, mask in zip((found, lost), masks, strict=True):
                    i, j = np.nonzero(mask[half:-half, half:-half])
                    hits[s].append(np.ravel_multi_index((i, j, np.full(len(i), k)),
                                                        self.pools[s].shape))
        self.hard = [np.concatenate(f).astype(np.int32) if f else None for f in found]
        self.missed = [np.concatenate(f).astype(np.int32) if f else None for f in lost]
        self.hard_share, self.missed_share = share, missed_share

    def __len__(self) -> int:
        return len(self.centres)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled (and, with `augment`, freshly drawn and flipped) when given an rng."""
        fresh = rng is not None and (self.augment or self.hard_share > 0
                                     or self.missed_share > 0)
        centres = self._draw(rng) if fresh else self.centres
        order = rng.permutation(len(centres)) if rng is not None else np.arange(len(centres))
        device, half = self.images.device, self.patch // 2
        rows = torch.from_numpy(centres[order]).to(device)  # one copy per epoch
        flips = (torch.from_numpy(rng.random(len(order)) < 0.5).to(device)
                 if (rng is not None and self.augment) else None)
        for start in range(0, len(order), batch_size):
            s, i, j, k = rows[start:start + batch_size].T
            ii = (i[:, None] + self.offsets)[:, :, None, None]
            jj = (j[:, None] + self.offsets)[:, None, :, None]
            s = s[:, None, None, None]
            kk = (k[:, None] + self.slab)[:, None, None, :]
            x = self.images[s, ii, jj, kk].permute(0, 3, 1, 2)
            centre = (k + self.context)[:, None, None, None]
            y = self.labels[s, ii, jj, centre]
            if self.types is not None:
                y = torch.cat([y, self.types[s, ii, jj, centre]], dim=3)
            y = y.permute(0, 3, 1, 2).float()
            if flips is not None:  # axis 2 is the canonical left-right axis
                flip = flips[start:start + batch_size, None, None, None]
                x, y = torch.where(flip, x.flip(2), x), torch.where(flip, y.flip(2), y)
                if self.bone is not None or self.intensity is not None:
                    brain = (self.negatives[s, ii, jj, kk]
                             | self.labels[s, ii, jj, kk].bool()).permute(0, 3, 1, 2)
                    brain = torch.where(flip, brain.flip(2), brain)
                if self.bone is not None:
                    # patches centred on bleed within the rim stay sharp
                    sharp = (self.sharp[s.flatten(), i + half, j + half, k + self.context]
                             if self.sharp is not None else None)
                    x = coarser(x, brain, rng, self.bone, keep=sharp)
                if self.intensity is not None:
                    x = other_scanner(x, brain, rng, *self.intensity)
            yield x, y


def coarser(x: torch.Tensor, brain: torch.Tensor, rng: np.random.Generator,
            bone: tuple[float, float], share: float = 0.5, most: float = 2.0,
            keep: torch.Tensor | None = None) -> torch.Tensor:
    """A random `share` of the patches (never those `keep`, (B,) bool, marks) as a scanner
    with up to `most` times the pixel size would show them after resampling to the working grid
    (area-downsampled, bilinear back; the labels stay sharp), as nnU-Net's low-resolution
    augmentation does: a site with coarser pixels than the training sites otherwise gets
    blurred images the network never saw.

    The patches hold the brain only (with `skull_context` the skull too, which is left sharp
    as it is); what lies just outside the brain mask is bone (the mask stops at the inner
    table), so it is filled with bone (`bone` = (bone value, window top) in network units)
    before blurring and the window's top is applied after. A coarse scanner mixes
    bone into the brain's outermost pixels, a rim that the window makes as bright as blood and
    that looks like a thin subdural; blurring against zeros would teach a dark rim instead."""
    pick = torch.from_numpy(rng.random(len(x)) < share).to(x.device)
    if keep is not None:
        pick &= ~keep
    factor = float(rng.uniform(1.0, most))
    if not bool(pick.any()) or factor < 1.05:
        return x
    size = x.shape[-2:]
    inside = brain[pick]
    filled = torch.where(inside, x[pick], torch.full_like(x[pick], bone[0]))
    small = F.interpolate(filled, scale_factor=1 / factor, mode="area")
    blurred = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
    out = x.clone()
    # the brain mask's edge stays where it was; outside it the patch keeps its own values
    out[pick] = torch.where(inside, blurred.clamp(max=bone[1]), x[pick])
    return out


def other_scanner(x: torch.Tensor, brain: torch.Tensor, rng: np.random.Generator,
                  shift: float, noise: float, low: float, top: float) -> torch.Tensor:
    """Each patch as another scanner's calibration and dose would show it: a uniform offset of
    up to +-`shift` and white noise of a standard deviation up to `noise` (network units),
    clipped back into the window [`low`, `top`] inside the brain. The built-in vumc and lowdose
    sites differ from nih by +3 to +9 HU and up to twice its 5 HU of noise, and a network
    that never saw either reads the shifted brain as blood (264 mL of false positives per
    low-dose scan). Written here rather than with MONAI's RandShiftIntensity and
    RandGaussianNoise, which draw once per call: these draw per patch, on the device."""
    n = len(x)
    offsets = torch.from_numpy(rng.uniform(-shift, shift, n)).to(x)
    sds = torch.from_numpy(rng.uniform(0.0, noise, n)).to(x)
    noisy = x + offsets[:, None, None, None] + sds[:, None, None, None] * torch.randn_like(x)
    return torch.where(brain, noisy.clamp(low, top), x)
