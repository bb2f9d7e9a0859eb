"""A resumable run's state in one safetensors file: its tensors as tensors, everything else as
JSON in the file's metadata. Loading it never unpickles, so a checkpoint from elsewhere cannot
run code (torch.save's pickles can).

The state is a tree of dicts, lists and tuples whose leaves are tensors, numbers, strings,
booleans or None: a network's and an optimizer's state_dict, a moving average's, the loop's
counters and history.
"""

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ichfed.errors import InputError

CHECKPOINT = "checkpoint.safetensors"
TREE = "ichfed_tree"  # the metadata key that holds the JSON tree


def _encode(node, path: str, tensors: dict[str, torch.Tensor]):
    if isinstance(node, torch.Tensor):
        tensors[path] = node.detach().cpu().contiguous()
        return {"$tensor": path}
    if isinstance(node, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in node):
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in node.items()}
        # an optimizer's state is keyed by parameter index: keep the keys' types
        return {"$items": [[k, _encode(v, f"{path}/{k}", tensors)] for k, v in node.items()]}
    if isinstance(node, tuple):
        return {"$tuple": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(node)]}
    if isinstance(node, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(node)]
    if node is None or isinstance(node, str | bool | int | float):
        return node
    raise TypeError(f"checkpoint: cannot store {type(node).__name__} at {path}")


def _decode(node, tensors: dict[str, torch.Tensor]):
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if "$tensor" in node:
        return tensors[node["$tensor"]]
    if "$items" in node:
        return {k: _decode(v, tensors) for k, v in node["$items"]}
    if "$tuple" in node:
        return tuple(_decode(v, tensors) for v in node["$tuple"])
    return {k: _decode(v, tensors) for k, v in node.items()}


def save_checkpoint(folder: Path, state: dict) -> None:
    """Write `folder/checkpoint.safetensors` atomically (a crash leaves the last one whole)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = json.dumps(_encode(state, "", tensors))
    tmp = folder / f".{CHECKPOINT}.tmp"
    save_file(tensors, tmp, metadata={TREE: tree})
    os.replace(tmp, folder / CHECKPOINT)


def load_checkpoint(folder: Path, device: torch.device | str = "cpu") -> dict:
    """The state `save_checkpoint` wrote; a damaged or foreign file is one InputError line."""
    path = folder / CHECKPOINT
    try:
        with safe_open(path, framework="pt", device=str(device)) as f:
            tree = json.loads((f.metadata() or {})[TREE])
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
        return _decode(tree, tensors)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(path, f"not a checkpoint this ichfed can resume "
                               f"({type(exc).__name__}: {str(exc)[:200]})") from exc
