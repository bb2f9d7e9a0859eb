"""The 2D network over whole axial slices of a prepared scan: what prediction runs, and what
training runs on its validation scans to choose the lesion-size rule.

What the outputs mean: channel 0 is the log-odds of blood (the paper's one output); a typed
model's further channels are the log-odds of each bleed type (io/labels.py's codes in order)
given blood, so P(type) = P(blood) x softmax(types) and the types sum to P(blood)
(train/loss.py). The blood mask, its threshold and lesion rule are a binary model's; each of
its voxels then takes the most probable type."""

import numpy as np
import torch
import torch.nn.functional as F

from ichfed.data.prepare import PreparedScan
from ichfed.model.config import ModelSpec
from ichfed.preprocess.morphology import bounding_box


@torch.inference_mode()
def probabilities(net: torch.nn.Module, image: np.ndarray, batch: int, device: torch.device,
                  context: int = 0, mirror: bool = False, types: bool = False
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Blood probability for every axial slice of (X, Y, Z), padded to a multiple of 16; each
    slice goes in with `context` neighbours on each side as channels (zeros beyond the ends).
    With `mirror`, the mean with the output for the left-right mirrored slices (test-time
    augmentation, as nnU-Net mirrors: the network was trained on flipped patches too). With
    `types`, also the most probable type's code (uint8) at every voxel."""
    x, y, z = image.shape
    px, py = (-x) % 16, (-y) % 16
    vol = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    vol = F.pad(vol, (0, 0, 0, 0, context, context))  # (Z + 2c, X, Y)
    out = np.empty((z, x, y), np.float32)
    codes = np.empty((z, x, y), np.uint8) if types else None
    cuda = device.type == "cuda"
    if cuda:  # the whole scan in a few passes, in bf16: memory is plentiful, launches are not
        batch, vol = max(batch, 64), vol.to(device, non_blocking=True)

    def decoded(logits: torch.Tensor) -> torch.Tensor:
        blood = torch.sigmoid(logits[:, :1].float())
        return torch.cat([blood, torch.softmax(logits[:, 1:].float(), 1)], 1) if types else blood

    for start in range(0, z, batch):
        stop = min(start + batch, z)
        chunk = torch.stack([vol[k:k + 2 * context + 1] for k in range(start, stop)])
        chunk = F.pad(chunk.to(device), (0, py, 0, px)).contiguous(
            memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            prob = decoded(net(chunk))
            if mirror:  # axis 2 is the canonical left-right axis
                prob = (prob + decoded(net(chunk.flip(2))).flip(2)) / 2
            prob = prob[:, :, :x, :y]
        out[start:start + batch] = prob[:, 0].cpu().numpy()
        if codes is not None:
            codes[start:start + batch] = (prob[:, 1:].argmax(1) + 1).to(torch.uint8).cpu().numpy()
    return out.transpose(1, 2, 0), codes.transpose(1, 2, 0) if codes is not None else None


def scan_probabilities(prep: PreparedScan, net: torch.nn.Module, spec: ModelSpec,
                       device: torch.device, types: bool = False
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """`probabilities` on the prepared scan's working grid (0 outside the brain's box), the
    network applied as `spec` says (slice batch, context, mirroring)."""
    full = np.zeros(prep.image.shape, np.float32)
    codes = np.zeros(prep.image.shape, np.uint8) if types else None
    if prep.brain.any():
        box = bounding_box(prep.brain, margin=2)
        full[box], inside = probabilities(net, prep.image[box], spec.slice_batch, device,
                                          spec.context_slices, spec.mirror, types)
        if codes is not None:
            codes[box] = inside
    return full, codes
