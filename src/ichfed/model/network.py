"""The paper's 2D U-Net, built from MONAI's BasicUNet (widths 32-512, two 3x3 convs per level,
2x2 max-pool, transposed-conv upsampling): 7.78 M parameters, as in the paper."""

import math

import torch
from monai.networks.nets import BasicUNet

from ichfed.model.config import ModelSpec


def build_network(spec: ModelSpec) -> torch.nn.Module:
    """BasicUNet with dropout only in the two deepest encoder levels (the paper's placement).

    Returns logits; the sigmoid lives in the loss and in inference. A typed model has one
    output more per bleed type (model/slices.py says what they mean).
    """
    norm = (spec.norm, {"affine": True}) if spec.norm == "instance" else spec.norm
    net = BasicUNet(spatial_dims=2, in_channels=1 + 2 * spec.context_slices,
                    out_channels=spec.outputs, features=spec.features,
                    act=("relu", {"inplace": True}), norm=norm, dropout=0.0, upsample="deconv")
    for level in (net.down_3, net.down_4):
        level.convs.conv_1.adn.D.p = spec.deep_dropout
    if spec.output_prior > 0:
        with torch.no_grad():
            net.final_conv.bias[0].fill_(math.log(spec.output_prior / (1 - spec.output_prior)))
    return net
