"""Whole-slice inference: mirroring averages the network's view of both sides."""

import numpy as np
import torch

from ichfed.model.slices import probabilities


class _LeftBiased(torch.nn.Module):
    """A stand-in network that sees 'bleed' only in the left half of each slice (axis 2)."""

    def forward(self, x):
        out = torch.full_like(x[:, :1], -20.0)
        out[:, :, : x.shape[2] // 2] = 20.0
        return out


def test_mirroring_averages_the_slice_and_its_left_right_mirror():
    image = np.zeros((32, 16, 3), np.float32)  # X (left-right) is a multiple of 16: no padding
    plain, _ = probabilities(_LeftBiased(), image, 2, torch.device("cpu"))
    mirrored, _ = probabilities(_LeftBiased(), image, 2, torch.device("cpu"), mirror=True)
    assert plain[:16].min() > 0.99 and plain[16:].max() < 0.01
    np.testing.assert_allclose(mirrored, 0.5, atol=1e-6)  # each side seen once as 'bleed'
    np.testing.assert_allclose(mirrored, (plain + plain[::-1]) / 2, atol=1e-6)
