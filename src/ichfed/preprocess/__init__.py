"""From a scan as stored to what the network sees: canonical axial orientation, brain mask."""

from ichfed.preprocess.brainmask import brain_mask
from ichfed.preprocess.orient import Canonical, to_canonical

__all__ = ["Canonical", "brain_mask", "to_canonical"]
