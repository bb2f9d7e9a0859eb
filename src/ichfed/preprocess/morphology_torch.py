"""scipy.ndimage's steps that predict uses, on torch tensors, so that on a GPU the brain mask and
the lesion components run beside the network instead of on the host. Each function gives what
its scipy counterpart gives for the same call (tests/preprocess/test_morphology_torch.py); the
CPU path keeps scipy. Volumes are (X, Y, Z) with Z the slice axis; the 2D steps act on every
axial slice at once, with the odd, symmetric disks of morphology.py.

Connected components: no well-kept library labels on a GPU with torch alone (cupy's would add a
CUDA-only dependency), so each voxel takes the smallest flat index among its neighbours' labels,
with pointer jumping (a label's own label) so long components settle in few rounds; the smallest
index of a component orders components as scipy's raster-order labels do.
"""

import itertools

import numpy as np
import torch
import torch.nn.functional as F

FACE_2D = ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0))  # scipy's default in a slice
FACE_3D = (*FACE_2D, (0, 0, 1), (0, 0, -1))  # scipy's default in a volume (6-connected)
FULL_3D = tuple(o for o in itertools.product((-1, 0, 1), repeat=3) if any(o))  # 26-connected
CHECK_EVERY = 4  # rounds between convergence checks (each check waits for the device)


def gaussian_slices(x: torch.Tensor, sigma: tuple[float, float]) -> torch.Tensor:
    """float32 `x` smoothed in-plane as scipy.ndimage.gaussian_filter(slice, sigma) smooths each
    axial slice: truncate 4, mode 'reflect' (edge repeated), one axis after the other with the
    result stored as float32 in between."""
    for axis, s in enumerate(sigma):
        radius = int(4.0 * s + 0.5)
        t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=x.device)
        weights = torch.exp(-0.5 / (s * s) * t * t)
        weights = weights / weights.sum()
        n = x.shape[axis]
        index = torch.arange(-radius, n + radius, device=x.device)
        index = torch.where(index < 0, -index - 1, index)
        index = torch.where(index >= n, 2 * n - index - 1, index).clamp(0, n - 1)
        padded = x.double().index_select(axis, index)
        moved = padded.movedim(axis, -1)
        rows = moved.reshape(-1, 1, moved.shape[-1])
        out = F.conv1d(rows, weights.view(1, 1, -1)).reshape(*moved.shape[:-1], n)
        x = out.movedim(-1, axis).float()
    return x


def _conv_slices(mask: torch.Tensor, kernel: np.ndarray) -> tuple[torch.Tensor, float]:
    """How many of the kernel's pixels are set around each pixel of every slice (zeros
    outside the volume), and the kernel's size. Counts are compared with half-integers: a GPU
    convolution may sum in another order or by transforms."""
    k = torch.as_tensor(np.asarray(kernel, np.float32).reshape(kernel.shape[:2]),
                        device=mask.device)
    slices = mask.permute(2, 0, 1).unsqueeze(1).float()
    counts = F.conv2d(slices, k[None, None], padding=(k.shape[0] // 2, k.shape[1] // 2))
    return counts.squeeze(1).permute(1, 2, 0), float(k.sum())


def erode_slices(mask: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """binary_erosion of every slice by `kernel` (border_value 0)."""
    counts, full = _conv_slices(mask, kernel)
    return counts >= full - 0.5


def dilate_slices(mask: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """binary_dilation of every slice by `kernel` (symmetric, so not reflected)."""
    counts, _ = _conv_slices(mask, kernel)
    return counts > 0.5


def close_slices(mask: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """binary_closing of every slice (border_value 0): dilation, then erosion."""
    return erode_slices(dilate_slices(mask, kernel), kernel)


def _pull(low: torch.Tensor, labels: torch.Tensor, offset: tuple[int, ...]) -> None:
    """low[i] = min(low[i], labels[i + offset]) wherever i + offset is inside the volume."""
    dst, src = [], []
    for o, n in zip(offset, labels.shape, strict=True):
        dst.append(slice(max(0, -o), n - max(0, o)))
        src.append(slice(max(0, o), n - max(0, -o)))
    view = low[tuple(dst)]
    torch.minimum(view, labels[tuple(src)], out=view)


def components(mask: torch.Tensor, offsets: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Each set voxel's component, as the smallest flat index in it; unset voxels get
    mask.numel(). `offsets`: the neighbours that connect (FACE_2D, FACE_3D, FULL_3D)."""
    none = mask.numel()
    dtype = torch.int32 if none < 2**31 - 1 else torch.int64
    labels = torch.arange(none, dtype=dtype, device=mask.device).view(mask.shape)
    labels = torch.where(mask, labels, none)
    while True:
        before = labels
        for _ in range(CHECK_EVERY):
            low = labels.clone()
            for offset in offsets:
                _pull(low, labels, offset)
            low = torch.where(mask, low, none)
            for _ in range(2):  # pointer jumping: the label of one's label
                table = torch.cat([low.reshape(-1), low.new_tensor([none])])
                low = table[low.long()]
            labels = low
        if torch.equal(labels, before):
            return labels


def largest_component(mask: torch.Tensor, offsets=FACE_3D) -> torch.Tensor:
    """The largest component (the first in scipy's label order among equals), or all False."""
    if not bool(mask.any()):
        return mask
    labels = components(mask, offsets)
    sizes = torch.bincount(labels[mask].long(), minlength=mask.numel())
    return labels == torch.argmax(sizes)


def fill_holes_slices(mask: torch.Tensor) -> torch.Tensor:
    """binary_fill_holes of every slice: background not 4-connected to the slice's edge is
    filled. The edge is a frame of background around each slice (scipy's border_value 1); its
    label is its first pixel's flat index, which is the slice's own index z."""
    framed = F.pad(~mask.permute(2, 0, 1), (1, 1, 1, 1), value=True).permute(1, 2, 0)
    labels = components(framed, FACE_2D)
    outside = labels == torch.arange(mask.shape[2], device=mask.device)
    return ~outside[1:-1, 1:-1, :]


def bounding_box(mask: torch.Tensor, margin: tuple[int, ...]) -> tuple[slice, ...]:
    """morphology.bounding_box on a tensor."""
    if not bool(mask.any()):
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis, (n, m) in enumerate(zip(mask.shape, margin, strict=True)):
        hits = torch.nonzero(mask.any(dim=tuple(a for a in range(mask.ndim) if a != axis)))
        lo, hi = int(hits[0]), int(hits[-1])
        box.append(slice(max(lo - m, 0), min(hi + m + 1, n)))
    return tuple(box)
