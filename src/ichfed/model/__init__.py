"""The network and the settings that travel with it (presets, the saved model folder)."""

from ichfed.model.config import PRESETS, ModelSpec, TrainSpec, preset
from ichfed.model.network import build_network

__all__ = ["PRESETS", "ModelSpec", "TrainSpec", "build_network", "preset"]
