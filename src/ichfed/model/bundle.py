"""The model folder: weights (safetensors) beside a JSON config with everything predict needs.

    MODEL/model.safetensors
    MODEL/config.json   {config_version, ichfed_version, model: ModelSpec, train: TrainSpec,
                         summary: {epochs, best_val_loss, scans, sites, seconds, ...}}
"""

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ichfed import __version__
from ichfed.errors import IchfedError, InputError
from ichfed.io.text import read_settings_text
from ichfed.model.config import ModelSpec
from ichfed.model.network import build_network

CONFIG_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_weights(weights: torch.nn.Module | dict, folder: Path) -> None:
    """The network's (or a state dict's) tensors, written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(weights, torch.nn.Module):
        weights = weights.state_dict()
    state = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    _atomic_write(folder / WEIGHTS, lambda tmp: save_file(state, tmp))


def load_weights(folder: Path, device: torch.device | str = "cpu") -> dict:
    """The saved tensors (a state dict) of a model folder."""
    return load_file(folder / WEIGHTS, device=str(device))


def save_config(folder: Path, spec: ModelSpec, train: dict, summary: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"config_version": CONFIG_VERSION, "ichfed_version": __version__,
            "format": {"input": "CT in Hounsfield units, NIfTI or DICOM", "modality": "CT",
                       "output": "binary hematoma mask", "intended_use": "research only"},
            "model": spec.to_dict(), "train": train, "summary": summary}
    text = json.dumps(data, indent=2)
    _atomic_write(folder / CONFIG, lambda tmp: Path(tmp).write_text(text + "\n"))


@dataclass
class LoadedModel:
    net: torch.nn.Module
    spec: ModelSpec
    config: dict


def _spec(config_path: Path, config) -> ModelSpec:
    """The ModelSpec a config describes; anything else (another version, settings this ichfed
    does not know, values out of range, another network) is one InputError line."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise InputError(config_path, "not an ichfed model config (no 'model' settings)")
    version = config.get("config_version")
    if version != CONFIG_VERSION:
        raise InputError(config_path, f"model config version {version} is not supported by "
                                      f"ichfed {__version__} (needs {CONFIG_VERSION}); retrain "
                                      "or use the ichfed version that made it")
    unknown = sorted(set(config["model"]) - {f.name for f in fields(ModelSpec)})
    if unknown:
        raise InputError(config_path, f"settings this ichfed ({__version__}) does not know: "
                                      f"{', '.join(unknown)} (the model was made by ichfed "
                                      f"{config.get('ichfed_version', '?')}); predict with the "
                                      "ichfed that made it")
    try:
        return ModelSpec.from_dict(config["model"])
    except (IchfedError, TypeError, ValueError, KeyError) as exc:
        raise InputError(config_path, f"model settings unusable ({exc})") from exc


def load_model(folder: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Read a model folder; an unknown or older config version is a clear one-line error."""
    folder = Path(folder)
    config_path = folder / CONFIG
    if not config_path.is_file() or not (folder / WEIGHTS).is_file():
        raise InputError(folder, f"not a model folder (expected {CONFIG} and {WEIGHTS})")
    try:
        config = json.loads(read_settings_text(config_path))
    except (ValueError, RecursionError) as exc:
        raise InputError(config_path, f"not valid JSON ({str(exc)[:200]})") from exc
    spec = _spec(config_path, config)
    net = build_network(spec)
    try:
        net.load_state_dict(load_weights(folder))
    except (RuntimeError, OSError, SafetensorError) as exc:
        raise InputError(folder / WEIGHTS, f"weights do not fit the configured network "
                                           f"({str(exc).splitlines()[0][:300]})") from exc
    # channels_last: oneDNN's and cuDNN's fast convolution layout (on 2 CPU cores, 36% faster
    # for the paper's network on whole slices)
    return LoadedModel(net.to(device, memory_format=torch.channels_last).eval(), spec, config)
